"""The WorkSet controller on an embedded fleet: 3 members, whose Work agents apply their Works and report on them,
and 3 clusters another cluster manager lists (`AGENTLESS`: a ClusterProfile and a hub namespace each, no agent).
The tests decide the clusters themselves, writing PlacementDecision slices (their Placements are left to another
scheduler). The tests that drive Works' statuses by hand (`Hub.report`) decide agentless clusters, where they are
the only writers; those about the members' own words (their properties, their agents' finalizers, status and
feedback) decide members. One fleet for the module; each test works in its own namespace and, in the members,
applies its own Deployment."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusterset.api.inventory import member_namespace
from clusterset.api.placement import WORK_CLEANUP_FINALIZER, WORKS
from clusterset.client import ClusterClient
from clusterset.runtime import Manager, Request, Result, StaticProvider
from clusterset.runtime.cache import ObjectKey
from clusterset.testing import FleetThread
from clusterset.workset.controller import workset_controller
from clusterset.workset.works import FINALIZER, TEMPLATE_HASH_ANNOTATION, WORKSET_LABEL, WORKSET_NAMESPACE_LABEL
from clusterset.workset.writes import FIELD_MANAGER as WORKSET_FIELD_MANAGER
from tests.conftest import KUBECTLS, Kubectl
from tests.helpers import table, wait_until
from tests.mcs.fleet import MEMBERS, fleet_options, holds_throughout
from tests.runtime.util import client_of
from tests.test_cli import _clusterset
from tests.workset.hub import CS, MCX, Hub, V, deployment

Obj = dict[str, Any]
AGENTLESS = ("edge-1", "edge-2", "edge-3")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("workset-fleet")) / "fleet", dns=False))
    try:
        hub = Hub(fleet)
        for name in AGENTLESS:
            hub.agentless_cluster(name, labels={"zone": "edge"}, properties={"region.example.com": "edge"})
        yield hub
    finally:
        fleet.stop()


def works_where(hub: Hub, ns: str, name: str, predicate: Any, message: str, timeout: float = 15) -> dict[str, Obj]:
    return wait_until(lambda: (w := hub.works(ns, name)) and predicate(w) and w, timeout, message=message)


def finalizer_owners(work: Obj) -> set[str]:
    return {m["manager"] for m in work["metadata"]["managedFields"]
            if "f:finalizers" in (m.get("fieldsV1") or {}).get("f:metadata", {})}


def manifest(work: Obj, index: int = 0) -> Obj:
    result: Obj = work["spec"]["workload"]["manifests"][index]
    return result


def test_a_workset_makes_a_work_per_decided_cluster_with_overrides_and_placeholders(hub: Hub) -> None:
    """On members: the properties their agents report into their ClusterProfiles fill the placeholders."""
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
    web = deployment(image="nginx:${cluster.properties['region.example.com']}", name=ns)
    web["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "CLUSTER", "value": "${cluster.id}"}]
    hub.workset(ns, "web", [web], overrides=[
        {"patches": [{"op": "add", "path": "/metadata/labels", "value": {"cluster": "${cluster.name}"}}]},
        {"clusterSelector": {"propertySelector": {"matchExpressions": [
            {"name": "replicas.example.com", "operator": "Exists"}]}},
         "patches": [{"op": "replace", "path": "/spec/replicas",
                      "value": "${cluster.properties['replicas.example.com'] | int}"}]},
        {"clusterSelector": {"labelSelector": {"matchLabels": {"tier": "gold"}}},
         "manifestSelector": {"kind": "Deployment", "name": ns},
         "patches": [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"tier": "gold"}}]},
    ], manifestConfigs=[{"resourceIdentifier": {"group": "apps", "resource": "deployments", "name": ns,
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

    # a decided cluster that has not joined fails alone
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("selected") == 3 and s, message="the summary")
    assert summary["failing"] == [{"cluster": "member-9", "reason": "NotJoined", "message": summary["failing"][0][
        "message"]}] and "clusterset.io/member=member-9" in summary["failing"][0]["message"]
    assert hub.conditions(ns, "web")["PlacementFound"]["status"] == "True"

    # a cluster's new property or label changes its copy (a new version, rolled out as any other)
    hub.property("member-2", "region.example.com", "ap")
    hub.label_profile("member-1", {"tier": "gold"})
    works_where(hub, ns, "web", lambda w: manifest(w["member-2"])["spec"]["template"]["spec"]["containers"][
        0]["image"] == "nginx:ap" and "annotations" in manifest(w["member-1"])["spec"]["template"]["metadata"],
        "the Works following the clusters' properties and labels", timeout=20)


def test_the_summary_follows_what_the_works_report(hub: Hub) -> None:
    """On agentless clusters (their profiles another manager's, read as any other), whose Works' statuses the test
    writes."""
    ns = "ws-summary"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["edge-1", "edge-2"])
    hub.workset(ns, "web", [deployment(image="nginx:${cluster.properties['region.example.com']}")])
    works = works_where(hub, ns, "web", lambda w: set(w) == {"edge-1", "edge-2"}, "a Work per cluster")
    # another manager's clusters may run another Work agent, which would never remove ours
    assert [w["metadata"].get("finalizers") for w in works.values()] == [None, None]
    assert {manifest(w)["spec"]["template"]["spec"]["containers"][0]["image"] for w in works.values()} == {
        "nginx:edge"}
    hub.report(works["edge-1"])
    hub.report(works["edge-2"], applied=False, available=False, message="deployments.apps is forbidden")
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("applied") == 1 and s["failingCount"] == 1
                         and s, message="counts")
    assert (summary["selected"], summary["available"], summary["degraded"], summary["failingCount"]) == (2, 1, 0, 1)
    assert summary["failing"][0]["cluster"] == "edge-2"
    assert summary["failing"][0]["message"] == "deployments.apps is forbidden"
    assert hub.conditions(ns, "web")["Applied"]["status"] == "False"
    wait_until(lambda: ("TestAppliedFalse", "cluster edge-2: deployments.apps is forbidden")
               in hub.events(ns, "web"), message="an Event for the failure")
    hub.report(hub.works(ns, "web")["edge-2"])
    wait_until(lambda: hub.conditions(ns, "web").get("Available", {}).get("status") == "True",
               message="every cluster available")
    assert hub.summary(ns, "web")["failing"] == []


def test_a_cluster_dropped_from_the_decision_loses_its_work(hub: Hub) -> None:
    ns = "ws-drop"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2", "member-3"])
    hub.workset(ns, "web", [deployment(name=ns)])
    works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    hub.decide(ns, ["member-1", "member-3"])
    works_where(hub, ns, "web", lambda w: set(w) == {"member-1", "member-3"}, "member-2's Work deleted")
    wait_until(lambda: hub.summary(ns, "web").get("selected") == 2, message="the summary")


def test_without_any_decision_the_works_are_kept_and_the_condition_says_why(hub: Hub) -> None:
    ns = "ws-undecided"
    hub.namespace_with_placement(ns)
    hub.workset(ns, "web", [deployment(name=ns)])
    found = wait_until(lambda: hub.conditions(ns, "web").get("PlacementFound"), message="the condition")
    assert (found["status"], found["reason"]) == ("True", "NotDecided")
    assert hub.works(ns, "web") == {}
    hub.workset(ns, "other", [deployment(name=f"{ns}-other")], placement="missing")
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
    hub.decide(ns, list(AGENTLESS))
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
    assert updated == list(AGENTLESS)
    wait_until(lambda: hub.conditions(ns, "web").get("Progressing", {}).get("reason") == "RolloutComplete",
               message="the rollout complete")


def test_a_bad_override_fails_only_that_cluster(hub: Hub) -> None:
    ns = "ws-bad-override"
    hub.namespace_with_placement(ns)
    hub.decide(ns, list(AGENTLESS))
    hub.workset(ns, "web", [deployment(replicas=1)])
    before = works_where(hub, ns, "web", lambda w: len(w) == 3, "three Works")
    hub.patch_workset(ns, "web", {
        "manifests": [deployment(replicas=2)],
        "overrides": [{"clusterSelector": {"names": ["edge-2"]},
                       "patches": [{"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"}]}]})
    after = works_where(hub, ns, "web", lambda w: all(
        manifest(w[m])["spec"]["replicas"] == 2 for m in ("edge-1", "edge-3")), "the good clusters updated")
    failed = wait_until(lambda: (c := hub.conditions(ns, "web").get("OverrideFailed")) and c["status"] == "True"
                        and c, message="the condition")
    assert "overrides[0]" in failed["message"] and "edge-2" in failed["message"]
    assert "/spec/strategy" in failed["message"] and "fix the patch path" in failed["message"]
    assert after["edge-2"]["metadata"]["resourceVersion"] == before["edge-2"]["metadata"]["resourceVersion"]
    summary = hub.summary(ns, "web")
    assert [(f["cluster"], f["reason"]) for f in summary["failing"]] == [("edge-2", "OverrideFailed")]
    wait_until(lambda: any(r == "OverrideFailed" for r, _ in hub.events(ns, "web")), message="an Event")
    hub.patch_workset(ns, "web", {"overrides": [{"clusterSelector": {"names": ["edge-2"]}, "patches": [
        {"op": "add", "path": "/spec/strategy", "value": {"type": "Recreate"}}]}]})
    works_where(hub, ns, "web", lambda w: manifest(w["edge-2"])["spec"].get("strategy") == {"type": "Recreate"},
                "edge-2 updated once the override is fixed")
    wait_until(lambda: hub.conditions(ns, "web")["OverrideFailed"]["status"] == "False", message="cleared")


def test_a_work_the_hub_refuses_is_a_failure_of_that_cluster(hub: Hub) -> None:
    ns = "ws-refused"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1"])
    hub.workset(ns, "web", [deployment(name=ns)], deleteOption={"propagationPolicy": "Sometimes"})
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("failingCount") == 1 and s, message="failing")
    assert summary["failing"][0]["reason"] == "WorkRejected"
    assert "propagationPolicy" in summary["failing"][0]["message"]
    hub.patch_workset(ns, "web", {"deleteOption": {"propagationPolicy": "Orphan"}})
    works = works_where(hub, ns, "web", lambda w: set(w) == {"member-1"}, "the Work once fixed")
    assert works["member-1"]["spec"]["deleteOption"] == {"propagationPolicy": "Orphan"}
    wait_until(lambda: hub.summary(ns, "web")["failingCount"] == 0, message="no failure left")


def test_deleting_the_workset_deletes_every_work_then_its_finalizer(hub: Hub) -> None:
    """Each member's agent holds its Work with a finalizer until it has removed what it applied; the WorkSet's
    finalizer waits for every Work, here for member-3's while its agent is away."""
    ns = "ws-delete"
    hub.namespace_with_placement(ns)
    hub.decide(ns, list(MEMBERS))
    hub.workset(ns, "web", [deployment(name=ns)])
    works_where(hub, ns, "web", lambda w: len(w) == 3 and all(
        WORK_CLEANUP_FINALIZER in (x["metadata"].get("finalizers") or []) for x in w.values()),
        "three Works, each with its agent's finalizer")
    wait_until(lambda: all(hub.member_deployment(m, ns) for m in MEMBERS), 20, message="the Deployment applied")
    fleet = hub.fleet.fleet
    hub.fleet.call(fleet.members.remove("member-3"))  # member-3's agent stops
    try:
        hub.api.delete_namespaced_custom_object(CS, V, ns, "worksets", "web")
        works_where(hub, ns, "web", lambda w: set(w) == {"member-3"} and w["member-3"]["metadata"].get(
            "deletionTimestamp"), "the other Works gone, member-3's deleting", timeout=20)
        # the other agents let their Works go once they had removed what they applied
        assert [hub.member_deployment(m, ns) for m in ("member-1", "member-2")] == [None, None]
        assert hub.member_deployment("member-3", ns) is not None
        ws = hub.get_workset(ns, "web")
        assert ws is not None and FINALIZER in ws["metadata"]["finalizers"]  # waits for member-3's Work
    finally:
        hub.fleet.call(fleet.join_member("member-3"))  # its agent back
    wait_until(lambda: hub.get_workset(ns, "web") is None, 20, message="the WorkSet gone")
    assert hub.works(ns, "web") == {}
    assert hub.member_deployment("member-3", ns) is None


def test_the_members_agents_apply_a_workset_and_report_it_back(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    """End to end, with the members' Work agents: applied, available, fed back, and removed from a member that
    is no longer decided, without a failed pass on the way."""
    ns = "ws-agents"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["member-1", "member-2"])
    hub.workset(ns, "web", [deployment(replicas=2, name=ns)], manifestConfigs=[
        {"resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": "default", "name": ns},
         "feedbackRules": [{"type": "WellKnownStatus"}]}])
    summary = wait_until(lambda: (s := hub.summary(ns, "web")).get("available") == 2 and s, 30,
                         message="both members available")
    assert (summary["selected"], summary["applied"], summary["available"], summary["degraded"],
            summary["failingCount"]) == (2, 2, 2, 0, 0)
    assert hub.conditions(ns, "web")["Available"]["status"] == "True"
    for member in ("member-1", "member-2"):
        live = hub.member_deployment(member, ns)
        assert live is not None and live["spec"]["replicas"] == 2 and live["status"]["readyReplicas"] == 2
    works = hub.works(ns, "web")
    assert set(works) == {"member-1", "member-2"}
    for work in works.values():
        assert WORK_CLEANUP_FINALIZER in work["metadata"]["finalizers"]
        # made with its agent's finalizer by the WorkSet controller: the agent spent no write of its own on it
        assert finalizer_owners(work) == {WORKSET_FIELD_MANAGER}
        entry = work["status"]["manifestConditions"][0]
        assert entry["identifier"]["name"] == ns
        assert {"name": "readyReplicas", "fieldValue": {"type": "Integer", "integer": 2}} in \
            entry["statusFeedback"]["values"]

    hub.decide(ns, ["member-1"])
    works_where(hub, ns, "web", lambda w: set(w) == {"member-1"}, "member-2's Work gone", timeout=20)
    assert hub.member_deployment("member-2", ns) is None  # removed by its agent before it let the Work go
    assert hub.member_deployment("member-1", ns) is not None
    wait_until(lambda: (s := hub.summary(ns, "web")).get("selected") == 1 and s["available"] == 1,
               message="the summary of the one member left")
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
              and "controller=work-apply" in r.getMessage() and f"/{ns}.web" in r.getMessage()]
    assert failed == []


