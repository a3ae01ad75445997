"""RBAC roles a component installs when it starts (the hub's aggregated ClusterRoles, the agents' reader Role),
written only when they differ from what the cluster holds.

Writing a role needs the right to grant every rule in it (RBAC escalation prevention) or `escalate`; a
least-privilege controller has neither. When its manifests installed the roles already, reading them is all it
needs.
"""

from __future__ import annotations

from typing import Any

from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.client.errors import NotFound


async def ensure_role(client: ClusterClient, res: Resource, role: dict[str, Any], field_manager: str) -> None:
    """Server-side applies `role` (a Role or ClusterRole) unless it exists with these rules and at least these
    labels."""
    meta = role["metadata"]
    try:
        current = await client.get(res, meta["name"], meta.get("namespace"))
    except NotFound:
        current = None
    if current is not None and (current.get("rules") or []) == (role.get("rules") or []) and \
            (meta.get("labels") or {}).items() <= (current["metadata"].get("labels") or {}).items():
        return
    await client.apply(res, role, field_manager)
