"""What the hub needs for placement: the ClusterRoles that let namespace users write Placements and read decisions,
and ClusterSetBindings for the namespaces a fleet binds from the start.

A ClusterSetBinding lives in the ClusterSet's namespace, so binding is `create` there: plain RBAC decides who may,
on the embedded hub and on a real one alike. Namespace `admin`/`edit` (aggregated) write Placements and WorkSets in
their namespace and `view` reads them and the decisions; none of them reaches the ClusterSet's namespace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from clusterset.api.placement import CLUSTERSET_BINDINGS, PLACEMENT_DECISIONS, PLACEMENTS, WORK_SETS
from clusterset.api.resources import CLUSTER_ROLES
from clusterset.client import AlreadyExists, ClusterClient
from clusterset.placement.writes import FIELD_MANAGER
from clusterset.runtime.roles import ensure_role

READ = ["get", "list", "watch"]
WRITE = [*READ, "create", "update", "patch", "delete", "deletecollection"]
DECISION_READER = "clusterset:placement-decision-reader"
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _role(name: str, rules: list[dict[str, Any]], *aggregate_to: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if aggregate_to:
        meta["labels"] = {AGGREGATE + role: "true" for role in aggregate_to}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}


def cluster_roles() -> list[dict[str, Any]]:
    decisions = {"apiGroups": [PLACEMENT_DECISIONS.group], "resources": [PLACEMENT_DECISIONS.plural], "verbs": READ}
    return [
        _role("clusterset:placement-edit", [
            {"apiGroups": [PLACEMENTS.group], "resources": [PLACEMENTS.plural, WORK_SETS.plural], "verbs": WRITE},
            decisions], "admin", "edit"),
        _role("clusterset:placement-view", [
            {"apiGroups": [PLACEMENTS.group], "resources": [PLACEMENTS.plural, f"{PLACEMENTS.plural}/status",
                                                            WORK_SETS.plural, f"{WORK_SETS.plural}/status"],
             "verbs": READ},
            decisions], "view"),
        _role(DECISION_READER, [decisions]),
    ]


def binding(clusterset_namespace: str, namespace: str) -> dict[str, Any]:
    """Binds `namespace` to the ClusterSet of `clusterset_namespace` (named after the namespace it binds)."""
    return {"apiVersion": CLUSTERSET_BINDINGS.api_version, "kind": CLUSTERSET_BINDINGS.kind,
            "metadata": {"name": namespace, "namespace": clusterset_namespace}, "spec": {"namespace": namespace}}


async def prepare_placement(hub: ClusterClient, clusterset: str, bind: Iterable[str] = ()) -> None:
    """The ClusterRoles (applied: kept up to date), and a binding of each of `bind` unless it exists (a binding a
    user changed is left alone)."""
    for role in cluster_roles():
        await ensure_role(hub, CLUSTER_ROLES, role, FIELD_MANAGER)
    for namespace in bind:
        with contextlib.suppress(AlreadyExists):
            await hub.create(CLUSTERSET_BINDINGS, binding(clusterset, namespace), field_manager=FIELD_MANAGER)
