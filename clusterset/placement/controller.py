"""The hub's `placement-scheduler` controller: one key per Placement; it chooses among the ClusterProfiles of the
ClusterSets bound to the Placement's namespace, publishes the choice as PlacementDecision slices and reports it in
the Placement's status and Events.

A Placement is rescheduled when it changes (its generation), when its own slices change (someone else's edit is
undone), and every Placement is when a ClusterProfile changes what the scheduler reads (labels, taints, properties,
health; a profile created or deleted), or a ClusterSetBinding or a ClusterSet's namespace changes. Balance reads
what every Placement chooses now from the PlacementDecisions in the cache; a change of another Placement's choice
does not reschedule this one (Steady keeps choices; each Placement sees the others' at its next scheduling).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import CLUSTERSET_NAMESPACE_LABEL, CONTROL_PLANE_HEALTHY
from clusterset.api.placement import (
    CLUSTERSET_BINDINGS,
    DECISION_KEY_LABEL,
    PLACEMENT_DECISIONS,
    PLACEMENTS,
    SATISFIED,
    SCHEDULER_NAME,
    SCHEDULING_DISABLED_ANNOTATION,
    TAINTS_ANNOTATION,
)
from clusterset.api.resources import CLUSTER_PROFILES, NAMESPACES
from clusterset.api.times import now_rfc3339
from clusterset.placement import decisions
from clusterset.placement.scheduler import (
    ChoiceLoad,
    Cluster,
    Decision,
    Misconfigured,
    Policy,
    Qualified,
    Ref,
    choose,
    cluster_of,
    compile_policy,
    qualify,
)
from clusterset.placement.writes import EVENT_SOURCE, create_or_update, update_status
from clusterset.runtime import Cache, Controller, Event, ObjectKey, Request, Result, Watch
from clusterset.runtime import Cluster as Engaged
from clusterset.runtime.cache import key_of
from clusterset.runtime.events import record_event
from clusterset.runtime.writes import delete

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EVERY_PLACEMENT = "*"  # the key that reschedules every Placement
SYNC_TIMEOUT = 30.0
EVENT_NAMES_SHOWN = 10
QUALIFIED_KEPT = 1024
KEPT = "the clusters chosen before stay chosen until it is fixed"


def _what_scheduling_reads(profile: Obj) -> tuple[Any, ...]:
    st = objects.status(profile)
    health = (objects.condition(st.get("conditions"), CONTROL_PLANE_HEALTHY) or {}).get("status")
    props = [(p.get("name"), p.get("value")) for p in st.get("properties") or [] if isinstance(p, dict)]
    return objects.labels(profile), objects.annotations_of(profile).get(TAINTS_ANNOTATION), health, props


def _profile_matters(event: Event) -> bool:
    """Heartbeats (observation times) reschedule nothing."""
    return event.type != "MODIFIED" or event.old is None or \
        _what_scheduling_reads(event.old) != _what_scheduling_reads(event.obj)


def _placement_changed(event: Event) -> bool:
    """A Placement's own status writes reschedule nothing; spec changes (generation) and deletion do."""
    if event.type != "MODIFIED" or event.old is None:
        return True
    old, new = objects.meta(event.old), objects.meta(event.obj)
    return any(old.get(f) != new.get(f) for f in ("generation", "deletionTimestamp")) or _disabled(
        event.old) != _disabled(event.obj)


def _disabled(placement: Obj) -> bool:
    """Another scheduler decides this Placement (as OCM's `experimental-scheduling-disable`): ours writes nothing."""
    return (objects.meta(placement).get("annotations") or {}).get(SCHEDULING_DISABLED_ANNOTATION) == "true"


