"""Helpers shared by the simulated workload controllers, scheduler, kubelet and node controller.

Every helper reads plain dicts defensively: controllers see whatever clients stored, and a
malformed object must never take a controller down (see `guarded`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import orjson

from clusterset.api.objects import labels, meta, spec, status
from clusterset.api.times import parse_time
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.selectors import LabelSelector, label_selector_from_object
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

log = logging.getLogger("clusterset.apiserver.controllers")

PODS = "/pods"
NODES = "/nodes"
NAMESPACES = "/namespaces"
LEASES = "coordination.k8s.io/leases"
DEPLOYMENTS = "apps/deployments"
REPLICASETS = "apps/replicasets"
STATEFULSETS = "apps/statefulsets"
JOBS = "batch/jobs"
CRONJOBS = "batch/cronjobs"
DAEMONSETS = "apps/daemonsets"
CONTROLLER_REVISIONS = "apps/controllerrevisions"
REPLICATIONCONTROLLERS = "/replicationcontrollers"

# Test hooks (documented in kubelet.py and nodes.py): what a simulated container or node does.
SIMULATE_READY = "clusterset.io/simulate-ready"
SIMULATE_PHASE = "clusterset.io/simulate-phase"
SIMULATE_TERMINATION = "clusterset.io/simulate-termination-seconds"
SIMULATE_RUN = "clusterset.io/simulate-run-seconds"
SIMULATED_NODE = "clusterset.io/simulated-node"

# how long a reconcile waits before retrying after an optimistic-concurrency conflict
CONFLICT_RETRY = 0.05

Reconcile = Callable[[Any, ClusterAPI, Key], Awaitable[float | None]]
R = TypeVar("R", bound=Reconcile)


def safe_keys(fn: Callable[[Any, Cluster, Event], Iterable[Key]]) -> Callable[[Any, Cluster, Event], list[Key]]:
    """keys_for runs inside the store's write path: a surprise there must not fail a client's write."""

    @functools.wraps(fn)
    def run(self: Any, cluster: Cluster, event: Event) -> list[Key]:
        try:
            return list(fn(self, cluster, event))
        except Exception:
            log.exception("%s: mapping an event of %s in %s", self.name, event.resource, cluster.name)
            return []

    return run


def guarded(field_manager: str) -> Callable[[R], R]:
    """Writes under an upstream-like field manager, and turns a malformed object or a rejected write
    into a log line instead of an endless retry: the next change to the object reconciles it again."""

    def wrap(fn: R) -> R:
        @functools.wraps(fn)
        async def run(self: Any, api: ClusterAPI, key: Key) -> float | None:
            api = api.as_manager(field_manager)
            try:
                return await fn(self, api, key)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                log.warning("%s: %s/%s: ignoring malformed object: %r", self.name, api.cluster.name, key, exc,
                            exc_info=True)
                return None
            except StatusError as err:
                if err.code >= 500:
                    raise
                log.warning("%s: %s/%s: write rejected: %s", self.name, api.cluster.name, key, err.message)
                return 30.0

        return run  # type: ignore[return-value]

    return wrap


# ---------------------------------------------------------------------------- time
def parse_ts(value: Any) -> float | None:
    """An RFC 3339 timestamp as epoch seconds; None when absent or unparsable."""
    parsed = parse_time(value)
    return None if parsed is None else parsed.timestamp()


def wall() -> float:
    return time.time()


def seconds_setting(cluster: Cluster, key: str, default: float) -> float:
    """A non-negative duration from the cluster's settings (read on each use, so tests can change it)."""
    try:
        return max(0.0, float(cluster.settings.get(key, default)))
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------------------- objects
def deep_copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def compact(value: Any) -> Any:
    """Drops nulls and empty objects/lists, as Go's typed comparison sees no difference there
    (`creationTimestamp: null` from kubectl's rollback vs. no creationTimestamp at all)."""
    if isinstance(value, dict):
        out = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def owner_ref(owner: Obj) -> dict[str, Any]:
    """The controller reference a workload puts on what it creates (blocks foreground deletion)."""
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": meta(owner)["name"],
        "uid": meta(owner)["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_key(event_obj: Obj, kind: str, api_version: str) -> Key | None:
    """The (namespace, name) of the `kind` controlling `event_obj`, if any."""
    ref = controller_ref(event_obj)
    if ref is None or ref.get("kind") != kind or ref.get("apiVersion") != api_version:
        return None
    return (str(meta(event_obj).get("namespace", "")), str(ref.get("name", "")))


def selector_of(obj: Obj) -> LabelSelector | None:
    """The workload's label selector; None if missing or invalid (select nothing)."""
    sel = spec(obj).get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return None
    try:
        return label_selector_from_object(sel)
    except Exception:
        return None


def map_selector_of(obj: Obj) -> LabelSelector | None:
    """A ReplicationController's selector (a plain map of labels); None if missing or empty."""
    sel = spec(obj).get("selector")
    if not isinstance(sel, dict) or not sel:
        return None
    try:
        return label_selector_from_object({"matchLabels": sel})
    except Exception:
        return None


def owned(api: ClusterAPI, resource: str, owner: Obj) -> list[Obj]:
    """Objects of `resource` whose controller is `owner` (the GC index: no scan)."""
    uid = meta(owner).get("uid", "")
    out = []
    for res, entry in api.cluster.store.dependents(uid):
        if res == resource:
            ref = controller_ref(entry.obj)
            if ref is not None and ref.get("uid") == uid:
                out.append(entry.obj)
    return out


class Orphans:
    """Names of objects without a controller, per cluster and namespace, kept up to date from the
    events a controller sees (attach replays what exists), so adoption never lists a namespace."""

    def __init__(self) -> None:
        self._names: dict[str, dict[str, set[str]]] = {}

    def note(self, cluster: str, event: Event) -> None:
        obj = event.entry.obj
        ns, name = str(meta(obj).get("namespace", "")), str(meta(obj).get("name", ""))
        by_ns = self._names.setdefault(cluster, {})
        if event.type == "DELETED" or controller_ref(obj) is not None or meta(obj).get("deletionTimestamp"):
            names = by_ns.get(ns)
            if names is not None:
                names.discard(name)
                if not names:
                    del by_ns[ns]
        else:
            by_ns.setdefault(ns, set()).add(name)

    def candidates(self, cluster: str, namespace: str) -> list[str]:
        return sorted(self._names.get(cluster, {}).get(namespace, ()))


async def claim(api: ClusterAPI, resource: str, owner: Obj, selector: LabelSelector | None,
                orphans: Orphans) -> list[Obj]:
    """What the owner controls, after adopting matching orphans and releasing what no longer matches
    (ControllerRefManager). Returns the owner's objects."""
    mine = owned(api, resource, owner)
    if selector is None:
        return mine
    ns = str(meta(owner).get("namespace", ""))
    uid = meta(owner)["uid"]
    deleting = bool(meta(owner).get("deletionTimestamp"))
    result = []
    for obj in mine:
        if selector.matches(labels(obj)) or deleting:
            result.append(obj)
            continue
        released = deep_copy(obj)
        released["metadata"]["ownerReferences"] = [
            r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != uid
        ]
        if not released["metadata"]["ownerReferences"]:
            del released["metadata"]["ownerReferences"]
        await api.update(resource, released)
    if deleting:
        return result
    for name in orphans.candidates(api.cluster.name, ns):
        orphan = api.get(resource, ns, name)
        if orphan is None:
            continue
        m = meta(orphan)
        if m.get("deletionTimestamp") or controller_ref(orphan) is not None or not selector.matches(labels(orphan)):
            continue
        adopted = deep_copy(orphan)
        adopted["metadata"]["ownerReferences"] = [*(m.get("ownerReferences") or []), owner_ref(owner)]
        stored = await api.update(resource, adopted)
        if stored is not None:
            result.append(stored)
    return result


def owner_keys(cluster: Cluster, event: Event, orphans: Orphans, kind: str, owner_resource: str,
               api_version: str = "apps/v1",
               selector: Callable[[Obj], LabelSelector | None] = selector_of) -> list[Key]:
    """The `kind` owners an owned object's event concerns: its controller, or owners that may adopt it."""
    obj = event.entry.obj
    orphans.note(cluster.name, event)
    key = owner_key(obj, kind, api_version)
    if key is not None:
        return [key]
    if event.type == "DELETED":
        return []
    ns = str(meta(obj).get("namespace", ""))
    return orphan_owner_keys((e.obj for e in cluster.store.entries(owner_resource, ns)), obj, selector)


def orphan_owner_keys(api_objects: Iterable[Obj], obj: Obj,
                      selector: Callable[[Obj], LabelSelector | None] = selector_of) -> list[Key]:
    """Owners (of one kind, in obj's namespace) whose selector would adopt an orphan `obj`."""
    if controller_ref(obj) is not None or meta(obj).get("deletionTimestamp"):
        return []
    keys = []
    for owner in api_objects:
        sel = selector(owner)
        if sel is not None and sel.matches(labels(obj)) and not meta(owner).get("deletionTimestamp"):
            keys.append((str(meta(owner).get("namespace", "")), str(meta(owner)["name"])))
    return keys


# ---------------------------------------------------------------------------- pods
def pod_condition(pod: Obj, ctype: str) -> dict[str, Any] | None:
    for cond in status(pod).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return None


def is_terminal(pod: Obj) -> bool:
    return status(pod).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Counts toward a workload's replicas: not finished, not being deleted (FilterActivePods)."""
    return not is_terminal(pod) and not meta(pod).get("deletionTimestamp")


def is_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_running_and_ready(pod: Obj) -> bool:
    return status(pod).get("phase") == "Running" and is_ready(pod)


def available_in(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """0 if the pod is available now, seconds until it will be (still Ready), None if not Ready."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_ts((pod_condition(pod, "Ready") or {}).get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, since + min_ready_seconds - now)


def pod_from_template(template: dict[str, Any], namespace: str, owner: Obj,
                      extra_labels: dict[str, str] | None = None) -> Obj:
    """A pod as a workload controller creates it from its template (GetPodFromTemplate)."""
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = {}
    pod_meta: dict[str, Any] = {
        "namespace": namespace,
        "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [owner_ref(owner)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    pod_spec = deep_copy(template.get("spec") or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}


# ---------------------------------------------------------------------------- conditions
def set_condition(conditions: list[dict[str, Any]], condition: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream SetCondition: same status and reason → unchanged; same status → keep the transition
    time; the new condition goes last."""
    current = next((c for c in conditions if c.get("type") == condition["type"]), None)
    if current is not None and current.get("status") == condition["status"] and \
            current.get("reason") == condition.get("reason"):
        return conditions
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    return [*(c for c in conditions if c.get("type") != condition["type"]), condition]


# ---------------------------------------------------------------------------- hashing
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString: no vowels, no look-alike characters."""
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in text)


def template_hash(template: Any, collision_count: int | None = None) -> str:
    """A pod-template-hash as upstream computes it: FNV-32a, decimal, safe-encoded (over canonical JSON
    rather than Go's spew output, so the values differ from upstream's, but not their shape)."""
    h = 0x811C9DC5
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(h))


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0
