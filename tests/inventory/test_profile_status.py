"""The decisions of the inventory: report → profile status (pure), and what the profile manager writes."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from clusterset.api.inventory import CLUSTER_ID_PROPERTY
from clusterset.api.objects import condition
from clusterset.api.times import rfc3339
from clusterset.client.errors import AlreadyExists
from clusterset.inventory.profile_status import (
    AccessProvider,
    desired_profile,
    desired_status,
    without_observation_times,
)
from clusterset.inventory.profiles import ProfileManager, WriteBudget
from clusterset.inventory.report import Observation, desired_report

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENDPOINT = {"server": "https://127.0.0.1:6443/clusters/m1", "certificate-authority-data": "Q0E="}


def report(seen: Observation, at: datetime, previous: dict | None = None) -> dict:  # type: ignore[type-arg]
    return desired_report("m1", "clusterset-m1", seen, ENDPOINT, previous, rfc3339(at))


def healthy_seen() -> Observation:
    return Observation(version="v1.30.0", properties={CLUSTER_ID_PROPERTY: "m1", "zone.example.com": "eu"})


def test_a_fresh_healthy_report_gives_a_healthy_joined_profile() -> None:
    r = report(healthy_seen(), T0)
    providers = (AccessProvider("clusterset-embedded", {"clusterName": "{cluster}"}),)
    status = desired_status("m1", r, None, T0 + timedelta(seconds=1), 40, providers)
    assert condition(status["conditions"], "ControlPlaneHealthy")["status"] == "True"
    assert condition(status["conditions"], "Joined")["status"] == "True"
    assert status["version"] == {"kubernetes": "1.30.0"}
    assert [(p["name"], p["value"]) for p in status["properties"]] == [
        (CLUSTER_ID_PROPERTY, "m1"), ("zone.example.com", "eu")]
    assert status["properties"][0]["lastObservedTime"] == rfc3339(T0)
    (provider,) = status["accessProviders"]
    assert provider["cluster"]["server"] == ENDPOINT["server"]
    assert provider["cluster"]["extensions"] == [
        {"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": "m1"}}]


def test_no_report_means_not_joined_and_unknown_health() -> None:
    status = desired_status("m1", None, None, T0, 40)
    assert condition(status["conditions"], "Joined")["reason"] == "AgentNotConnected"
    assert condition(status["conditions"], "ControlPlaneHealthy")["status"] == "Unknown"


def test_a_stale_report_turns_health_unknown_and_keeps_the_transition_time() -> None:
    r = report(healthy_seen(), T0)
    first = desired_status("m1", r, None, T0, 40)
    stale = desired_status("m1", r, first, T0 + timedelta(seconds=41), 40)
    healthy = condition(stale["conditions"], "ControlPlaneHealthy")
    assert healthy["status"] == "Unknown" and healthy["reason"] == "AgentStoppedReporting"
    assert healthy["lastTransitionTime"] == rfc3339(T0 + timedelta(seconds=41))
    # Joined did not change, so its transition time is the first one
    assert condition(stale["conditions"], "Joined")["lastTransitionTime"] == rfc3339(T0)


def test_an_unreachable_member_is_unhealthy_and_keeps_its_last_known_facts() -> None:
    good = report(healthy_seen(), T0)
    bad = report(Observation(readyz_error="connection refused"), T0 + timedelta(seconds=10), good)
    status = desired_status("m1", bad, None, T0 + timedelta(seconds=11), 40)
    healthy = condition(status["conditions"], "ControlPlaneHealthy")
    assert healthy["status"] == "False" and healthy["reason"] == "ReadyzFailed"
    assert "connection refused" in healthy["message"]
    assert status["version"] == {"kubernetes": "1.30.0"} and len(status["properties"]) == 2


def test_an_agent_that_refuses_says_why_in_joined() -> None:
    seen = Observation(version="v1.30.0", properties={CLUSTER_ID_PROPERTY: "renamed"})
    status = desired_status("m1", report(seen, T0), None, T0, 40)
    joined = condition(status["conditions"], "Joined")
    assert joined["status"] == "False" and joined["reason"] == "ClusterIdMismatch"
    assert "clusterset leave" in joined["message"]


def test_heartbeats_change_only_observation_times() -> None:
    a = desired_status("m1", report(healthy_seen(), T0), None, T0, 40)
    b = desired_status("m1", report(healthy_seen(), T0 + timedelta(seconds=10)), a, T0 + timedelta(seconds=10), 40)
    assert a != b
    before = copy.deepcopy(a)
    assert without_observation_times(a) == without_observation_times(b)
    assert a == before  # compared, not changed: the statuses are the caches' and the writers'
    assert "observedTime" not in without_observation_times(a)
    assert all("lastTransitionTime" not in c for c in without_observation_times(a)["conditions"])
    changed = Observation(version="v1.30.0", properties={CLUSTER_ID_PROPERTY: "m1", "zone.example.com": "us"})
    c = desired_status("m1", report(changed, T0 + timedelta(seconds=20)), b, T0 + timedelta(seconds=20), 40)
    assert without_observation_times(c) != without_observation_times(b)


def test_what_a_profile_cannot_hold_is_left_out_or_made_valid() -> None:
    """A long ClusterProperty value (legal) or a bad reason from an agent must not make every write fail."""
    seen = Observation(version="v1.30.0", properties={CLUSTER_ID_PROPERTY: "m1", "blob.example.com": "x" * 1025,
                                                      "fits.example.com": "y" * 1024})
    r = report(seen, T0)
    r["status"]["conditions"][0]["reason"] = "not a reason!"
    status = desired_status("m1", r, None, T0, 40)
    assert [p["name"] for p in status["properties"]] == [CLUSTER_ID_PROPERTY, "fits.example.com"]
    healthy = condition(status["conditions"], "ControlPlaneHealthy")
    assert healthy["status"] == "True" and healthy["reason"] == "Reported"


def test_the_write_budget_is_one_per_interval_with_a_burst_of_ten() -> None:
    budget = WriteBudget.full(30.0, 10, now=0.0)
    for _ in range(10):  # a flapping member: ten real changes at once
        assert budget.wait(0.0, freshness_only=False) <= 0
        budget.spend(0.0)
    assert budget.wait(0.0, freshness_only=False) == 30.0
    assert budget.wait(15.0, freshness_only=False) == 15.0
    assert budget.wait(30.0, freshness_only=False) <= 0
    budget.spend(30.0)
    # freshness alone waits a whole interval after the last write, even with tokens to spare
    budget = WriteBudget.full(30.0, 10, now=0.0)
    budget.spend(0.0)
    assert budget.wait(10.0, freshness_only=True) == 20.0
    assert budget.wait(10.0, freshness_only=False) <= 0


class FakeHub:
    """What ProfileManager calls on the hub, recorded; profiles live in `objects`."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.rv = 0

    def _stored(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        stored = {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{obj['metadata']['name']}",
                                      "resourceVersion": str(self.rv)}}
        self.objects[obj["metadata"]["name"]] = stored
        return stored

    async def create(self, _res: Any, obj: dict[str, Any], field_manager: str | None = None) -> dict[str, Any]:
        self.calls.append(("create", obj["metadata"]["name"]))
        if obj["metadata"]["name"] in self.objects:
            raise AlreadyExists(409, {"reason": "AlreadyExists"})
        return self._stored(obj)

    async def get(self, _res: Any, name: str, _namespace: str | None = None) -> dict[str, Any]:
        self.calls.append(("get", name))
        return self.objects[name]

    async def apply(self, _res: Any, obj: dict[str, Any], _manager: str, subresource: str | None = None
                    ) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        self.calls.append(("apply", name))
        return self._stored({**self.objects[name], "status": obj["status"]})

    async def delete(self, _res: Any, name: str, _namespace: str | None = None, **_options: Any) -> None:
        self.calls.append(("delete", name))
        del self.objects[name]


