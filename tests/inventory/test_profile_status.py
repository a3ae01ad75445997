"""The decisions of the inventory, as pure functions: report → profile status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clusterset.api.inventory import CLUSTER_ID_PROPERTY, condition
from clusterset.inventory.profile_status import (
    AccessProvider,
    desired_status,
    rfc3339,
    without_observation_times,
)
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
    assert without_observation_times(a) == without_observation_times(b)
    changed = Observation(version="v1.30.0", properties={CLUSTER_ID_PROPERTY: "m1", "zone.example.com": "us"})
    c = desired_status("m1", report(changed, T0 + timedelta(seconds=20)), b, T0 + timedelta(seconds=20), 40)
    assert without_observation_times(c) != without_observation_times(b)
