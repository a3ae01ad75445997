"""The hub's `workset` controller: for each WorkSet, one Work per cluster its Placement decided, in that member's
hub namespace; Works of clusters no longer decided deleted; the template rolled out `maxUnavailable` clusters at a
time; the Works' conditions summed up in the WorkSet's status.

The decision is read from the PlacementDecision slices (the KEP's consumer contract), never from the Placement's
status, so any scheduler that writes slices drives it. Without any slice (the Placement missing, or not decided
yet) the WorkSet keeps the clusters it has: a Placement deleted and made again, or renamed by mistake, must not
remove a workload from every cluster; an explicit decision of fewer clusters does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import MEMBER_LABEL, set_condition
from clusterset.api.placement import (
    APPLIED,
    AVAILABLE,
    DECISION_KEY_LABEL,
    PLACEMENT_DECISIONS,
    PLACEMENTS,
    WORK_SETS,
    WORKS,
)
from clusterset.api.resources import CLUSTER_PROFILES, NAMESPACES
from clusterset.api.times import now_rfc3339
from clusterset.client.errors import AlreadyExists, BadRequest, Forbidden, Invalid
from clusterset.runtime import Cluster, Controller, Request, Result, Watch, decided_clusters
from clusterset.runtime.cache import ObjectKey
from clusterset.runtime.events import record_event
from clusterset.runtime.informer import Event
from clusterset.runtime.writes import delete
from clusterset.workset import writes
from clusterset.workset.overrides import ClusterFacts, OverrideError, facts_of
from clusterset.workset.works import (
    FINALIZER,
    WORKSET_LABEL,
    WORKSET_NAMESPACE_LABEL,
    Failure,
    current_condition,
    desired_work,
    max_unavailable,
    rollout,
    summary,
    version_of,
    work_failure,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SYNC_TIMEOUT = 30.0
EVERY_WORKSET = "*"  # a key: every WorkSet (a cluster's labels, properties or membership changed)
PLACEMENT_KEY = "@"  # a key `@<namespace>/<placement>`: the WorkSets of that Placement

# conditions
PLACEMENT_FOUND, PROGRESSING, OVERRIDE_FAILED = "PlacementFound", "Progressing", "OverrideFailed"
NOT_JOINED, PROFILE_NOT_FOUND, WORK_REJECTED = "NotJoined", "ClusterProfileNotFound", "WorkRejected"


@dataclass(frozen=True)
class Target:
    """A cluster the WorkSet runs on: its name (the ClusterProfile's), facts and hub namespace."""

    name: str
    facts: ClusterFacts | None
    namespace: str | None


class WorkSetReconciler:
    def __init__(self) -> None:
        self.controller: Controller | None = None
        self._made: dict[ObjectKey, tuple[Any, dict[tuple[Any, ...], Obj | OverrideError]]] = {}

    def _desired(self, workset: Obj, facts: ClusterFacts, namespace: str) -> Obj | OverrideError:
        """A cluster's Work, remembered for the WorkSet's current version and the cluster's facts: a WorkSet's
        Works report often, and each report reconciles the WorkSet, which would otherwise copy and patch every
        cluster's manifests again."""
        meta = objects.meta(workset)
        version = (meta.get("uid"), meta.get("generation"))
        key = ObjectKey(str(meta.get("namespace")), str(meta.get("name")))
        remembered = self._made.get(key)
        if remembered is None or remembered[0] != version:
            remembered = self._made[key] = (version, {})
        cluster = (namespace, facts.name, facts.id, tuple(sorted(facts.labels.items())),
                   tuple(sorted(facts.properties.items())))
        made = remembered[1].get(cluster)
        if made is None:
            try:
                made = desired_work(workset, facts, namespace)
            except OverrideError as err:
                made = err
            remembered[1][cluster] = made
        return made

    async def reconcile(self, req: Request) -> Result | None:
        hub = req.cluster
        if not hub.synced:
            await hub.wait_synced(SYNC_TIMEOUT)
        if isinstance(req.key, str):
            self._fan_out(hub, req.key)
            return None
        workset = hub.cache(WORK_SETS).get(req.key)
        if workset is None:
            self._made.pop(req.key, None)
            return None
        works = hub.cache(WORKS, label_selector=WORKSET_LABEL)
        mine = works.list(label_selector={WORKSET_NAMESPACE_LABEL: req.namespace, WORKSET_LABEL: req.name})
        meta = objects.meta(workset)
        if meta.get("deletionTimestamp"):
            await self._finalize(hub, workset, mine)
            return None
        if FINALIZER not in (meta.get("finalizers") or []):
            workset = await writes.update(hub.client, WORK_SETS, hub.cache(WORK_SETS), {
                **workset, "metadata": {**meta, "finalizers": [*(meta.get("finalizers") or []), FINALIZER]}})
        await self._sync(hub, workset, mine)
        return None

    def _fan_out(self, hub: Cluster, key: str) -> None:
        assert self.controller is not None
        for ws in hub.cache(WORK_SETS).list():
            if key != EVERY_WORKSET:
                namespace, _, placement = key[len(PLACEMENT_KEY):].partition("/")
                if objects.meta(ws).get("namespace") != namespace or \
                        (objects.spec(ws).get("placementRef") or {}).get("name") != placement:
                    continue
            self.controller.enqueue(hub, ObjectKey(ws["metadata"]["namespace"], ws["metadata"]["name"]))

    async def _finalize(self, hub: Cluster, workset: Obj, mine: list[Obj]) -> None:
        """Deletes every Work of the WorkSet, then (once they are gone: their agents have removed what they
        applied) the finalizer. Each Work's deletion maps back here, so nothing polls."""
        works = hub.cache(WORKS, label_selector=WORKSET_LABEL)
        for work in mine:
            if not objects.meta(work).get("deletionTimestamp"):
                await delete(hub.client, WORKS, works, work)
        meta = objects.meta(workset)
        if any(works.get((w["metadata"]["namespace"], w["metadata"]["name"])) is not None for w in mine):
            return
        if FINALIZER in (meta.get("finalizers") or []):
            kept = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            await writes.drop_finalizer(hub.client, WORK_SETS, hub.cache(WORK_SETS),
                                        {**workset, "metadata": {**meta, "finalizers": kept}}, FINALIZER)
            log.info("work set deleted with its works workset=%s/%s", meta["namespace"], meta["name"])

    # ------------------------------------------------------------------ the WorkSet's Works
    def _targets(self, hub: Cluster, workset: Obj, mine: list[Obj]) -> tuple[list[Target], list[Obj]]:
        """The clusters the WorkSet runs on (without a decision slice: those its Works are in) and the slices."""
        ns = str(objects.meta(workset).get("namespace"))
        placement = str((objects.spec(workset).get("placementRef") or {}).get("name"))
        slices = hub.cache(PLACEMENT_DECISIONS, label_selector=DECISION_KEY_LABEL).list(
            ns, {DECISION_KEY_LABEL: placement})
        members = {objects.labels(n)[MEMBER_LABEL]: n["metadata"]["name"]
                   for n in hub.cache(NAMESPACES, label_selector=MEMBER_LABEL).list()
                   if not objects.meta(n).get("deletionTimestamp")}
        profiles = hub.cache(CLUSTER_PROFILES)
        if slices:
            found = [(ref.name, profiles.get(ref)) for ref in decided_clusters(slices)]
        else:  # no decision: the clusters that have this WorkSet's Works now
            by_id = {facts_of(p).id: p for p in sorted(profiles.list(), key=lambda p: (
                str(objects.meta(p).get("namespace")), str(objects.meta(p).get("name"))))}
            ids = {v: k for k, v in members.items()}
            kept = sorted(ids[w["metadata"]["namespace"]] for w in mine if w["metadata"]["namespace"] in ids)
            found = [(str(objects.meta(by_id[i]).get("name")) if i in by_id else i, by_id.get(i)) for i in kept]
        targets, names = [], set()
        for name, profile in found:
            if name in names:
                continue
            names.add(name)
            facts = facts_of(profile) if profile is not None else None
            targets.append(Target(name, facts, members.get(facts.id if facts else name)))
        return targets, slices

    async def _sync(self, hub: Cluster, workset: Obj, mine: list[Obj]) -> None:
        meta, spec = objects.meta(workset), objects.spec(workset)
        works = hub.cache(WORKS, label_selector=WORKSET_LABEL)
        by_namespace = {w["metadata"]["namespace"]: w for w in mine}
        targets, slices = self._targets(hub, workset, mine)
        failures: list[Failure] = []
        wanted: dict[str, Obj] = {}  # member namespace → its Work
        for t in targets:
            if t.namespace is None:
                failures.append(Failure(t.name, NOT_JOINED, f"no hub namespace is labelled {MEMBER_LABEL}="
                                        f"{t.facts.id if t.facts else t.name}: the cluster has not joined, or left"))
            elif t.facts is None:
                failures.append(Failure(t.name, PROFILE_NOT_FOUND, f"the decision names ClusterProfile {t.name}, "
                                        "which does not exist; its Work is left as it is"))
            else:
                made = self._desired(workset, t.facts, t.namespace)
                if isinstance(made, OverrideError):
                    failures.append(Failure(t.name, OVERRIDE_FAILED, f"{made} (cluster {t.name}; its Work is left "
                                            "as it was)"))
                else:
                    wanted[t.namespace] = made
        budget, rollout_problem = max_unavailable((spec.get("rollout") or {}).get("maxUnavailable"), len(targets))
        versions = {ns: str(version_of(w)) for ns, w in wanted.items()}
        current = {ns: w for ns, w in by_namespace.items() if ns in wanted}
        name_of = {t.namespace: t.name for t in targets if t.namespace is not None}

        async def write(ns: str) -> None:
            try:
                by_namespace[ns] = await writes.ensure(hub.client, WORKS, works, wanted[ns], by_namespace.get(ns))
            except (BadRequest, Invalid, Forbidden, AlreadyExists) as err:
                # the WorkSet's fault, the member namespace's, or another Work's of that name: that cluster's only
                failures.append(Failure(name_of[ns], WORK_REJECTED, f"the hub refused its Work: {err.message}"))

        async def remove(ns: str) -> None:
            await delete(hub.client, WORKS, works, by_namespace.pop(ns))
            log.info("work removed, its cluster is no longer decided workset=%s/%s namespace=%s",
                     meta["namespace"], meta["name"], ns)

        await writes.each(sorted(rollout(versions, current, budget)), write)
        keep = {t.namespace for t in targets if t.namespace is not None}
        await writes.each(sorted(ns for ns in by_namespace if ns not in keep), remove)
        failures += [f for ns, w in by_namespace.items() if ns in name_of and (f := work_failure(name_of[ns], w))]
        placement_name = str((spec.get("placementRef") or {}).get("name"))
        placement = hub.cache(PLACEMENTS).get((str(meta["namespace"]), placement_name))
        status = self._status(workset, targets, by_namespace, versions, failures, placement is not None,
                              slices, budget, rollout_problem)
        await self._write_status(hub, workset, status, failures)

    # ------------------------------------------------------------------ status
    def _status(self, workset: Obj, targets: list[Target], works: dict[str, Obj], versions: dict[str, str],
                failures: list[Failure], placement_found: bool, slices: list[Obj], budget: int,
                rollout_problem: str | None) -> Obj:
        meta, old = objects.meta(workset), objects.status(workset)
        placement = str((objects.spec(workset).get("placementRef") or {}).get("name"))
        names = [t.name for t in targets]
        mine = {t.name: works[t.namespace] for t in targets if t.namespace in works}
        total = summary(names, mine, failures)
        generation = meta.get("generation")
        now = now_rfc3339()

        def cond(type_: str, ok: bool, reason: str, message: str) -> Obj:
            return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
                    "observedGeneration": generation}

        if slices:
            found = cond(PLACEMENT_FOUND, placement_found, "Decided" if placement_found else "PlacementNotFound",
                         f"{len(targets)} cluster(s) decided by Placement {placement}" + (
                             "" if placement_found else ", which does not exist; following its PlacementDecisions"))
        elif placement_found:
            found = cond(PLACEMENT_FOUND, True, "NotDecided", f"Placement {placement} has no PlacementDecision yet; "
                         "the Works are kept as they are")
        else:
            found = cond(PLACEMENT_FOUND, False, "PlacementNotFound", f"Placement {placement} not found in namespace "
                         f"{meta['namespace']}; the Works are kept as they are (delete the WorkSet to remove them)")
        selected = total["selected"]
        at_new = sum(1 for ns, v in versions.items() if version_of(works.get(ns)) == v
                     and current_condition(works[ns], AVAILABLE) == "True")
        rolling = at_new < len(versions)
        override_failures = [f for f in failures if f.reason == OVERRIDE_FAILED]
        rollout_note = f"; {rollout_problem}, so 1 at a time" if rollout_problem else ""
        conditions = [
            found,
            cond(APPLIED, selected > 0 and total["applied"] == selected, "AllApplied" if selected and
                 total["applied"] == selected else ("NoClusters" if not selected else "NotAllApplied"),
                 f"{total['applied']} of {selected} cluster(s) applied"),
            cond(AVAILABLE, selected > 0 and total["available"] == selected, "AllAvailable" if selected and
                 total["available"] == selected else ("NoClusters" if not selected else "NotAllAvailable"),
                 f"{total['available']} of {selected} cluster(s) available"),
            cond(PROGRESSING, rolling, "RollingOut" if rolling else "RolloutComplete",
                 f"{at_new} of {len(versions)} cluster(s) available at the current version, at most {budget} "
                 f"updated at a time{rollout_note}"),
            cond(OVERRIDE_FAILED, bool(override_failures), OVERRIDE_FAILED if override_failures else "NoFailure",
                 "; ".join(f.message for f in override_failures[:5]) or "every override applied"),
        ]
        out = list(old.get("conditions") or [])
        for c in conditions:
            out = set_condition(out, c, now)
        return {"observedGeneration": generation, "summary": total, "conditions": out}

    async def _write_status(self, hub: Cluster, workset: Obj, status: Obj, failures: list[Failure]) -> None:
        old = objects.status(workset)
        if old == status:
            return
        await writes.update(hub.client, WORK_SETS, hub.cache(WORK_SETS), {**workset, "status": status},
                            subresource="status")
        before = {(f.get("cluster"), f.get("reason")) for f in (old.get("summary") or {}).get("failing") or []}
        for f in failures:
            if (f.cluster, f.reason) not in before:
                await record_event(hub.client, WORK_SETS, workset, "Warning", f.reason,
                                   f"cluster {f.cluster}: {f.message}", writes.FIELD_MANAGER)


