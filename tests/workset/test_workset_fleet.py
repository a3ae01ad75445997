"""The WorkSet controller on a 3-member embedded fleet. No scheduler or Work agent runs yet, so the tests write
what those would: PlacementDecision slices and Work statuses, both standard objects with other writers. One
fleet for the module; each test works in its own namespace."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusterset.api.placement import WORKS
from clusterset.client import ClusterClient
from clusterset.runtime import Manager, Request, Result, StaticProvider
from clusterset.runtime.cache import ObjectKey
from clusterset.testing import FleetThread
from clusterset.workset.controller import workset_controller
from clusterset.workset.works import FINALIZER, TEMPLATE_HASH_ANNOTATION
from tests.conftest import KUBECTLS, Kubectl
from tests.helpers import table, wait_until
from tests.mcs.fleet import fleet_options, holds_throughout
from tests.runtime.util import client_of
from tests.test_cli import _clusterset
from tests.workset.hub import Hub, deployment

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("workset-fleet")) / "fleet", dns=False))
    try:
        yield Hub(fleet)
    finally:
        fleet.stop()


def works_where(hub: Hub, ns: str, name: str, predicate: Any, message: str, timeout: float = 15) -> dict[str, Obj]:
    return wait_until(lambda: (w := hub.works(ns, name)) and predicate(w) and w, timeout, message=message)


def manifest(work: Obj, index: int = 0) -> Obj:
    result: Obj = work["spec"]["workload"]["manifests"][index]
    return result


def test_a_workset_makes_a_work_per_decided_cluster_with_overrides_and_placeholders(hub: Hub) -> None:
    ns = "ws-basic"
    hub.namespace_with_placement(ns)
    for member, region in (("member-1", "eu"), ("member-2", "us")):
        hub.property(member, "region.example.com", region)
    hub.property("member-1", "replicas.example.com", "3")
    wait_until(lambda: hub.profile_properties("member-2").get("region.example.com") == "us"
               and hub.profile_properties("member-1").get("replicas.example.com") == "3", 20,
               message="the properties reported into the profiles")
    hub.label_profile("member-2", {"tier": "gold"})
    hub.decide(ns, ["member-1", "member-2", "member-9"])
    web = deployment(image="nginx:${cluster.properties['region.example.com']}")
    web["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "CLUSTER", "value": "${cluster.id}"}]
    hub.workset(ns, "web", [web], overrides=[
        {"patches": [{"op": "add", "path": "/metadata/labels", "value": {"cluster": "${cluster.name}"}}]},
        {"clusterSelector": {"propertySelector": {"matchExpressions": [
            {"name": "replicas.example.com", "operator": "Exists"}]}},
         "patches": [{"op": "replace", "path": "/spec/replicas",
                      "value": "${cluster.properties['replicas.example.com'] | int}"}]},
        {"clusterSelector": {"labelSelector": {"matchLabels": {"tier": "gold"}}},
         "manifestSelector": {"kind": "Deployment", "name": "web"},
         "patches": [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"tier": "gold"}}]},
    ], manifestConfigs=[{"resourceIdentifier": {"group": "apps", "resource": "deployments", "name": "web",
                                                 "namespace": "default"},
                         "feedbackRules": [{"type": "WellKnownStatus"}]}])

    works = works_where(hub, ns, "web", lambda w: set(w) == {"member-1", "member-2"}, "a Work per joined cluster")
    one, two = manifest(works["member-1"]), manifest(works["member-2"])
    assert works["member-1"]["metadata"]["name"] == "ws-basic.web"
    assert works["member-1"]["metadata"]["labels"]["multicluster.x-k8s.io/placement-key"] == "web"
    assert works["member-1"]["spec"]["manifestConfigs"][0]["feedbackRules"] == [{"type": "WellKnownStatus"}]
    assert (one["spec"]["replicas"], two["spec"]["replicas"]) == (3, 1)
    assert one["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:eu"
    assert two["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:us"
    assert one["metadata"]["labels"] == {"cluster": "member-1"}  # metadata is validated: placeholders via patches
    assert two["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "CLUSTER", "value": "member-2"}]
    assert "annotations" not in one["spec"]["template"]["metadata"]
    assert two["spec"]["template"]["metadata"]["annotations"] == {"tier": "gold"}
    assert FINALIZER in hub.get_workset(ns, "web")["metadata"]["finalizers"]  # type: ignore[index]

    # the summary follows what the agents report
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("selected") == 3 and s, message="the summary")
    assert summary["failing"] == [{"cluster": "member-9", "reason": "NotJoined", "message": summary["failing"][0][
        "message"]}] and "clusterset.io/member=member-9" in summary["failing"][0]["message"]
    assert hub.conditions(ns, "web")["PlacementFound"]["status"] == "True"
    hub.decide(ns, ["member-1", "member-2"])
    hub.report(works["member-1"])
    hub.report(works["member-2"], applied=False, available=False, message="deployments.apps is forbidden")
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("applied") == 1 and s["failingCount"] == 1
                         and s, message="counts")
    assert (summary["selected"], summary["available"], summary["degraded"], summary["failingCount"]) == (2, 1, 0, 1)
    assert summary["failing"][0]["cluster"] == "member-2"
    assert summary["failing"][0]["message"] == "deployments.apps is forbidden"
    assert hub.conditions(ns, "web")["Applied"]["status"] == "False"
    wait_until(lambda: ("TestAppliedFalse", "cluster member-2: deployments.apps is forbidden")
               in hub.events(ns, "web"), message="an Event for the failure")
    hub.report(hub.works(ns, "web")["member-2"])
    wait_until(lambda: hub.conditions(ns, "web").get("Available", {}).get("status") == "True",
               message="every cluster available")
    assert hub.summary(ns, "web")["failing"] == []

    # a cluster's new property or label changes its copy (a new version, rolled out as any other)
    hub.property("member-2", "region.example.com", "ap")
    hub.label_profile("member-1", {"tier": "gold"})
    works_where(hub, ns, "web", lambda w: manifest(w["member-2"])["spec"]["template"]["spec"]["containers"][
        0]["image"] == "nginx:ap" and "annotations" in manifest(w["member-1"])["spec"]["template"]["metadata"],
        "the Works following the clusters' properties and labels", timeout=20)


def test_a_cluster_dropped_from_the_decision_loses_its_work(hub: Hub) -> None:
    ns = "ws-drop"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2", "member-3"])
    hub.workset(ns, "web", [deployment()])
    works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    hub.decide(ns, ["member-1", "member-3"])
    works_where(hub, ns, "web", lambda w: set(w) == {"member-1", "member-3"}, "member-2's Work deleted")
    wait_until(lambda: hub.summary(ns, "web").get("selected") == 2, message="the summary")


def test_without_any_decision_the_works_are_kept_and_the_condition_says_why(hub: Hub) -> None:
    ns = "ws-undecided"
    hub.namespace_with_placement(ns)
    hub.workset(ns, "web", [deployment()])
    found = wait_until(lambda: hub.conditions(ns, "web").get("PlacementFound"), message="the condition")
    assert (found["status"], found["reason"]) == ("True", "NotDecided")
    assert hub.works(ns, "web") == {}
    hub.workset(ns, "other", [deployment()], placement="missing")
    found = wait_until(lambda: hub.conditions(ns, "other").get("PlacementFound"), message="the condition")
    assert (found["status"], found["reason"]) == ("False", "PlacementNotFound")
    hub.decide(ns, ["member-1"], placement="missing")  # slices count, even for a Placement that does not exist
    works_where(hub, ns, "other", lambda w: set(w) == {"member-1"}, "the decided cluster's Work")
    hub.api.delete_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", ns, "placementdecisions",
                                            "missing-decision-0")
    wait_until(lambda: "kept" in hub.conditions(ns, "other")["PlacementFound"]["message"], message="no decision")
    assert set(hub.works(ns, "other")) == {"member-1"}  # kept


def test_a_template_change_rolls_out_max_unavailable_clusters_at_a_time(hub: Hub) -> None:
    ns = "ws-rollout"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2", "member-3"])
    hub.workset(ns, "web", [deployment("nginx:1.25")], rollout={"maxUnavailable": 1})
    works = works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    for work in works.values():  # new clusters never wait for each other
        hub.report(work)
    wait_until(lambda: hub.conditions(ns, "web").get("Progressing", {}).get("reason") == "RolloutComplete",
               message="the first version complete")
    old = {m: w["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] for m, w in works.items()}

    hub.patch_workset(ns, "web", {"manifests": [deployment("nginx:1.27")]})
    updated: list[str] = []

    def changed(works: dict[str, Obj]) -> list[str]:
        return [m for m, w in works.items() if w["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] != old[m]]

    for step in range(1, 4):
        works = works_where(hub, ns, "web", lambda w, n=step: len(changed(w)) == n, f"update {step}")
        holds_throughout(lambda n=step: len(changed(hub.works(ns, "web"))) == n, 0.5)  # one not yet Available
        new = changed(works)
        member = next(m for m in new if m not in updated)
        updated.append(member)
        assert manifest(works[member])["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
        assert hub.conditions(ns, "web")["Progressing"]["status"] == "True"
        hub.report(works[member])  # available at its new generation: the next cluster may go
    assert updated == ["member-1", "member-2", "member-3"]
    wait_until(lambda: hub.conditions(ns, "web").get("Progressing", {}).get("reason") == "RolloutComplete",
               message="the rollout complete")


def test_a_bad_override_fails_only_that_cluster(hub: Hub) -> None:
    ns = "ws-bad-override"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2", "member-3"])
    hub.workset(ns, "web", [deployment(replicas=1)])
    before = works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    hub.patch_workset(ns, "web", {
        "manifests": [deployment(replicas=2)],
        "overrides": [{"clusterSelector": {"names": ["member-2"]},
                       "patches": [{"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"}]}]})
    after = works_where(hub, ns, "web", lambda w: all(
        manifest(w[m])["spec"]["replicas"] == 2 for m in ("member-1", "member-3")), "the good clusters updated")
    failed = wait_until(lambda: (c := hub.conditions(ns, "web").get("OverrideFailed")) and c["status"] == "True"
                        and c, message="the condition")
    assert "overrides[0]" in failed["message"] and "member-2" in failed["message"]
    assert "/spec/strategy" in failed["message"] and "fix the patch path" in failed["message"]
    assert after["member-2"]["metadata"]["resourceVersion"] == before["member-2"]["metadata"]["resourceVersion"]
    summary = hub.summary(ns, "web")
    assert [(f["cluster"], f["reason"]) for f in summary["failing"]] == [("member-2", "OverrideFailed")]
    wait_until(lambda: any(r == "OverrideFailed" for r, _ in hub.events(ns, "web")), message="an Event")
    hub.patch_workset(ns, "web", {"overrides": [{"clusterSelector": {"names": ["member-2"]}, "patches": [
        {"op": "add", "path": "/spec/strategy", "value": {"type": "Recreate"}}]}]})
    works_where(hub, ns, "web", lambda w: manifest(w["member-2"])["spec"].get("strategy") == {"type": "Recreate"},
                "member-2 updated once the override is fixed")
    wait_until(lambda: hub.conditions(ns, "web")["OverrideFailed"]["status"] == "False", message="cleared")


def test_a_work_the_hub_refuses_is_a_failure_of_that_cluster(hub: Hub) -> None:
    ns = "ws-refused"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1"])
    hub.workset(ns, "web", [deployment()], deleteOption={"propagationPolicy": "Sometimes"})
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("failingCount") == 1 and s, message="failing")
    assert summary["failing"][0]["reason"] == "WorkRejected"
    assert "propagationPolicy" in summary["failing"][0]["message"]
    hub.patch_workset(ns, "web", {"deleteOption": {"propagationPolicy": "Orphan"}})
    works = works_where(hub, ns, "web", lambda w: set(w) == {"member-1"}, "the Work once fixed")
    assert works["member-1"]["spec"]["deleteOption"] == {"propagationPolicy": "Orphan"}
    wait_until(lambda: hub.summary(ns, "web")["failingCount"] == 0, message="no failure left")


def test_deleting_the_workset_deletes_every_work_then_its_finalizer(hub: Hub) -> None:
    ns = "ws-delete"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2", "member-3"])
    hub.workset(ns, "web", [deployment()])
    works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    # one Work is held by its agent's finalizer while it removes what it applied
    held = hub.works(ns, "web")["member-1"]
    hub.api.patch_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", held["metadata"]["namespace"],
                                           "works", held["metadata"]["name"],
                                           {"metadata": {"finalizers": ["multicluster.x-k8s.io/work-cleanup"]}})
    hub.api.delete_namespaced_custom_object("clusterset.io", "v1alpha1", ns, "worksets", "web")
    works_where(hub, ns, "web", lambda w: set(w) == {"member-1"} and w["member-1"]["metadata"].get(
        "deletionTimestamp"), "the other Works gone, the held one deleting")
    ws = hub.get_workset(ns, "web")
    assert ws is not None and FINALIZER in ws["metadata"]["finalizers"]  # waits for the held Work
    hub.api.patch_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", held["metadata"]["namespace"],
                                           "works", held["metadata"]["name"], {"metadata": {"finalizers": None}})
    wait_until(lambda: hub.get_workset(ns, "web") is None, message="the WorkSet gone")
    assert hub.works(ns, "web") == {}


async def test_a_restarted_controller_writes_nothing_when_nothing_changed(hub: Hub) -> None:
    """A second controller, as a restarted hub process would start (empty caches, every WorkSet reconciled from
    what the API holds), writes nothing: no Work, no WorkSet status, no finalizer."""
    ns = "ws-restart"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2"])
    hub.workset(ns, "web", [deployment()], overrides=[{"clusterSelector": {"names": ["member-1"]}, "patches": [
        {"op": "replace", "path": "/spec/replicas", "value": 2}]}])
    works = works_where(hub, ns, "web", lambda w: len(w) == 2, "two Works")
    for work in works.values():
        hub.report(work)
    wait_until(lambda: hub.summary(ns, "web").get("available") == 2, message="settled")

    def versions() -> dict[str, str]:
        items = hub.api.list_cluster_custom_object("clusterset.io", "v1alpha1", "worksets")["items"]
        items += hub.api.list_cluster_custom_object("multicluster.x-k8s.io", "v1alpha1", "works")["items"]
        return {f'{o["kind"]}/{o["metadata"]["namespace"]}/{o["metadata"]["name"]}': o["metadata"]["resourceVersion"]
                for o in items}

    before = versions()
    client: ClusterClient = client_of(hub.info)
    controller = workset_controller("hub")
    reconciled: set[Any] = set()
    inner = controller.reconcile

    async def counting(req: Request) -> Result | None:
        result = await inner(req)
        reconciled.add(req.key)
        return result

    controller.reconcile = counting
    manager = Manager(StaticProvider({"hub": client}), name="restarted")
    manager.add(controller)
    async with manager:  # a second process starting from what the API holds
        deadline = asyncio.get_running_loop().time() + 15
        every = {ObjectKey(o.split("/")[1], o.split("/")[2]) for o in before if o.startswith("WorkSet/")}
        while not every <= reconciled:
            assert asyncio.get_running_loop().time() < deadline, "every WorkSet reconciled"
            await asyncio.sleep(0.05)
        cache = manager.cluster("hub").cache(WORKS, label_selector="clusterset.io/workset")
        assert len(cache.list(label_selector={"clusterset.io/workset-namespace": ns})) == 2
    await client.close()
    assert versions() == before


def test_clusterset_status_shows_the_work_sets(hub: Hub) -> None:
    ns = "ws-status"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-9"])
    hub.workset(ns, "web", [deployment()])
    works = works_where(hub, ns, "web", lambda w: set(w) == {"member-1"}, "the Work")
    hub.report(works["member-1"])
    wait_until(lambda: hub.summary(ns, "web").get("available") == 1, message="the summary")
    state = hub.fleet.fleet_options.state_dir
    result = subprocess.run(_clusterset("status", "--state-dir", str(state)), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    section = result.stdout[result.stdout.index("  WORKSET"):]
    rows = {r[0]: r for r in table(section.split("\n\n")[0])}
    assert rows["WORKSET"] == ["WORKSET", "PLACEMENT", "SELECTED", "APPLIED", "AVAILABLE", "DEGRADED", "FAILING"]
    assert rows[f"{ns}/web"] == [f"{ns}/web", "web", "2", "1", "1", "0", "member-9 (NotJoined)"]


@pytest.fixture(scope="module")
def kubectl_workset(hub: Hub) -> str:
    ns = "ws-kubectl"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2"])
    hub.workset(ns, "web", [deployment()])
    works = works_where(hub, ns, "web", lambda w: len(w) == 2, "two Works")
    hub.report(works["member-1"])
    hub.report(works["member-2"], applied=False, available=False)
    wait_until(lambda: hub.summary(ns, "web").get("failingCount") == 1 and hub.summary(ns, "web")["applied"] == 1,
               message="the summary")
    return ns


@pytest.mark.parametrize("version", sorted(KUBECTLS) or ["missing"])
def test_kubectl_shows_worksets_and_works_with_their_columns(hub: Hub, kubectl_workset: str, version: str,
                                                             tmp_path: Path) -> None:
    if version == "missing":
        pytest.skip("kubectl is not installed on this machine")
    ns = kubectl_workset
    kubectl = Kubectl(KUBECTLS[version], hub.info, tmp_path / "kubectl-cache")
    rows = table(kubectl("get", "worksets", "-n", ns, "-o", "wide"))
    assert rows[0][:7] == ["NAME", "PLACEMENT", "SELECTED", "APPLIED", "AVAILABLE", "DEGRADED", "FAILING"]
    assert rows[1][:7] == ["web", "web", "2", "1", "1", "0", "1"]
    rows = table(kubectl("get", "works", "-n", "clusterset-member-2"))
    assert rows[0][:4] == ["NAME", "APPLIED", "AVAILABLE", "DEGRADED"]
    assert [f"{ns}.web", "False", "False", "False"] in [r[:4] for r in rows]
