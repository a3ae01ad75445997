"""The DaemonSet controller: one pod on each node that should run it, as upstream's (pkg/controller/daemon).

A node should run the daemon pod if the pod template's `nodeName` (if any), `nodeSelector` and required
node affinity match it and the pod tolerates its NoSchedule and NoExecute taints; a pod already there
keeps running while it tolerates the NoExecute ones. Pods get the tolerations upstream adds to every
daemon pod (not-ready and unreachable NoExecute; disk-, memory-, pid-pressure and unschedulable
NoSchedule; network-unavailable with hostNetwork), the labels `controller-revision-hash` and
`pod-template-generation`, a controller reference, and are pinned to their node by a required node
affinity on `metadata.name`, which the scheduler then binds, as upstream since 1.12.

Each sync: revisions (`history.py`), then the manage loop (create pods on nodes that lack one, delete
failed pods with a per-node backoff, succeeded pods, extra pods and pods on nodes that should not run
them), then, with nothing left to do, one step of the RollingUpdate (within `maxUnavailable`, or with
`maxSurge` a new pod next to each old one until it is available); OnDelete replaces only pods the user
deletes. Status counts nodes as upstream (desired, current, ready, available, updated, misscheduled).

Upstream's pod garbage collector deletes pods bound to nodes that no longer exist; the embedded
cluster has none, so this controller force-deletes its own pods on nodes that are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clusterset.api.objects import annotations_of, labels, meta, spec, status
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.history import HASH_LABEL, record, truncate
from clusterset.apiserver.controllers.workloads.predicates import affinity_matches, untolerated_taint
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    CONTROLLER_REVISIONS,
    DAEMONSETS,
    NODES,
    PODS,
    Orphans,
    available_in,
    claim,
    deep_copy,
    guarded,
    int_or,
    is_ready,
    owned,
    owner_keys,
    parse_ts,
    pod_from_template,
    safe_keys,
    scaled_value,
    selector_of,
    wall,
)
from clusterset.apiserver.kinds.apps import TEMPLATE_GENERATION
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
# AddOrUpdateDaemonPodTolerations
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}
BACKOFF_INITIAL, BACKOFF_MAX = 1.0, 900.0  # failed pods on a node: upstream's failedPodsBackoff


# ---------------------------------------------------------------------------- what should run where
def daemon_pod_spec(ds: Obj) -> dict[str, Any]:
    """The template's pod spec with the tolerations every daemon pod gets."""
    pod_spec = deep_copy(spec(ds).get("template", {}).get("spec") or {})
    tolerations = [t for t in pod_spec.get("tolerations") or [] if isinstance(t, dict)]
    extra = [*DAEMON_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])]
    for toleration in extra:  # AddOrUpdateTolerationInPodSpec: an equal toleration is not added twice
        if toleration not in tolerations:
            tolerations.append(dict(toleration))
    pod_spec["tolerations"] = tolerations
    return pod_spec


def should_run(pod_spec: dict[str, Any], node: Obj) -> tuple[bool, bool]:
    """(should run a daemon pod, should keep one running): NodeShouldRunDaemonPod."""
    node_name = pod_spec.get("nodeName")
    if (node_name and node_name != meta(node).get("name")) or not affinity_matches(pod_spec, node):
        return False, False
    if untolerated_taint(pod_spec, node, ("NoSchedule", "NoExecute")) is None:
        return True, True
    return False, untolerated_taint(pod_spec, node, ("NoExecute",)) is None


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, or its metadata.name node affinity (GetTargetNodeName)."""
    if spec(pod).get("nodeName"):
        return str(spec(pod)["nodeName"])
    required = (((spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchFields") or []:
            values = expr.get("values") or []
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return None


def oldest_first(pods: Iterable[Obj]) -> list[Obj]:
    """podByCreationTimestampAndPhase: bound pods first, then by creation time and name."""
    return sorted(pods, key=lambda p: (not spec(p).get("nodeName"), parse_ts(meta(p).get("creationTimestamp")) or 0.0,
                                       str(meta(p).get("name", ""))))


def is_terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


def is_available(pod: Obj, min_ready: int, now: float) -> bool:
    return available_in(pod, min_ready, now) == 0


def pods_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """getNodesToDaemonPods: the pods per target node, without terminal pods already being deleted."""
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        node = target_node(pod)
        if node is None or (status(pod).get("phase") in ("Succeeded", "Failed") and is_terminating(pod)):
            continue
        out.setdefault(node, []).append(pod)
    return out


def rolling_fenceposts(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) against the nodes that should run the pod (updatedDesiredNodeCounts)."""
    strategy = spec(ds).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: Obj) -> bool:
    return rolling_fenceposts(ds, 1)[0] > 0


