"""The ReplicaSet controller: keeps `spec.replicas` active pods, and reports them in status.

The same loop serves ReplicationControllers (`replicationcontrollers.py`), as upstream's
ReplicationManager is the ReplicaSet controller behind a conversion: subclasses say which resource,
kind and selector they handle.

As upstream: pods are named `<rs>-<5 random chars>` (generateName), carry a controller
ownerReference with blockOwnerDeletion, orphans matching the selector are adopted and pods that
stop matching are released; failed, succeeded and terminating pods do not count, so they are
replaced. Scale-down deletes the least useful pods first (unscheduled, pending, not ready, on the
busiest node, ready the shortest time, newest). No expectations are needed: a create is in the
store before the next reconcile of the same key can start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import labels, meta, spec, status
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    PODS,
    REPLICASETS,
    Orphans,
    available_in,
    claim,
    deep_copy,
    guarded,
    int_or,
    is_active,
    is_ready,
    owned,
    owner_keys,
    parse_ts,
    pod_condition,
    pod_from_template,
    safe_keys,
    selector_of,
    wall,
)
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.selectors import LabelSelector
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

BURST = 500  # pods created or deleted per reconcile (upstream: burstReplicas)
PACE = 20e-6  # seconds between full reconciles of a ReplicaSet, per pod it has (1,000 pods: 20 ms)


def deletion_rank(pod: Obj, per_node: dict[str, int]) -> tuple[Any, ...]:
    """Sort key: pods to delete first sort first (controller.ActivePodsWithRanks)."""
    node = spec(pod).get("nodeName") or ""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status(pod).get("phase")), 0)
    ready = is_ready(pod)
    ready_since = parse_ts((pod_condition(pod, "Ready") or {}).get("lastTransitionTime")) or 0.0
    restarts = sum(int_or(cs.get("restartCount"), 0) for cs in status(pod).get("containerStatuses") or []
                   if isinstance(cs, dict))
    created = parse_ts(meta(pod).get("creationTimestamp")) or 0.0
    return (bool(node), phase_rank, ready, -per_node.get(node, 0), -ready_since if ready else 0.0, -restarts,
            -created)


def replica_status(rs: Obj, pods: list[Obj], now: float) -> tuple[dict[str, Any], float | None]:
    """The counters of status (omitempty as upstream, `replicas` always), and when availability changes.

    One pass with plain lookups: it runs on every change of every pod of the ReplicaSet."""
    template_labels = ((spec(rs).get("template") or {}).get("metadata") or {}).get("labels") or {}
    wanted = list(template_labels.items())
    min_ready = int_or(spec(rs).get("minReadySeconds"), 0)
    replicas = fully = ready = available = 0
    again: float | None = None
    for pod in pods:
        if not is_active(pod):
            continue
        replicas += 1
        pod_labels = labels(pod)
        if all(pod_labels.get(k) == v for k, v in wanted):
            fully += 1
        if not is_ready(pod):
            continue
        ready += 1
        wait = available_in(pod, min_ready, now) if min_ready > 0 else 0.0
        if wait == 0:
            available += 1
        elif wait is not None:
            again = wait if again is None else min(again, wait)
    out: dict[str, Any] = {"replicas": replicas}
    for key, value in (("fullyLabeledReplicas", fully), ("readyReplicas", ready), ("availableReplicas", available),
                       ("observedGeneration", int_or(meta(rs).get("generation"), 0))):
        if value:
            out[key] = value
    return out, again


class ReplicaSetController:
    name = "replicaset"
    watches: tuple[str, ...] = (REPLICASETS, PODS)
    resource = REPLICASETS
    kind = "ReplicaSet"
    api_version = "apps/v1"

    def selector(self, owner: Obj) -> LabelSelector | None:
        return selector_of(owner)

    def __init__(self) -> None:
        self._orphans = Orphans()
        # (cluster, key) → (monotonic time of the last full reconcile, pods it saw): a big ReplicaSet
        # whose pods keep changing is recounted at most every PACE seconds per pod, not per event
        self._last: dict[tuple[str, Key], tuple[float, int]] = {}

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == self.resource:
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        yield from owner_keys(cluster, event, self._orphans, self.kind, self.resource, self.api_version,
                              self.selector)

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        rs = api.get(self.resource, namespace, name)
        memo = (api.cluster.name, key)
        if rs is None:
            self._last.pop(memo, None)
            return None
        last, count = self._last.get(memo, (0.0, 0))
        wait = last + count * PACE - time.monotonic()
        if wait > 0:
            return wait
        selector = self.selector(rs)
        pods = await claim(api, PODS, rs, selector, self._orphans)
        self._last[memo] = (time.monotonic(), len(pods))
        failure: str | None = None
        if not meta(rs).get("deletionTimestamp") and selector is not None:
            changed, failure = await self._manage(api, rs, pods)
            if changed:
                pods = owned(api, PODS, rs)
        rs = api.get(self.resource, namespace, name)
        if rs is None:
            return None
        desired, again = replica_status(rs, pods, wall())
        conditions = [c for c in status(rs).get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if failure is not None:
            previous: dict[str, Any] = next(
                (c for c in status(rs).get("conditions") or [] if c.get("type") == "ReplicaFailure"), {})
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                               "message": failure,
                               "lastTransitionTime": previous.get("lastTransitionTime") or now_rfc3339()})
            again = 5.0
        if conditions:
            desired["conditions"] = conditions
        if desired != status(rs):
            updated = deep_copy(rs)
            updated["status"] = desired
            if await api.update(self.resource, updated, subresource="status") is None:
                return CONFLICT_RETRY
        return again

    async def _manage(self, api: ClusterAPI, rs: Obj, pods: list[Obj]) -> tuple[bool, str | None]:
        """Creates or deletes pods toward spec.replicas; returns whether it wrote, and why creating
        failed, if it did."""
        active = [p for p in pods if is_active(p)]
        diff = len(active) - int_or(spec(rs).get("replicas"), 1)
        namespace = str(meta(rs)["namespace"])
        if diff < 0:
            template = spec(rs).get("template") or {}
            errors: list[str] = []

            async def create_one() -> None:
                pod = pod_from_template(template, namespace, rs)
                pod["metadata"]["generateName"] = f"{meta(rs)['name']}-"
                try:
                    await api.create(PODS, pod)
                except StatusError as err:
                    if err.code >= 500:
                        raise
                    errors.append(err.message)

            await asyncio.gather(*(create_one() for _ in range(min(-diff, BURST))))
            return True, errors[0] if errors else None
        if diff > 0:
            per_node: dict[str, int] = {}
            for pod in active:
                node = spec(pod).get("nodeName") or ""
                per_node[node] = per_node.get(node, 0) + 1
            victims = sorted(active, key=lambda p: deletion_rank(p, per_node))[: min(diff, BURST)]
            await asyncio.gather(*(api.delete(PODS, namespace, meta(p)["name"],
                                              preconditions={"uid": meta(p)["uid"]}) for p in victims))
            return True, None
        return False, None
