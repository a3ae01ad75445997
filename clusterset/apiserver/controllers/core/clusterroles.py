"""kube-controller-manager's clusterrole-aggregation controller: a ClusterRole with an `aggregationRule` gets
the union of the rules of the ClusterRoles its selectors match."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from clusterset.apiserver.auth.policy import aggregate_rules, normal_rule
from clusterset.apiserver.auth.rbac import CLUSTER_ROLES
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

# aggregations remembered as already in place (a restart checks every cluster's: the same few shared values each)
REMEMBERED = 256


class ClusterRoleAggregation:
    name = "clusterrole-aggregation"
    watches: tuple[str, ...] = (CLUSTER_ROLES,)

    def __init__(self) -> None:
        # the values an aggregated ClusterRole's rules were found in place for, by identity (held: no id reused);
        # the clusters born in the same second share their ClusterRoles' values (`storage.store.Born`)
        self._in_place: dict[tuple[Any, ...], list[Any]] = {}

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        """Any ClusterRole change may change what every aggregated ClusterRole selects."""
        return [("", e.obj["metadata"]["name"]) for e in cluster.store.entries(CLUSTER_ROLES)
                if e.obj.get("aggregationRule")]

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        role = api.get(CLUSTER_ROLES, "", key[1])
        if role is None or not role.get("aggregationRule"):
            return None
        roles = api.objects(CLUSTER_ROLES)
        values = [role["aggregationRule"], role.get("rules")]
        for other in roles:
            values += (other["metadata"]["name"], other["metadata"].get("labels"), other.get("rules"))
        identity = (key[1], *map(id, values))
        if identity in self._in_place:  # stored values are never changed: the same ones aggregate the same
            return None
        rules = aggregate_rules(role["aggregationRule"], key[1], roles)
        if [normal_rule(r) for r in rules] == [normal_rule(r) for r in role.get("rules") or []]:
            if len(self._in_place) >= REMEMBERED:
                self._in_place.clear()
            self._in_place[identity] = values
            return None
        body: Obj = orjson.loads(orjson.dumps(role))
        body["rules"] = rules
        written = await api.as_manager("clusterrole-aggregation-controller").update(CLUSTER_ROLES, body)
        return 0.0 if written is None and api.get(CLUSTER_ROLES, "", key[1]) is not None else None