class PlacementScheduler:
    """Reconciles one Placement (key: namespace, name)."""

    def __init__(self) -> None:
        self._inventory: tuple[str, list[Cluster]] = ("", [])  # the profiles cache's resourceVersion, its clusters
        self._qualified: dict[tuple[Any, ...], Qualified] = {}  # for the current inventory, per bound sets and filters
        self.counts = ChoiceCounts()
        self._writing: dict[ObjectKey, frozenset[Ref]] = {}  # slices being written, with the clusters they name

    def slice_event(self, event: Event) -> bool:
        """The decisions watch's predicate: counts every event, and drops the one that shows a slice this scheduler
        has just written as it wrote it (that reconcile decided it; deciding again only finds the same). A slice
        someone else changed or deleted reconciles its Placement."""
        self.counts.observe(event)
        if event.type == "DELETED" or not self._writing:
            return True
        written = self._writing.pop(key_of(event.obj), None)
        return written is None or written != decisions.chosen_in([event.obj])

    def qualified(self, hub: Engaged, policy: Policy, bound: frozenset[str]) -> Qualified:
        """The clusters that pass the policy's filters. The ClusterProfiles are parsed again only after their cache
        changed, and the filters' outcome is kept until then for Placements that filter alike."""
        cache = hub.cache(CLUSTER_PROFILES)
        if self._inventory[0] != cache.resource_version or not cache.resource_version:
            self._inventory = (cache.resource_version, [cluster_of(p) for p in cache.list()])
            self._qualified.clear()
        key = (bound, policy.filter_key)
        found = self._qualified.get(key)
        if found is None:
            if len(self._qualified) >= QUALIFIED_KEPT:
                self._qualified.clear()
            found = self._qualified[key] = qualify(policy, self._inventory[1], bound)
        return found

    def decide(self, hub: Engaged, placement: Obj, current: frozenset[Ref],
               slice_cache: Cache) -> tuple[list[Decision] | None, bool, str, str]:
        """What a Placement should choose now (None: keep what it has), whether that satisfies it, and why."""
        namespace = objects.meta(placement).get("namespace") or ""
        set_namespaces = {objects.labels(ns)[CLUSTERSET_NAMESPACE_LABEL]: ns["metadata"]["name"]
                          for ns in hub.cache(NAMESPACES, label_selector=CLUSTERSET_NAMESPACE_LABEL).list()
                          if not objects.meta(ns).get("deletionTimestamp")}
        bound = {objects.meta(b).get("namespace") for b in hub.cache(CLUSTERSET_BINDINGS).list()
                 if objects.spec(b).get("namespace") == namespace} & set(set_namespaces.values())
        if not bound:
            return [], False, decisions.NO_BINDING, decisions.binding_hint(namespace, sorted(set_namespaces.values()))
        spec = objects.spec(placement)
        asked = spec.get("clusterSets")
        if asked is not None:
            usable = bound & {set_namespaces.get(s) for s in asked}
            if not usable:
                bound_sets = sorted(s for s, ns in set_namespaces.items() if ns in bound)
                return [], False, decisions.NO_CLUSTER_SETS, (
                    f"none of spec.clusterSets ({', '.join(map(str, asked)) or 'empty'}) is bound to namespace "
                    f"{namespace}; bound: {', '.join(bound_sets)}")
            bound = usable
        try:
            policy = compile_policy(spec)
        except Misconfigured as exc:
            return None, False, decisions.MISCONFIGURED, f"{exc}; {KEPT}"
        outcome = choose(policy, self.qualified(hub, policy, frozenset(s for s in bound if s)), current,
                         self.counts.of(slice_cache))
        reason = decisions.ALL_DECIDED if outcome.satisfied else \
            decisions.NO_CLUSTER_MATCHED if not outcome.chosen else decisions.NOT_ALL_DECIDED
        return outcome.chosen, outcome.satisfied, reason, outcome.summary()

    async def reconcile(self, req: Request) -> Result | None:
        hub = req.cluster
        if not hub.synced:
            await hub.wait_synced(SYNC_TIMEOUT)
        placements = hub.cache(PLACEMENTS)
        placement = placements.get(req.key) if isinstance(req.key, ObjectKey) else None
        if placement is None or objects.meta(placement).get("deletionTimestamp"):
            return None  # its slices go with it (ownerReferences)
        if _disabled(placement):
            return None
        namespace, name = req.namespace, req.name
        slice_cache = hub.cache(PLACEMENT_DECISIONS, label_selector=DECISION_KEY_LABEL)
        have = [s for s in slice_cache.list(namespace, {DECISION_KEY_LABEL: name})
                if s.get("schedulerName") == SCHEDULER_NAME]
        current = decisions.chosen_in(have)

        chosen, satisfied, reason, message = self.decide(hub, placement, current, slice_cache)
        if chosen is not None:
            want = decisions.slices(placement, chosen)
        else:  # misconfigured: keep the slices there are, but slice 0 exists
            want = [] if have else decisions.slices(placement, [])
        for obj in want:
            stored = slice_cache.get(key_of(obj))
            if stored is None or not decisions.same_slice(stored, obj):
                key = key_of(obj)
                self._writing[key] = decisions.chosen_in([obj])
                try:
                    await create_or_update(hub.client, PLACEMENT_DECISIONS, slice_cache, stored, obj)
                except BaseException:
                    self._writing.pop(key, None)
                    raise
        if chosen is not None:
            wanted = {o["metadata"]["name"] for o in want}
            for obj in have:
                if obj["metadata"]["name"] not in wanted:
                    await delete(hub.client, PLACEMENT_DECISIONS, slice_cache, obj)

        selected = len(chosen) if chosen is not None else len(current)
        new_status = decisions.status(placement, selected, satisfied, reason, message, now_rfc3339())
        old_condition = objects.condition(objects.status(placement).get("conditions"), SATISFIED) or {}
        if new_status != placement.get("status"):
            await update_status(hub.client, placements, placement, new_status)
        await self._events(hub, placement, current, chosen, satisfied, reason, message, old_condition)
        return None

    @staticmethod
    async def _events(hub: Engaged, placement: Obj, before: frozenset[Ref], chosen: list[Decision] | None,
                      satisfied: bool, reason: str, message: str, old: Obj) -> None:
        if chosen is not None and (after := frozenset(d.ref for d in chosen)) != before:
            def names(refs: Iterable[Ref]) -> str:
                listed = sorted(n for _, n in refs)
                more = len(listed) - EVENT_NAMES_SHOWN
                return ", ".join(listed[:EVENT_NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")

            changes = [f"added {names(after - before)}" if after - before else "",
                       f"removed {names(before - after)}" if before - after else ""]
            text = f"{len(after)} cluster{'' if len(after) == 1 else 's'} chosen ({'; '.join(c for c in changes if c)})"
            await record_event(hub.client, PLACEMENTS, placement, "Normal", "Scheduled", text, EVENT_SOURCE)
        if not satisfied and (old.get("reason"), old.get("message")) != (reason, message):
            await record_event(hub.client, PLACEMENTS, placement, "Warning", reason, message, EVENT_SOURCE)


class ChoiceCounts:
    """How many PlacementDecision slices name each cluster (a Placement names a cluster in one slice at most, so this
    is how many Placements choose it), kept from the decisions watch's events: Balance reads it for every candidate
    of every scheduling. Each slice's contribution is replaced, never added twice, so replayed events are harmless;
    events missed while the controller was stopped show as a slice count that differs from the cache's, and the
    counts are then rebuilt from the cache."""

    def __init__(self) -> None:
        self._by_slice: dict[ObjectKey, frozenset[Ref]] = {}
        self._load = ChoiceLoad()

    def observe(self, event: Event) -> bool:
        """The decisions watch's predicate: counts, and lets every event through."""
        if event.type == "DELETED":
            self._set(key_of(event.obj), None)
        else:
            self._set(key_of(event.obj), decisions.chosen_in([event.obj]))
        return True

    def _set(self, key: ObjectKey, refs: frozenset[Ref] | None) -> None:
        old = self._by_slice.get(key, frozenset())
        if refs is None:
            self._by_slice.pop(key, None)
            refs = frozenset()
        else:
            self._by_slice[key] = refs
        for ref in old - refs:
            self._load.add(ref, -1)
        for ref in refs - old:
            self._load.add(ref, 1)

    def of(self, cache: Cache) -> ChoiceLoad:
        """The counts, rebuilt first if they missed events of `cache` (the decisions watch's)."""
        if len(self._by_slice) != len(cache):
            self._by_slice.clear()
            self._load = ChoiceLoad()
            for obj in cache.list():
                self._set(key_of(obj), decisions.chosen_in([obj]))
        return self._load


def _decision_key(cluster: str, obj: Obj) -> list[tuple[str, ObjectKey]]:
    key = objects.labels(obj).get(DECISION_KEY_LABEL)
    return [(cluster, ObjectKey(str(objects.meta(obj).get("namespace") or ""), key))] if key else []


def _every_placement(cluster: str, _obj: Obj) -> list[tuple[str, str]]:
    return [(cluster, EVERY_PLACEMENT)]


def placement_controller(hub: str = "hub", workers: int = 4) -> Controller:
    """The `placement-scheduler` controller, on the hub engaged as `hub`."""
    scheduler = PlacementScheduler()

    async def reconcile(req: Request) -> Result | None:
        if req.key == EVERY_PLACEMENT:
            for placement in req.cluster.cache(PLACEMENTS).list():
                controller.enqueue(req.cluster, key_of(placement))
            return None
        return await scheduler.reconcile(req)

    controller = Controller(
        "placement-scheduler",
        reconcile,
        [
            Watch(PLACEMENTS, predicate=_placement_changed),
            Watch(PLACEMENT_DECISIONS, label_selector=DECISION_KEY_LABEL, map_to=_decision_key,
                  predicate=scheduler.slice_event),
            Watch(CLUSTER_PROFILES, map_to=_every_placement, predicate=_profile_matters),
            Watch(CLUSTERSET_BINDINGS, map_to=_every_placement),
            Watch(NAMESPACES, label_selector=CLUSTERSET_NAMESPACE_LABEL, map_to=_every_placement),
        ],
        clusters=hub,
        workers=workers,
    )
    return controller