# ---------------------------------------------------------------------- wiring
def _workset_of(cluster: str, obj: Obj) -> list[tuple[str, ObjectKey]]:
    labels = objects.labels(obj)
    ns, name = labels.get(WORKSET_NAMESPACE_LABEL), labels.get(WORKSET_LABEL)
    return [(cluster, ObjectKey(ns, name))] if ns and name else []


def _placement_key(cluster: str, namespace: Any, placement: Any) -> list[tuple[str, str]]:
    return [(cluster, f"{PLACEMENT_KEY}{namespace}/{placement}")] if placement else []


def _decision_of(cluster: str, obj: Obj) -> list[tuple[str, str]]:
    return _placement_key(cluster, objects.meta(obj).get("namespace"), objects.labels(obj).get(DECISION_KEY_LABEL))


def _placement_of(cluster: str, obj: Obj) -> list[tuple[str, str]]:
    return _placement_key(cluster, objects.meta(obj).get("namespace"), objects.meta(obj).get("name"))


def _every_workset(cluster: str, _obj: Obj) -> list[tuple[str, str]]:
    return [(cluster, EVERY_WORKSET)]


def _profile_changed(event: Event) -> bool:
    """A profile's labels, properties or existence: what selection and placeholders read (not its heartbeats)."""
    if event.type != "MODIFIED" or event.old is None:
        return True
    return facts_of(event.old) != facts_of(event.obj)


def workset_controller(hub: str = "hub", workers: int = 4) -> Controller:
    """Hub: one key per WorkSet; triggered by the WorkSet, its Works, its Placement's decision slices and the
    Placement, and (for every WorkSet) by changes of ClusterProfiles and member namespaces."""
    reconciler = WorkSetReconciler()
    controller = Controller(
        "workset",
        reconciler.reconcile,
        [
            Watch(WORK_SETS),
            Watch(WORKS, label_selector=WORKSET_LABEL, map_to=_workset_of),
            Watch(PLACEMENT_DECISIONS, label_selector=DECISION_KEY_LABEL, map_to=_decision_of),
            Watch(PLACEMENTS, map_to=_placement_of),
            Watch(CLUSTER_PROFILES, map_to=_every_workset, predicate=_profile_changed),
            Watch(NAMESPACES, label_selector=MEMBER_LABEL, map_to=_every_workset),
        ],
        clusters=hub,
        workers=workers,
    )
    reconciler.controller = controller
    return controller
