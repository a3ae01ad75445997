"""Agents started together (every member of an embedded fleet) spread their heartbeats over the interval instead of
renewing their Leases in the same moment: a synchronized fleet makes one burst of writes per interval that every
other request waits behind. An idle agent's heartbeat is its Lease alone."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.api.mcs import ENDPOINT_LEASE
from clusterset.api.objects import condition
from clusterset.client import ClusterClient
from clusterset.fleet.embedded import EMBEDDED_REPORT_WORKERS, FleetOptions
from clusterset.testing import FleetThread
from tests.helpers import custom, wait_until

HEARTBEAT = 1.0
MEMBERS = 10


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetThread]:
    thread = FleetThread(FleetOptions(tmp_path / "fleet", members=MEMBERS, heartbeat=HEARTBEAT, grace=10.0))
    try:
        yield thread
    finally:
        thread.stop()


def _largest_gap_on_circle(phases: list[float], period: float) -> float:
    ordered = sorted(p % period for p in phases)
    gaps = [b - a for a, b in itertools.pairwise(ordered)] + [ordered[0] + period - ordered[-1]]
    return max(gaps)


def _renewed(fleet: FleetThread) -> dict[str, datetime]:
    items = client.CoordinationV1Api(fleet.info("hub").api_client()).list_lease_for_all_namespaces(
        field_selector=f"metadata.name={ENDPOINT_LEASE}").items
    return {i.metadata.namespace: i.spec.renew_time for i in items}


def test_members_heartbeats_are_spread_over_the_interval(fleet: FleetThread) -> None:
    leases = client.CoordinationV1Api(fleet.info("hub").api_client())
    last_seen: dict[str, float] = {}
    stop = threading.Event()

    def follow() -> None:
        stream = watch.Watch()
        for event in stream.stream(leases.list_lease_for_all_namespaces,
                                   field_selector=f"metadata.name={ENDPOINT_LEASE}", timeout_seconds=30):
            last_seen[event["object"].metadata.namespace] = time.monotonic()
            if stop.is_set():
                stream.stop()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    deadline = time.monotonic() + 30
    while len(last_seen) < MEMBERS:  # every member's agent renewed its Lease
        assert time.monotonic() < deadline, f"renewals seen from {sorted(last_seen)} only"
        time.sleep(0.05)
    time.sleep(3 * HEARTBEAT)  # past the first heartbeat: each agent now renews once per interval, in its phase
    phases = dict(last_seen)
    stop.set()
    assert len(phases) == MEMBERS
    occupied = HEARTBEAT - _largest_gap_on_circle(list(phases.values()), HEARTBEAT)
    # synchronized agents would share one moment (an arc of a few ms); 10 random phases fall within a fifth of the
    # interval with a probability of about 1e-5
    assert occupied > 0.2 * HEARTBEAT, f"the heartbeats fill only {occupied:.3f} s of the {HEARTBEAT} s interval"
    # every member's reports share one controller in this process: one waiting on its probe does not hold the others
    assert fleet.fleet.members.options.report_workers == EMBEDDED_REPORT_WORKERS > MEMBERS


def _report_version(fleet: FleetThread, member: str) -> str | None:
    try:
        report = custom(fleet.info("hub")).get_namespaced_custom_object(
            "clusterset.io", "v1alpha1", f"clusterset-{member}", "clusterreports", member)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str(report["metadata"]["resourceVersion"])


def _health(fleet: FleetThread, member: str) -> tuple[str, str]:
    profile = custom(fleet.info("hub")).get_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1alpha1", "clusterset", "clusterprofiles", member)
    found = condition((profile.get("status") or {}).get("conditions"), "ControlPlaneHealthy") or {}
    return str(found.get("status", "")), str(found.get("message", ""))


def _joined_since(fleet: FleetThread, member: str) -> str:
    """When the profile's Joined condition last changed status (a flip to AgentNotConnected and back moves it)."""
    profile = custom(fleet.info("hub")).get_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1alpha1", "clusterset", "clusterprofiles", member)
    found = condition((profile.get("status") or {}).get("conditions"), "Joined") or {}
    assert found.get("status") == "True", found
    return str(found["lastTransitionTime"])