@dataclass
class Plan:
    """What one sync step writes: pods to create (by node) and pods to delete (force: no kubelet left)."""

    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    force_delete: list[Obj] = field(default_factory=list)
    requeue: float | None = None

    def later(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def __bool__(self) -> bool:
        return bool(self.create_on or self.delete or self.force_delete)


def manage_plan(ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], hash_: str, now: float,
                backoff: dict[str, tuple[float, float]]) -> Plan:
    """podsShouldBeOnNode for every node, plus pods of nodes that are gone. `backoff`: node → (delay, last
    deletion of a failed pod), updated in place."""
    plan = Plan()
    pod_spec = daemon_pod_spec(ds)
    min_ready = int_or(spec(ds).get("minReadySeconds"), 0)
    surge = allows_surge(ds)
    names = set()
    for node in nodes:
        name = str(meta(node)["name"])
        names.add(name)
        run, keep = should_run(pod_spec, node)
        pods = by_node.get(name)
        if run and pods is None:
            plan.create_on.append(name)
        elif keep:
            running = []
            for pod in pods or []:
                if is_terminating(pod):
                    continue
                phase = status(pod).get("phase")
                if phase == "Failed":
                    delay, last = backoff.get(name, (0.0, 0.0))
                    if delay and now - last < delay:
                        plan.later(last + delay - now)
                        continue
                    backoff[name] = (min(BACKOFF_MAX, delay * 2) if delay else BACKOFF_INITIAL, now)
                    plan.delete.append(pod)
                elif phase == "Succeeded":
                    plan.delete.append(pod)
                else:
                    running.append(pod)
            running = oldest_first(running)
            if not surge:
                plan.delete.extend(running[1:])
            elif not running:
                if run:
                    plan.create_on.append(name)
            else:
                oldest_new = next((p for p in running if labels(p).get(HASH_LABEL) == hash_), None)
                oldest_old = next((p for p in running if labels(p).get(HASH_LABEL) != hash_), None)
                plan.delete.extend(p for p in running if p is not oldest_new and p is not oldest_old)
                if oldest_new is not None and oldest_old is not None and (
                        not is_ready(oldest_old) or is_available(oldest_new, min_ready, now)):
                    plan.delete.append(oldest_old)
        else:
            plan.delete.extend(p for p in pods or [] if not is_terminating(p))
    for name, pods in by_node.items():
        if name not in names:
            plan.force_delete.extend(pods)
    return plan


def _updated_pods_on_node(pods: list[Obj], hash_: str) -> tuple[Obj | None, Obj | None, bool]:
    """findUpdatedPodsOnNode: (new pod, old pod, at most one of each)."""
    new = old = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if labels(pod).get(HASH_LABEL) == hash_:
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_plan(ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], hash_: str, now: float) -> Plan:
    """One step of upstream's rollingUpdate: without surge, delete old pods while at most maxUnavailable
    nodes lack an available pod; with surge, start a new pod next to old ones, at most maxSurge at once,
    and delete an old pod once its node's new one is available."""
    plan = Plan()
    pod_spec = daemon_pod_spec(ds)
    min_ready = int_or(spec(ds).get("minReadySeconds"), 0)
    runs = {str(meta(n)["name"]): should_run(pod_spec, n)[0] for n in nodes}
    desired = sum(runs.values())
    candidates = {**{name: [] for name, run in runs.items() if run}, **by_node}
    max_surge, max_unavailable = rolling_fenceposts(ds, desired)

    def available(pod: Obj) -> bool:
        wait = available_in(pod, min_ready, now)
        if wait:
            plan.later(wait)
        return wait == 0

    if max_surge == 0:
        unavailable = 0
        replace: list[Obj] = []
        to_delete: list[Obj] = []
        for name in sorted(candidates):
            new, old, ok = _updated_pods_on_node(candidates[name], hash_)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                unavailable += not available(new)
            elif old is not None and not available(old):
                replace.append(old)
            elif unavailable < max_unavailable and old is not None:
                to_delete.append(old)
        plan.delete = replace + to_delete[:max(0, max_unavailable - unavailable)]
        return plan

    surging = 0
    allowed: list[str] = []
    wanted: list[str] = []
    for name in sorted(candidates):
        new, old, ok = _updated_pods_on_node(candidates[name], hash_)
        if not ok:
            surging += 1
        elif old is None:
            continue
        elif new is None:
            if not runs.get(name):
                plan.delete.append(old)
            elif not available(old):
                allowed.append(name)
            elif surging < max_surge:
                wanted.append(name)
        elif not available(new):
            surging += 1
        else:
            plan.delete.append(old)
    plan.create_on = allowed + wanted[:max(0, max_surge - surging)]
    return plan