async def test_a_restarted_controller_writes_nothing_when_nothing_changed(hub: Hub) -> None:
    """A second controller, as a restarted hub process would start (empty caches, every WorkSet reconciled from
    what the API holds), writes nothing: no Work, no WorkSet status, no finalizer. Checked on what has no other
    writer: the agentless clusters' Works, and the WorkSets with no Work in a member (whose agents may still be
    reporting on the other tests' Works)."""
    ns = "ws-restart"
    hub.namespace_with_placement(ns)
    hub.decide(ns, ["edge-1", "edge-2"])
    hub.workset(ns, "web", [deployment()], overrides=[{"clusterSelector": {"names": ["edge-1"]}, "patches": [
        {"op": "replace", "path": "/spec/replicas", "value": 2}]}])
    works = works_where(hub, ns, "web", lambda w: len(w) == 2, "two Works")
    for work in works.values():
        hub.report(work)
    wait_until(lambda: hub.summary(ns, "web").get("available") == 2, message="settled")

    agentless = {member_namespace(c) for c in AGENTLESS}

    def workset_of(work: Obj) -> tuple[str, str]:
        labels = work["metadata"].get("labels") or {}
        return labels.get(WORKSET_NAMESPACE_LABEL, ""), labels.get(WORKSET_LABEL, "")

    def versions() -> dict[str, str]:
        works = hub.api.list_cluster_custom_object(MCX, V, "works")["items"]
        in_members = {workset_of(w) for w in works if w["metadata"]["namespace"] not in agentless}
        items = [ws for ws in hub.api.list_cluster_custom_object(CS, V, "worksets")["items"]
                 if (ws["metadata"]["namespace"], ws["metadata"]["name"]) not in in_members]
        items += [w for w in works if w["metadata"]["namespace"] in agentless]
        return {f'{o["kind"]}/{o["metadata"]["namespace"]}/{o["metadata"]["name"]}': o["metadata"]["resourceVersion"]
                for o in items}

    before = versions()
    assert {f"WorkSet/{ns}/web", f"Work/clusterset-edge-1/{ns}.web", f"Work/clusterset-edge-2/{ns}.web"} <= set(before)
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
    hub.decide(ns, ["edge-1", "member-9"])
    hub.workset(ns, "web", [deployment()])
    works = works_where(hub, ns, "web", lambda w: set(w) == {"edge-1"}, "the Work")
    hub.report(works["edge-1"])
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
    hub.decide(ns, ["edge-1", "edge-2"])
    hub.workset(ns, "web", [deployment()])
    works = works_where(hub, ns, "web", lambda w: len(w) == 2, "two Works")
    hub.report(works["edge-1"])
    hub.report(works["edge-2"], applied=False, available=False)
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
    rows = table(kubectl("get", "works", "-n", "clusterset-edge-2"))
    assert rows[0][:4] == ["NAME", "APPLIED", "AVAILABLE", "DEGRADED"]
    assert [f"{ns}.web", "False", "False", "False"] in [r[:4] for r in rows]
