"""The simulated kube-scheduler: binds each unscheduled pod to a node.

Filters as the default scheduler does, roughly (`predicates.py`): the pod must tolerate the node's
NoSchedule/NoExecute taints (a node that is not Ready or cordoned counts as tainted, as the node
lifecycle controller would taint it) and match the pod's `nodeSelector` and required node affinity,
and the node must have room under its `pods` capacity. Among the nodes left, it spreads siblings (pods
with the same controller, as the default topology spread constraints do): the zone with the fewest
siblings, then the node with the fewest siblings, then the node with the fewest pods. A pod that
fits nowhere gets PodScheduled=False/Unschedulable with upstream's message, and is retried when a
node changes. Pods with `spec.nodeName` set, another `schedulerName`, or scheduling gates are left
alone (gated pods get PodScheduled=False/SchedulingGated).

Binding: the embedded server has no `pods/binding` subresource yet, so the bind is an update of
the pod through the REST pipeline with a strategy that, like the binding registry, allows
`spec.nodeName` to go from unset to set once and records PodScheduled=True in the same write.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clusterset.api.objects import labels, meta, spec, status
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.predicates import UNSCHEDULABLE, affinity_matches, untolerated_taint
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    NODES,
    PODS,
    controller_ref,
    deep_copy,
    guarded,
    is_terminal,
    pod_condition,
    safe_keys,
)
from clusterset.apiserver.kinds.pods import PodStrategy
from clusterset.apiserver.meta.errors import FieldError, StatusError
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.strategy import ClusterView
from clusterset.apiserver.storage.store import Event, Obj

ZONE = "topology.kubernetes.io/zone"


def needs_scheduling(pod: Obj) -> bool:
    pod_spec = spec(pod)
    return (
        not pod_spec.get("nodeName")
        and not meta(pod).get("deletionTimestamp")
        and pod_spec.get("schedulerName", "default-scheduler") in ("default-scheduler", "")
        and not is_terminal(pod)
    )


def scheduled_condition(value: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "PodScheduled", "status": value, "lastProbeTime": None,
                            "lastTransitionTime": now_rfc3339()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def with_condition(pod_status: dict[str, Any], cond: dict[str, Any]) -> dict[str, Any]:
    conditions = [c for c in pod_status.get("conditions") or [] if c.get("type") != cond["type"]]
    return {**pod_status, "conditions": [*conditions, cond]}


class _BindingStrategy(PodStrategy):
    """PodStrategy for a bind: spec.nodeName may be set once, and PodScheduled becomes True."""

    def prepare_update(self, cluster: ClusterView, obj: Obj, old: Obj) -> None:
        if not spec(old).get("nodeName") and spec(obj).get("nodeName"):
            obj["status"] = with_condition(status(obj), scheduled_condition("True"))

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        if old is not None and not spec(old).get("nodeName") and spec(obj).get("nodeName"):
            old = {**old, "spec": {**spec(old), "nodeName": spec(obj)["nodeName"]}}
        return super().validate(cluster, obj, old, namespaced)


_BINDING = _BindingStrategy()


def _sibling_key(pod: Obj) -> tuple[str, ...]:
    ref = controller_ref(pod)
    if ref is not None:
        return ("uid", str(ref.get("uid", "")))
    return ("labels", str(meta(pod).get("namespace", "")), *sorted(f"{k}={v}" for k, v in labels(pod).items()))


def _pods_capacity(node: Obj) -> int:
    value = (status(node).get("allocatable") or {}).get("pods", "110")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 110


@dataclass(eq=False)
class Placement:
    """Where a cluster's pods run, counted per node and per sibling group; kept current from pod
    events, so choosing a node costs O(nodes), not O(pods)."""

    cluster: weakref.ref[Cluster]
    where: dict[Key, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    per_node: dict[str, int] = field(default_factory=dict)
    siblings: dict[tuple[str, ...], dict[str, int]] = field(default_factory=dict)

    def update(self, pod: Obj, gone: bool) -> None:
        key = (str(meta(pod).get("namespace", "")), str(meta(pod).get("name", "")))
        previous = self.where.pop(key, None)
        if previous is not None:
            node, group = previous
            self.per_node[node] -= 1
            self.siblings[group][node] -= 1
            if not self.siblings[group][node]:
                del self.siblings[group][node]
                if not self.siblings[group]:
                    del self.siblings[group]
        bound = spec(pod).get("nodeName")
        if gone or not bound or is_terminal(pod):
            return
        group, node = _sibling_key(pod), str(bound)
        self.where[key] = (node, group)
        self.per_node[node] = self.per_node.get(node, 0) + 1
        by_node = self.siblings.setdefault(group, {})
        by_node[node] = by_node.get(node, 0) + 1


def choose_node(pod: Obj, nodes: list[Obj], placement: Placement) -> tuple[str | None, str]:
    """The node to bind to, or None and the reason why none fits (upstream's FitError wording)."""
    per_node = placement.per_node
    siblings_node = placement.siblings.get(_sibling_key(pod), {})
    zone_of = {meta(n).get("name", ""): labels(n).get(ZONE, "") for n in nodes}
    siblings_zone: dict[str, int] = {}
    for node_name, count in siblings_node.items():
        zone = zone_of.get(node_name, "")
        siblings_zone[zone] = siblings_zone.get(zone, 0) + count
    reasons: dict[str, int] = {}
    feasible = []
    pod_spec = spec(pod)
    for node in nodes:
        name = meta(node).get("name", "")
        if meta(node).get("deletionTimestamp"):
            continue
        if (taint := untolerated_taint(pod_spec, node, ("NoSchedule", "NoExecute"))) is not None:
            why = "node(s) were unschedulable" if taint.get("key") == UNSCHEDULABLE else \
                f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
        elif not affinity_matches(pod_spec, node):
            why = "node(s) didn't match Pod's node affinity/selector"
        elif per_node.get(name, 0) >= _pods_capacity(node):
            why = "Too many pods"
        else:
            feasible.append(node)
            continue
        reasons[why] = reasons.get(why, 0) + 1
    if feasible:
        best = min(feasible, key=lambda n: (
            siblings_zone.get(zone_of.get(meta(n)["name"], ""), 0),
            siblings_node.get(meta(n)["name"], 0),
            per_node.get(meta(n)["name"], 0),
            meta(n)["name"],
        ))
        return str(meta(best)["name"]), ""
    if not nodes:
        return None, "no nodes available to schedule pods"
    total = len(nodes)
    parts = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return None, (f"0/{total} nodes are available: {parts}. preemption: 0/{total} nodes are available: "
                  f"{total} Preemption is not helpful for scheduling.")


class SchedulerController:
    """Binds pending pods to nodes."""

    name = "scheduler"
    watches: tuple[str, ...] = (PODS, NODES)

    def __init__(self) -> None:
        self._placements: dict[str, Placement] = {}

    def placement(self, cluster: Cluster) -> Placement:
        """The cluster's placement counts, built from the store on first use (and after a restart)."""
        current = self._placements.get(cluster.name)
        if current is None or current.cluster() is not cluster:
            for name in [n for n, p in self._placements.items() if p.cluster() is None]:
                del self._placements[name]
            current = self._placements[cluster.name] = Placement(weakref.ref(cluster))
            for entry in cluster.store.entries(PODS):
                current.update(entry.obj, gone=False)
        return current

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == PODS:
            known = self._placements.get(cluster.name)
            if known is not None and known.cluster() is cluster:
                known.update(obj, gone=event.type == "DELETED")
            if event.type != "DELETED" and needs_scheduling(obj):
                yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        if event.type == "DELETED":
            return
        for entry in cluster.store.entries(PODS):  # a node changed: pending pods may fit now
            if needs_scheduling(entry.obj):
                yield (str(meta(entry.obj).get("namespace", "")), str(meta(entry.obj)["name"]))

    @guarded("default-scheduler")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        pod = api.get(PODS, namespace, name)
        if pod is None or not needs_scheduling(pod):
            return None
        if spec(pod).get("schedulingGates"):
            return await self._unschedulable(api, pod, "SchedulingGated",
                                             "Scheduling is blocked due to non-empty scheduling gates")
        node, why = choose_node(pod, api.objects(NODES), self.placement(api.cluster))
        if node is None:
            return await self._unschedulable(api, pod, "Unschedulable", why)
        bound = deep_copy(pod)
        bound["spec"]["nodeName"] = node
        served = api.ctx(PODS, namespace).served
        ctx = Ctx(api.cluster, Served(served.rt, _BINDING), namespace, user=api.user, manager=api.manager,
                  manager_explicit=True)
        try:
            await api.rest.update(ctx, name, bound)
        except StatusError as err:
            if err.code in (404, 409):
                return CONFLICT_RETRY if err.code == 409 else None
            raise
        return None

    async def _unschedulable(self, api: ClusterAPI, pod: Obj, reason: str, message: str) -> float | None:
        current = pod_condition(pod, "PodScheduled") or {}
        if current.get("status") == "False" and current.get("reason") == reason and current.get("message") == message:
            return None
        updated = deep_copy(pod)
        updated["status"] = with_condition(status(pod), scheduled_condition("False", reason, message))
        if await api.update(PODS, updated, subresource="status") is None:
            return CONFLICT_RETRY
        return None