def _count_requests(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The paths of every `ClusterClient.request` from now on (the agents' probes)."""
    asked: Counter[str] = Counter()
    request = ClusterClient.request

    async def counted(self: ClusterClient, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        asked[path] += 1
        return await request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(ClusterClient, "request", counted)
    return asked


def test_an_idle_agent_renews_its_lease_and_leaves_its_report_alone(tmp_path: Path) -> None:
    """The agent's heartbeat is its Lease, as a kubelet's is its node Lease: an idle member's report is not written
    again every heartbeat, and its profile stays healthy past the grace period on the Lease's renewals alone. An
    agent that stops renews nothing more: its profile turns Unknown, saying since when it has been silent."""
    heartbeat, grace = 0.5, 2.0
    thread = FleetThread(FleetOptions(tmp_path / "fleet", members=2, heartbeat=heartbeat, grace=grace))
    try:
        wait_until(lambda: _health(thread, "member-1")[0] == "True", timeout=30)
        time.sleep(2 * heartbeat)  # past the first, spread heartbeat
        report = _report_version(thread, "member-1")
        renewals, health = set(), set()
        window = time.monotonic() + 2 * grace
        while time.monotonic() < window:
            renewals.add(_renewed(thread)["clusterset-member-1"])
            health.add(_health(thread, "member-1")[0])
            time.sleep(0.1)
        assert len(renewals) >= 2 * grace / heartbeat - 2, renewals  # renewed every heartbeat
        assert _report_version(thread, "member-1") == report  # nothing new to say: not written
        assert health == {"True"}
        # someone deletes the report, then the Lease: the agent writes each again at once, not at its next refresh,
        # and the profile waits for the report (its Lease renewed) rather than flip to AgentNotConnected and back
        joined_since = _joined_since(thread, "member-1")
        custom(thread.info("hub")).delete_namespaced_custom_object(
            "clusterset.io", "v1alpha1", "clusterset-member-1", "clusterreports", "member-1")
        wait_until(lambda: _report_version(thread, "member-1") not in (None, report), timeout=5 * heartbeat)
        time.sleep(2 * heartbeat)  # what the profile manager makes of it
        assert _joined_since(thread, "member-1") == joined_since
        client.CoordinationV1Api(thread.info("hub").api_client()).delete_namespaced_lease(
            ENDPOINT_LEASE, "clusterset-member-1")
        wait_until(lambda: "clusterset-member-1" in _renewed(thread), timeout=5 * heartbeat)
        wait_until(lambda: _health(thread, "member-1")[0] == "True", timeout=5 * heartbeat)
        thread.call(thread.fleet.agent_manager.remove_cluster("member-1"))  # the agent stops working
        _status, message = wait_until(lambda: h if (h := _health(thread, "member-1"))[0] == "Unknown" else None,
                                     timeout=4 * grace)
        assert "nor renewed its Lease since" in message, message
        assert _health(thread, "member-2")[0] == "True"
    finally:
        thread.stop()


def test_an_idle_fleet_asks_readyz_once_per_member_and_heartbeat(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent asks `/readyz` once a heartbeat, and renews its Lease on that answer (the Lease's renewer asked
    again before), and `/version` once a minute, not every heartbeat; the Leases are renewed all the same."""
    asked = _count_requests(monkeypatch)
    members = 4
    thread = FleetThread(FleetOptions(tmp_path / "fleet", members=members, heartbeat=HEARTBEAT, grace=10.0))
    try:
        before = wait_until(lambda: r if len(r := _renewed(thread)) == members else None, timeout=30)
        time.sleep(2 * HEARTBEAT)  # past every agent's first, spread interval
        asked.clear()
        started = time.monotonic()
        time.sleep(5 * HEARTBEAT)  # a window of heartbeats, counted
        beats = (time.monotonic() - started) / HEARTBEAT * members
        readyz, version = asked["/readyz"], asked["/version"]
        after = _renewed(thread)
    finally:
        thread.stop()
    assert readyz <= 1.4 * beats, f"/readyz asked {readyz} times in {beats:.0f} member heartbeats"
    assert version == 0, f"/version asked {version} times within its minute"
    assert all((after[ns] - before[ns]).total_seconds() >= 4 * HEARTBEAT for ns in before), (before, after)


def test_a_restarted_fleet_keeps_its_reports_and_leases_until_their_heartbeat(tmp_path: Path) -> None:
    """A report written less than its interval before a restart is not written again at start (nor, then, its
    profile), and a Lease renewed less than a heartbeat before is not renewed at start: a restarted fleet of N
    members would otherwise write 3 N objects at once. A report that changed is written at once."""
    options = FleetOptions(tmp_path / "fleet", members=3, heartbeat=60.0, grace=120.0)  # Leases renewed every 13 s

    def reports(fleet: FleetThread) -> dict[str, str]:
        items = custom(fleet.info("hub")).list_cluster_custom_object("clusterset.io", "v1alpha1",
                                                                     "clusterreports")["items"]
        return {i["metadata"]["namespace"]: i["metadata"]["resourceVersion"] for i in items}

    def leases(fleet: FleetThread) -> dict[str, str]:
        items = client.CoordinationV1Api(fleet.info("hub").api_client()).list_lease_for_all_namespaces(
            field_selector=f"metadata.name={ENDPOINT_LEASE}").items
        return {i.metadata.namespace: i.metadata.resource_version for i in items}

    def properties_reported(fleet: FleetThread, member: str) -> set[str]:
        report = custom(fleet.info("hub")).get_namespaced_custom_object(
            "clusterset.io", "v1alpha1", f"clusterset-{member}", "clusterreports", member)
        return {p["name"] for p in report["status"].get("properties") or []}

    first = FleetThread(options)
    try:
        before = wait_until(lambda: r if len(r := reports(first)) == 3 else None, timeout=30)
        leased = wait_until(lambda: r if len(r := leases(first)) == 3 else None, timeout=30)
        port = first.server.port
    finally:
        first.stop()
    options.port = port
    second = FleetThread(options)
    try:
        # every agent is running once member-1's has reported a property made after the restart
        custom(second.info("member-1")).create_cluster_custom_object(
            "about.k8s.io", "v1beta1", "clusterproperties",
            {"metadata": {"name": "zone.example.com"}, "spec": {"value": "eu-west"}})
        wait_until(lambda: "zone.example.com" in properties_reported(second, "member-1"), timeout=30)
        after = reports(second)
        assert after["clusterset-member-1"] != before["clusterset-member-1"]  # it changed: written at once
        assert {m: after[m] for m in ("clusterset-member-2", "clusterset-member-3")} == {
            m: before[m] for m in ("clusterset-member-2", "clusterset-member-3")}
        assert leases(second) == leased
    finally:
        second.stop()


def test_a_fleet_restarted_late_in_its_leases_spreads_its_first_heartbeats(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases renewed more than a heartbeat before a restart, but holding for two more: the agents neither probe nor
    renew at start (a thousand of them would, in the restart's own seconds); their first heartbeats come after
    one interval, spread over the next, and the profiles stay healthy."""
    heartbeat = 4.0
    options = FleetOptions(tmp_path / "fleet", members=3, heartbeat=heartbeat, grace=40.0)
    first = FleetThread(options)
    try:
        leased = wait_until(lambda: r if len(r := _renewed(first)) == 3 else None, timeout=30)
        wait_until(lambda: _renewed(first) != leased, timeout=3 * heartbeat)  # in their rhythm
        port = first.server.port
    finally:
        first.stop()
    stopped = time.monotonic()
    asked = _count_requests(monkeypatch)
    wait_until(lambda: time.monotonic() - stopped > heartbeat, timeout=2 * heartbeat)  # every Lease a beat late
    options.port = port
    second = FleetThread(options)
    try:
        renewed = _renewed(second)
        agents = second.fleet.members.agents
        wait_until(lambda: len(agents) == 3 and all(a._started for a in agents.values()), timeout=heartbeat / 2)
        assert asked["/readyz"] == 0 and _renewed(second) == renewed  # nothing at once
        wait_until(lambda: all(_renewed(second)[ns] != renewed[ns] for ns in renewed), timeout=3 * heartbeat)
        assert asked["/readyz"] >= 3
        assert {m: _health(second, m)[0] for m in ("member-1", "member-2", "member-3")} == {
            "member-1": "True", "member-2": "True", "member-3": "True"}
    finally:
        second.stop()