MEMBER_NS = {"metadata": {"name": "clusterset-m1", "labels": {"clusterset.io/member": "m1"}}}


async def test_the_manager_writes_changes_at_once_and_freshness_at_most_every_interval() -> None:
    hub = FakeHub()
    manager = ProfileManager(hub, "clusterset")  # type: ignore[arg-type]
    now = datetime.now(UTC)
    first = report(healthy_seen(), now)
    again = await manager.reconcile("m1", MEMBER_NS, first, None)
    assert hub.calls == [("create", "m1"), ("apply", "m1")]
    assert again is not None and 39 < again <= 40.05  # look again when the report would go stale
    # the cache has not seen the write yet: the same report again writes nothing
    stale_cache = {**hub.objects["m1"], "status": None, "metadata": {**hub.objects["m1"]["metadata"],
                                                                       "resourceVersion": "1"}}
    await manager.reconcile("m1", MEMBER_NS, first, stale_cache)
    assert hub.calls == [("create", "m1"), ("apply", "m1")]
    # a heartbeat (observation times only) waits for the interval
    heartbeat = report(healthy_seen(), now + timedelta(seconds=1), first)
    again = await manager.reconcile("m1", MEMBER_NS, heartbeat, hub.objects["m1"])
    assert hub.calls[-1] == ("apply", "m1") and len(hub.calls) == 2
    assert again is not None and 29 < again <= 30
    # a real change does not wait
    changed = Observation(version="v1.31.0", properties=healthy_seen().properties)
    await manager.reconcile("m1", MEMBER_NS, report(changed, now + timedelta(seconds=2), heartbeat),
                            hub.objects["m1"])
    assert len(hub.calls) == 3 and hub.objects["m1"]["status"]["version"] == {"kubernetes": "1.31.0"}
    # the member leaves: its profile goes
    await manager.reconcile("m1", None, None, hub.objects["m1"])
    assert hub.calls[-1] == ("delete", "m1") and "m1" not in hub.objects


