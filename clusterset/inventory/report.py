"""What a member's agent reports to the hub, built from what it observed (pure; see agent.py for the I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clusterset.api.inventory import CLUSTER_ID_PROPERTY, CONTROL_PLANE_HEALTHY, JOINED, set_condition


@dataclass
class Observation:
    """One look at a member: reachability, version, ClusterProperties."""

    readyz_error: str | None = None  # None: /readyz answered ok
    version: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


def desired_report(
    cluster_id: str,
    namespace: str,
    seen: Observation,
    endpoint: dict[str, Any],
    previous: dict[str, Any] | None,
    stamp: str,
) -> dict[str, Any]:
    status = (previous or {}).get("status") or {}
    conditions = status.get("conditions")
    if seen.readyz_error is None:
        health = {"type": CONTROL_PLANE_HEALTHY, "status": "True", "reason": "Readyz",
                  "message": "the member's API server answers /readyz"}
    else:
        health = {"type": CONTROL_PLANE_HEALTHY, "status": "False", "reason": "ReadyzFailed",
                  "message": seen.readyz_error}
    conditions = set_condition(conditions, health, stamp)
    found_id = seen.properties.get(CLUSTER_ID_PROPERTY)
    if seen.readyz_error is None and found_id != cluster_id:
        conditions = set_condition(conditions, {
            "type": JOINED, "status": "False", "reason": "ClusterIdMismatch",
            "message": f"the member's {CLUSTER_ID_PROPERTY} is {found_id!r}, but it joined as {cluster_id!r}; "
                       f"run `clusterset leave` and `clusterset join` again"}, stamp)
    else:
        conditions = [c for c in conditions if c.get("type") != JOINED]
    new_status: dict[str, Any] = {"observedTime": stamp, "conditions": conditions, "cluster": endpoint}
    if seen.version:
        new_status["version"] = {"kubernetes": seen.version.removeprefix("v")}
    elif status.get("version"):
        new_status["version"] = status["version"]  # unreachable now: keep what we last knew
    if seen.readyz_error is None:
        new_status["properties"] = [{"name": n, "value": v, "lastObservedTime": stamp}
                                    for n, v in sorted(seen.properties.items())]
    elif status.get("properties"):
        new_status["properties"] = status["properties"]
    return {
        "apiVersion": "clusterset.io/v1alpha1", "kind": "ClusterReport",
        "metadata": {"name": cluster_id, "namespace": namespace},
        "status": new_status,
    }
