"""What a member's ClusterProfile should say, as a pure function of what its agent reported.

The hub never talks to members (pull model): the agent writes a ClusterReport into the member's hub
namespace when what it says changes (and renews its Lease there every heartbeat, as a kubelet its node Lease).
The profile copies version, properties and the agent's `ControlPlaneHealthy` observation; when neither the report
nor the Lease shows the agent alive within the grace period (the agent or its connection died) health becomes
Unknown, as the node lifecycle controller does for a silent kubelet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clusterset.api.inventory import (
    CLUSTER_MANAGER_LABEL,
    CONTROL_PLANE_HEALTHY,
    EXEC_EXTENSION,
    JOINED,
    MANAGER_NAME,
    MEMBER_LABEL,
    set_condition,
)
from clusterset.api.objects import condition
from clusterset.api.times import parse_time, rfc3339

# limits of ClusterProfile's CRD: a report that breaks them must not make every status write fail
PROPERTY_VALUE_MAX = 1024  # ClusterProperty values may be far longer (KEP-2149: 128k code points)
PROPERTY_NAME_MAX = 253
MESSAGE_MAX = 32768
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class AccessProvider:
    """An access provider the hub advertises on every profile: a name, plus exec config per member."""

    name: str
    exec_config: dict[str, Any]  # the client.authentication.k8s.io/exec extension; `{cluster}` is the member id


def desired_profile(cluster_id: str, namespace: str) -> dict[str, Any]:
    """A new ClusterProfile: the manager label and spec are set once and never changed (KEP-4322)."""
    return {
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ClusterProfile",
        "metadata": {
            "name": cluster_id,
            "namespace": namespace,
            "labels": {CLUSTER_MANAGER_LABEL: MANAGER_NAME, MEMBER_LABEL: cluster_id},
        },
        "spec": {"displayName": cluster_id, "clusterManager": {"name": MANAGER_NAME}},
    }


def report_age(report: dict[str, Any] | None, now: datetime) -> float | None:
    observed = parse_time(((report or {}).get("status") or {}).get("observedTime"))
    return None if observed is None else (now - observed).total_seconds()


def desired_status(
    cluster_id: str,
    report: dict[str, Any] | None,
    current: dict[str, Any] | None,
    now: datetime,
    grace_seconds: float,
    providers: tuple[AccessProvider, ...] = (),
    age: float | None = None,
    lease_renewed: str | None = None,
) -> dict[str, Any]:
    """The profile's status. `current` is the profile's present status (keeps transition times).

    `age`: seconds since the agent's last sign of life (its report or its Lease changed), by the hub's clock
    (ProfileManager measures it, so a member whose clock is off does not look silent); by default, from the
    report's `observedTime` and `now`. `lease_renewed`: the agent's Lease's `renewTime`, for the message."""
    stamp = rfc3339(now)
    reported = (report or {}).get("status") or {}
    current = current or {}
    conditions = current.get("conditions")
    if age is None:
        age = report_age(report, now)
    if report is None or age is None:
        joined = {"type": JOINED, "status": "False", "reason": "AgentNotConnected",
                  "message": f"{cluster_id} is registered; waiting for its agent to report with its hub token"}
        healthy = {"type": CONTROL_PLANE_HEALTHY, "status": "Unknown", "reason": "AgentNotConnected",
                   "message": "no report from the member's agent yet"}
    else:
        joined = {"type": JOINED, "status": "True", "reason": "AgentConnected",
                  "message": f"the agent of {cluster_id} reports to the hub"}
        observed = condition(reported.get("conditions"), CONTROL_PLANE_HEALTHY)
        if age > grace_seconds:
            healthy = {"type": CONTROL_PLANE_HEALTHY, "status": "Unknown", "reason": "AgentStoppedReporting",
                       "message": f"the agent has not reported since {reported.get('observedTime')} "
                                  + (f"nor renewed its Lease since {lease_renewed} " if lease_renewed else "")
                                  + f"(grace period {grace_seconds:g}s); the member's health is unknown"}
        elif observed is None:
            healthy = {"type": CONTROL_PLANE_HEALTHY, "status": "Unknown", "reason": "NotReported",
                       "message": "the agent's report has no ControlPlaneHealthy condition"}
        else:
            healthy = _reported_condition(observed)
    refusal = condition(reported.get("conditions"), JOINED)
    if refusal is not None and refusal.get("status") != "True":  # the agent refuses to act for this member
        joined = _reported_condition(refusal)
    conditions = set_condition(conditions, joined, stamp)
    conditions = set_condition(conditions, healthy, stamp)
    status: dict[str, Any] = {"conditions": conditions}
    version = (reported.get("version") or {}).get("kubernetes")
    if version:
        status["version"] = {"kubernetes": version}
    properties = [{k: p[k] for k in ("name", "value", "lastObservedTime") if k in p}
                  for p in reported.get("properties") or [] if _fits_a_profile(p)]
    if properties:
        status["properties"] = sorted(properties, key=lambda p: str(p["name"]))
    endpoint = reported.get("cluster")
    if isinstance(endpoint, dict) and endpoint.get("server") and providers:
        status["accessProviders"] = [_access_provider(p, endpoint, cluster_id) for p in providers]
    return status


def _reported_condition(reported: dict[str, Any]) -> dict[str, Any]:
    """A condition the agent reported, made valid for the profile (the agent is not trusted to get it right)."""
    status = reported.get("status")
    reason = reported.get("reason")
    return {"type": reported["type"], "status": status if status in ("True", "False", "Unknown") else "Unknown",
            "reason": reason if isinstance(reason, str) and _REASON.match(reason) else "Reported",
            "message": str(reported.get("message") or "")[:MESSAGE_MAX]}


def _fits_a_profile(prop: Any) -> bool:
    """Whether a reported property can be mirrored: a longer value (legal in a ClusterProperty) is left out."""
    if not isinstance(prop, dict):
        return False
    name, value = prop.get("name"), prop.get("value")
    return (isinstance(name, str) and 0 < len(name) <= PROPERTY_NAME_MAX
            and isinstance(value, str) and 0 < len(value) <= PROPERTY_VALUE_MAX)


def _access_provider(provider: AccessProvider, endpoint: dict[str, Any], cluster_id: str) -> dict[str, Any]:
    cluster = {k: v for k, v in endpoint.items() if k in ("server", "certificate-authority-data", "tls-server-name",
                                                         "proxy-url")}
    config = {k: (v.replace("{cluster}", cluster_id) if isinstance(v, str) else v)
              for k, v in provider.exec_config.items()}
    cluster["extensions"] = [{"name": EXEC_EXTENSION, "extension": config}]
    return {"name": provider.name, "cluster": cluster}


def without_observation_times(status: dict[str, Any]) -> dict[str, Any]:
    """Status minus what changes on every heartbeat: two statuses equal here differ only in freshness. Made to be
    compared: what it does not trim is `status`'s own (not copied: every agent's and profile's heartbeat asks)."""
    trimmed = {k: v for k, v in status.items() if k != "observedTime"}
    for key, time_field in (("properties", "lastObservedTime"), ("conditions", "lastTransitionTime")):
        items = trimmed.get(key)
        if isinstance(items, list):
            trimmed[key] = [{k: v for k, v in item.items() if k != time_field} if isinstance(item, dict) else item
                            for item in items]
    return trimmed