def daemon_status(ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], hash_: str,
                  now: float) -> tuple[dict[str, Any], float | None]:
    """updateDaemonSetStatus: counts per node, from its oldest daemon pod; when availability changes next."""
    pod_spec = daemon_pod_spec(ds)
    min_ready = int_or(spec(ds).get("minReadySeconds"), 0)
    desired = current = ready = available = updated = misscheduled = 0
    again: float | None = None
    for node in nodes:
        pods = by_node.get(str(meta(node)["name"]))
        if not should_run(pod_spec, node)[0]:
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = oldest_first(pods)[0]
        if is_ready(pod):
            ready += 1
            wait = available_in(pod, min_ready, now)
            if wait == 0:
                available += 1
            elif wait is not None:
                again = wait if again is None else min(again, wait)
        updated += labels(pod).get(HASH_LABEL) == hash_
    out: dict[str, Any] = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": int_or(meta(ds).get("generation"), 1),
    }
    for key, value in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                       ("numberUnavailable", desired - available),
                       ("collisionCount", int_or(status(ds).get("collisionCount"), 0))):
        if value:
            out[key] = value
    if status(ds).get("conditions"):
        out["conditions"] = status(ds)["conditions"]
    return out, again


def new_daemon_pod(ds: Obj, node: str, hash_: str) -> Obj:
    """CreatePodTemplate + ReplaceDaemonSetPodNodeNameNodeAffinity."""
    extra = {HASH_LABEL: hash_}
    generation = annotations_of(ds).get(TEMPLATE_GENERATION)
    if generation:
        extra[TEMPLATE_GENERATION_LABEL] = generation
    pod = pod_from_template(spec(ds).get("template") or {}, str(meta(ds)["namespace"]), ds, extra)
    pod["metadata"]["generateName"] = f"{meta(ds)['name']}-"
    pod_spec = pod["spec"] = daemon_pod_spec(ds)
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return pod


# ---------------------------------------------------------------------------- the controller
class DaemonSetController:
    name = "daemonset"
    watches: tuple[str, ...] = (DAEMONSETS, PODS, NODES, CONTROLLER_REVISIONS)

    def __init__(self) -> None:
        self._orphans = Orphans()
        self._orphan_revisions = Orphans()
        # (cluster, DaemonSet key) → node → (backoff delay, when a failed pod there was last deleted)
        self._backoff: dict[tuple[str, Key], dict[str, tuple[float, float]]] = {}

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == DAEMONSETS:
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
        elif event.resource == NODES:  # a node came, went or changed: every DaemonSet may care
            for entry in cluster.store.entries(DAEMONSETS):
                yield (str(meta(entry.obj).get("namespace", "")), str(meta(entry.obj)["name"]))
        elif event.resource == PODS:
            yield from owner_keys(cluster, event, self._orphans, "DaemonSet", DAEMONSETS)
        else:
            yield from owner_keys(cluster, event, self._orphan_revisions, "DaemonSet", DAEMONSETS)

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        ds = api.get(DAEMONSETS, namespace, name)
        if ds is None:
            self._backoff.pop((api.cluster.name, key), None)
            return None
        selector = selector_of(ds)
        if meta(ds).get("deletionTimestamp") or selector is None:
            return None
        pods = await claim(api, PODS, ds, selector, self._orphans)
        revisions = await claim(api, CONTROLLER_REVISIONS, ds, selector, self._orphan_revisions)
        recorded = await record(api, DAEMONSETS, ds, revisions)
        if recorded is None:
            return CONFLICT_RETRY
        current, old = recorded
        hash_ = labels(current).get(HASH_LABEL, "")
        nodes = api.objects(NODES)
        now = wall()
        by_node = pods_by_node(pods)
        backoff = self._backoff.setdefault((api.cluster.name, key), {})
        plan = manage_plan(ds, nodes, by_node, hash_, now, backoff)
        if not plan and (spec(ds).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            plan = rolling_plan(ds, nodes, by_node, hash_, now)
        await self._apply(api, ds, plan, hash_)
        if plan:
            pods = owned(api, PODS, ds)
            by_node = pods_by_node(pods)
        await truncate(api, ds, old, {labels(p).get(HASH_LABEL, "") for p in pods})
        ds = api.get(DAEMONSETS, namespace, name)
        if ds is None:
            return None
        desired, again = daemon_status(ds, nodes, by_node, hash_, now)
        if desired != status(ds):
            updated = deep_copy(ds)
            updated["status"] = desired
            if await api.update(DAEMONSETS, updated, subresource="status") is None:
                return CONFLICT_RETRY
        waits = [w for w in (again, plan.requeue) if w is not None]
        return min(waits) if waits else None

    async def _apply(self, api: ClusterAPI, ds: Obj, plan: Plan, hash_: str) -> None:
        namespace = str(meta(ds)["namespace"])

        async def delete(pod: Obj, force: bool) -> None:
            options: dict[str, Any] = {"preconditions": {"uid": meta(pod)["uid"]}}
            if force:
                options["gracePeriodSeconds"] = 0
            await api.delete(PODS, namespace, meta(pod)["name"], **options)

        await asyncio.gather(*(api.create(PODS, new_daemon_pod(ds, node, hash_)) for node in plan.create_on),
                             *(delete(pod, False) for pod in plan.delete),
                             *(delete(pod, True) for pod in plan.force_delete))
