"""Events about the objects controllers reconcile, as client-go's event recorder writes them (core/v1 Events)."""

from __future__ import annotations

import logging
from typing import Any

from clusterset.api.resources import EVENTS, Resource
from clusterset.api.times import now_rfc3339
from clusterset.client import ClusterClient
from clusterset.client.errors import ApiError, ConnectionFailed

log = logging.getLogger(__name__)


async def record_event(client: ClusterClient, resource: Resource, obj: dict[str, Any], type_: str, reason: str,
                       message: str, component: str, namespace: str | None = None) -> bool:
    """An Event about `obj` (of `resource`), from `component`: a courtesy, so a failure is logged, never raised.
    `namespace`: where the Event goes when `obj` is cluster-scoped (an Event is always namespaced)."""
    meta = obj.get("metadata") or {}
    involved = {"apiVersion": resource.api_version, "kind": resource.kind, "name": meta.get("name"),
                "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    if meta.get("namespace"):
        involved["namespace"] = meta["namespace"]
    now = now_rfc3339()
    event = {
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace") or namespace},
        "involvedObject": involved,
        "type": type_, "reason": reason[:128], "message": message[:1024], "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component},
        "reportingComponent": component,
    }
    try:
        await client.create(EVENTS, event)
    except (ApiError, ConnectionFailed) as exc:
        log.info("event not recorded %s=%s: %s", resource.kind, meta.get("name"), exc)
        return False
    return True
