"""More than 100 decisions: a hub with 150 ClusterProfiles made directly (another cluster manager's, with their status
written through the status subresource), so the scheduler splits its choice into slices of 100 and removes the
slices it no longer needs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import watch

from clusterset.fleet.embedded import FleetOptions
from clusterset.fleet.hub import HubOptions, start_hub
from clusterset.runtime import Manager
from clusterset.testing import FleetThread
from tests.conftest import KUBECTLS
from tests.helpers import table, wait_until
from tests.placement.fleet import CLUSTERSET, OURS, UPSTREAM, Hub

COUNT = 150


def profile_name(i: int) -> str:
    return f"cluster-{i:03d}"


def make_profile(hub: Hub, i: int) -> None:
    name = profile_name(i)
    hub.api.create_namespaced_custom_object(*UPSTREAM, CLUSTERSET, "clusterprofiles", {
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
        "metadata": {"name": name, "labels": {"x-k8s.io/cluster-manager": "elsewhere", "zone": f"z{i % 3}"}},
        "spec": {"displayName": name, "clusterManager": {"name": "elsewhere"}}})
    hub.api.patch_namespaced_custom_object_status(*UPSTREAM, CLUSTERSET, "clusterprofiles", name, {"status": {
        "conditions": [{"type": "ControlPlaneHealthy", "status": "True", "reason": "Made", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "properties": [{"name": "index", "value": str(i)}]}})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    state = Path(tmp_path_factory.mktemp("placement-slices")) / "fleet"
    thread = FleetThread(FleetOptions(state, members=0, dns=False))
    try:
        hub = Hub(thread.info("hub"))
        for i in range(COUNT):
            make_profile(hub, i)
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def hub(fleet: FleetThread) -> Hub:
    return Hub(fleet.info("hub"))


def test_more_than_100_decisions_are_split_into_slices_and_removed_again(hub: Hub) -> None:
    everyone = [profile_name(i) for i in range(COUNT)]
    hub.place("default", "wide", {})
    hub.wait_decided("default", "wide", everyone)
    first, second = hub.slices("default", "wide")
    assert [s["metadata"]["name"] for s in (first, second)] == ["wide-decision-0", "wide-decision-1"]
    assert (len(first["decisions"]), len(second["decisions"])) == (100, 50)
    assert second["metadata"]["labels"]["multicluster.x-k8s.io/decision-index"] == "1"
    assert hub.placement("default", "wide")["status"]["numberOfSelectedClusters"] == COUNT

    # a new cluster joins: it goes into the slice where its name sorts, the first slice keeps its 100
    make_profile(hub, COUNT)
    hub.wait_decided("default", "wide", [*everyone, profile_name(COUNT)])
    assert hub.slices("default", "wide")[0]["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    # fewer than 100: the second slice goes
    hub.api.patch_namespaced_custom_object(*OURS, "default", "placements", "wide", {"spec": {
        "predicates": [{"propertySelector": {"matchExpressions": [{"name": "index", "operator": "Lt",
                                                                   "values": ["80"]}]}}]}})
    hub.wait_decided("default", "wide", everyone[:80])
    assert [s["metadata"]["name"] for s in hub.slices("default", "wide")] == ["wide-decision-0"]
    # and nothing at all: slice 0 stays, empty
    hub.api.patch_namespaced_custom_object(*OURS, "default", "placements", "wide", {"spec": {
        "predicates": [{"labelSelector": {"matchLabels": {"zone": "nowhere"}}}]}})
    hub.wait_decided("default", "wide", [])
    c = hub.wait_reason("default", "wide", "NoClusterMatched")
    assert c["observedGeneration"] == 3 and c["message"] == f"0 of 0 qualifying: {COUNT + 1} not matching any predicate"
    wait_until(lambda: hub.placement("default", "wide")["status"]["numberOfSelectedClusters"] == 0)


def test_a_restarted_scheduler_rewrites_nothing(hub: Hub, fleet: FleetThread) -> None:
    hub.place("default", "steady", {"numberOfClusters": 120})
    hub.wait_decided("default", "steady", [profile_name(i) for i in range(120)])
    hub.wait_reason("default", "steady", "AllDecided")
    start = hub.api.list_namespaced_custom_object(*OURS, "default", "placements")["metadata"]["resourceVersion"]

    async def restart() -> None:
        await fleet.fleet.hub_manager.stop()
        fleet.fleet.hub_manager = Manager(name="hub")
        await start_hub(fleet.fleet.hub_manager, fleet.fleet.admin_client("hub"),
                        HubOptions(bind_namespaces=("default", CLUSTERSET)))

    fleet.call(restart())
    hub.place("default", "after-restart", {"numberOfClusters": 1, "prioritizers": [{"type": "Steady"}]})
    hub.wait_decided("default", "after-restart", [profile_name(0)])
    for plural, group in (("placementdecisions", UPSTREAM), ("placements", OURS)):
        events = list(watch.Watch().stream(hub.api.list_namespaced_custom_object, *group, "default", plural,
                                           resource_version=start, timeout_seconds=1))
        names = {e["object"]["metadata"]["name"] for e in events}
        assert names <= {"after-restart", "after-restart-decision-0"}, names


def test_a_placement_is_decided_in_one_reconcile_and_a_changed_slice_is_put_back(hub: Hub,
                                                                                   fleet: FleetThread) -> None:
    """The scheduler's own slice write reconciles nothing more; someone else's change to the slice does."""
    def reconciles() -> float:
        registry = fleet.fleet.hub_manager.metrics.registry
        return registry.get_sample_value("controller_runtime_reconcile_total", {
            "controller": "placement-scheduler", "cluster": "hub", "result": "success"}) or 0.0

    before = reconciles()
    hub.place("default", "once", {"numberOfClusters": 2, "prioritizers": [{"type": "Steady"}]})
    hub.wait_decided("default", "once", [profile_name(0), profile_name(1)])
    hub.wait_reason("default", "once", "AllDecided")  # written after the slice's event was seen
    # counted once the reconcile has returned, which may be just after its status write is seen
    wait_until(lambda: reconciles() - before >= 1, message="the Placement's reconcile counted")
    assert reconciles() - before == 1

    (only,) = hub.slices("default", "once")
    emptied = hub.api.patch_namespaced_custom_object(*UPSTREAM, "default", "placementdecisions",
                                                     only["metadata"]["name"], {"decisions": []})
    assert emptied["decisions"] == []
    hub.wait_decided("default", "once", [profile_name(0), profile_name(1)])
    wait_until(lambda: reconciles() - before == 2, message="the Placement reconciled once more")


def test_a_placement_another_scheduler_decides_is_left_alone(hub: Hub) -> None:
    hub.place("default", "outside", {"numberOfClusters": 1, "prioritizers": [{"type": "Steady"}]})
    hub.wait_decided("default", "outside", [profile_name(0)])
    # the outside scheduler takes over: ours writes nothing more for it, even as its spec changes
    hub.api.patch_namespaced_custom_object(*OURS, "default", "placements", "outside", {
        "metadata": {"annotations": {"clusterset.io/scheduling-disabled": "true"}}, "spec": {"numberOfClusters": 2}})
    # decided after any reaction to the change above (Steady alone: ties go by name)
    hub.place("default", "marker", {"numberOfClusters": 1, "prioritizers": [{"type": "Steady"}]})
    hub.wait_decided("default", "marker", [profile_name(0)])
    assert [d["clusterProfileRef"]["name"] for s in hub.slices("default", "outside") for d in s["decisions"]] == [
        profile_name(0)]
    # and back: ours decides it again
    hub.api.patch_namespaced_custom_object(*OURS, "default", "placements", "outside", {
        "metadata": {"annotations": {"clusterset.io/scheduling-disabled": None}}})
    wait_until(lambda: sum(len(s["decisions"]) for s in hub.slices("default", "outside")) == 2, 30,
               message="our scheduler to decide the Placement again, with its new numberOfClusters")


@pytest.mark.parametrize("version", sorted(KUBECTLS) or ["missing"])
def test_kubectl_shows_placements_and_bindings_with_their_columns(fleet: FleetThread, hub: Hub, version: str,
                                                                  tmp_path: Path) -> None:
    if version == "missing":
        pytest.skip("kubectl is not installed on this machine")
    name = "columns-" + version.replace(".", "-")
    hub.place("default", name, {"numberOfClusters": 2})
    hub.wait_reason("default", name, "AllDecided")
    state = fleet.state_dir
    assert state is not None

    def kubectl(*args: str) -> list[list[str]]:
        out = subprocess.run([KUBECTLS[version], f"--kubeconfig={state / 'kubeconfig'}",
                              f"--cache-dir={tmp_path / 'cache'}", "--context", "hub", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return table(out.stdout)

    rows = kubectl("get", "placements", "-n", "default", name)
    assert rows[0] == ["NAME", "SATISFIED", "REASON", "SELECTED", "AGE"]
    assert rows[1][:4] == [name, "True", "AllDecided", "2"]
    rows = kubectl("get", "clustersetbindings")  # the hub context's namespace is the ClusterSet's
    assert rows[0] == ["NAME", "NAMESPACE BOUND", "AGE"]
    assert [r[:2] for r in rows[1:]] == [["clusterset", "clusterset"], ["default", "default"]]
    assert kubectl("get", "placementdecisions", "-n", "default", f"{name}-decision-0")[1][0] == f"{name}-decision-0"