async def test_the_manager_leaves_another_managers_profile_alone() -> None:
    hub = FakeHub()
    manager = ProfileManager(hub, "clusterset")  # type: ignore[arg-type]
    theirs = desired_profile("m1", "clusterset")
    theirs["spec"]["clusterManager"] = {"name": "ocm"}
    hub._stored(theirs)
    # not a member of ours: not deleted
    assert await manager.reconcile("m1", None, None, hub.objects["m1"]) is None
    # a member of ours with that id: its profile is not taken over, even when the cache has not seen it
    assert await manager.reconcile("m1", MEMBER_NS, report(healthy_seen(), T0), None) is None
    assert hub.calls == [("create", "m1"), ("get", "m1")]
    assert hub.objects["m1"]["spec"]["clusterManager"] == {"name": "ocm"} and "status" not in hub.objects["m1"]


async def test_a_member_whose_clock_is_behind_is_not_taken_for_silent() -> None:
    hub = FakeHub()
    manager = ProfileManager(hub, "clusterset", grace_seconds=40)  # type: ignore[arg-type]
    skewed = datetime.now(UTC) - timedelta(hours=2)  # the agent's clock is two hours behind the hub's
    first = report(healthy_seen(), skewed)
    again = await manager.reconcile("m1", MEMBER_NS, first, None)
    assert condition(hub.objects["m1"]["status"]["conditions"], "ControlPlaneHealthy")["status"] == "True"
    assert again is not None and 39 < again <= 40.05  # stale only if it stops changing for a grace period
    # the next heartbeat, still two hours "old", keeps it healthy
    await manager.reconcile("m1", MEMBER_NS, report(healthy_seen(), skewed + timedelta(seconds=10), first),
                            hub.objects["m1"])
    assert condition(hub.objects["m1"]["status"]["conditions"], "ControlPlaneHealthy")["status"] == "True"


def agent_lease(holder: str, renewed: str) -> dict[str, Any]:
    return {"metadata": {"name": "clusterset-endpoints", "namespace": "clusterset-m1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40, "renewTime": renewed}}


async def test_the_agents_lease_keeps_its_profile_healthy_between_reports() -> None:
    """The agent writes its report when it changes; its Lease's renewals show it alive meanwhile (by the hub's
    clock), and only its own Lease's."""
    hub = FakeHub()
    grace = 0.3
    manager = ProfileManager(hub, "clusterset", grace_seconds=grace)  # type: ignore[arg-type]
    first = report(healthy_seen(), datetime.now(UTC))

    def health() -> dict[str, Any]:
        return condition(hub.objects["m1"]["status"]["conditions"], "ControlPlaneHealthy") or {}

    await manager.reconcile("m1", MEMBER_NS, first, None, agent_lease("m1", "2026-01-01T00:00:00.000000Z"))
    for i in range(1, 4):  # the report ages past the grace period; the Lease is renewed within it each time
        await asyncio.sleep(grace * 2 / 3)
        renewed = f"2026-01-01T00:00:0{i}.000000Z"
        again = await manager.reconcile("m1", MEMBER_NS, first, hub.objects["m1"], agent_lease("m1", renewed))
        assert health()["status"] == "True"
        assert again is not None and again <= grace + 0.05  # looked at again when the renewal would go stale
    await asyncio.sleep(grace * 2 / 3)
    # another holder's renewal is no sign of this agent's life: silent for longer than the grace period now
    await manager.reconcile("m1", MEMBER_NS, first, hub.objects["m1"], agent_lease("someone", "2026-01-01T00:01:00Z"))
    assert health()["status"] == "Unknown" and health()["reason"] == "AgentStoppedReporting"
    # its own Lease again (first seen now, as after a hub restart: alive), then silent: the message names both
    await manager.reconcile("m1", MEMBER_NS, first, hub.objects["m1"], agent_lease("m1", renewed))
    assert health()["status"] == "True"
    await asyncio.sleep(grace * 1.2)
    await manager.reconcile("m1", MEMBER_NS, first, hub.objects["m1"], agent_lease("m1", renewed))
    assert health()["status"] == "Unknown"
    assert f"has not reported since {first['status']['observedTime']} nor renewed its Lease since {renewed}" in \
        health()["message"], health()
