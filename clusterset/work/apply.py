"""The member side of a Work: apply its manifests with server-side apply, track them in the member's AppliedWork,
remove what the Work no longer names, clean up when it is deleted, and report conditions and feedback on it.

A pass reads the Work through the member's view of the hub and the applied objects from label-selected caches of
the member (`watches.py`); it applies a manifest only when its object is missing or no longer contains what the
manifest says (someone changed a field the Work sets), and writes a status only when it changed, so a pass over
an unchanged Work (an agent restart, a status event) writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from clusterset.api import objects
from clusterset.api.inventory import set_condition
from clusterset.api.placement import APPLIED, APPLIED_WORKS, WORK_CLEANUP_FINALIZER, WORKS
from clusterset.api.resources import Resource
from clusterset.api.times import now_rfc3339
from clusterset.client.errors import ApiError, Conflict, ConnectionFailed, Forbidden, NotFound
from clusterset.runtime import Cache, Cluster, Request, Result
from clusterset.runtime.cache import SEEN_TIMEOUT
from clusterset.runtime.events import record_event
from clusterset.runtime.hubview import NO_VIEW_RETRY, HubView, HubViews, ready_view
from clusterset.work.discovery import Discovery
from clusterset.work.feedback import feedback
from clusterset.work.manifests import (
    FIELD_MANAGER,
    WORK_ANNOTATION,
    WORK_LABEL,
    ManifestError,
    desired,
    identifier,
    names,
    parse,
    same_object,
    work_label,
    work_of,
)
from clusterset.work.status import Outcome, manifest_conditions, work_conditions
from clusterset.work.watches import AppliedObjects

log = logging.getLogger(__name__)

Obj = dict[str, Any]
A = TypeVar("A")
B = TypeVar("B")
EVENT_SOURCE = "clusterset-work"
EVENT_NAMESPACE = "default"  # the member's Events about an AppliedWork (cluster-scoped) go here, as a Node's do


class WorkApplier:
    """Reconciles one Work (key: the member's hub namespace, the Work's name) of a member."""

    def __init__(self, views: HubViews, applied_objects: AppliedObjects) -> None:
        self.views = views
        self.applied_objects = applied_objects
        self._discovery: dict[str, tuple[Cluster, Discovery]] = {}

    async def reconcile(self, req: Request) -> Result | None:
        view = await ready_view(self.views, req.cluster)
        if view is None:
            return Result(requeue_after=NO_VIEW_RETRY)
        if req.namespace != view.namespace:  # an AppliedWork of another hub namespace: not this agent's
            return None
        member = req.cluster
        works = view.cluster.cache(WORKS, view.namespace)
        work = works.get((req.namespace, req.name))
        applied = member.cache(APPLIED_WORKS).get(req.name)
        if applied is not None and objects.spec(applied).get("workNamespace") != req.namespace:
            applied = None
        if work is None:  # gone without our finalizer: the AppliedWork goes, and GC takes its namespaced children
            if applied is not None:
                await _delete_object(member, APPLIED_WORKS, member.cache(APPLIED_WORKS), applied)
            return None
        if objects.meta(work).get("deletionTimestamp"):
            await self._finalize(member, view, works, work, applied)
            return None
        if applied is not None and objects.meta(applied).get("deletionTimestamp"):
            return Result(requeue_after=NO_VIEW_RETRY)  # deleted by hand: made again once it is gone
        # independent writes (hub, member) go together: the time to Applied is the sum of the writes in sequence
        current, owner = await _together(_with_finalizer(view, work), self._applied_work(member, work, applied))
        outcomes = [await self._apply(member, works, current, owner, i, m) for i, m in enumerate(_manifests(current))]
        kept, failed = await self._remove_stale(member, works, current, owner, outcomes)
        await _together(self._record_applied(member, owner, outcomes, kept),
                        self._write_status(member, view, current, owner, outcomes))
        return Result(requeue=True) if failed or any(o.error for o in outcomes) else None

    # ------------------------------------------------------------------ applying
    def discovery(self, member: Cluster) -> Discovery:
        known = self._discovery.get(member.name)
        if known is None or known[0] is not member:  # the member was engaged again: its client may differ
            known = self._discovery[member.name] = (member, Discovery(member.client))
        return known[1]

    async def _applied_work(self, member: Cluster, work: Obj, applied: Obj | None) -> Obj:
        """The Work's AppliedWork, created if it has none."""
        if applied is not None:
            return applied
        meta = objects.meta(work)
        body = {"apiVersion": APPLIED_WORKS.api_version, "kind": APPLIED_WORKS.kind, "metadata": {"name": meta["name"]},
                "spec": {"workName": meta["name"], "workNamespace": meta["namespace"]}}
        created = await member.client.create(APPLIED_WORKS, body, field_manager=FIELD_MANAGER)
        await member.cache(APPLIED_WORKS).seen(created)
        return created

    async def _apply(self, member: Cluster, works: Cache, work: Obj, applied: Obj, ordinal: int, manifest: Any
                     ) -> Outcome:
        try:
            target = parse(ordinal, manifest)
        except ManifestError as exc:
            return Outcome(identifier(ordinal), error=str(exc))
        api_version = f"{target.group}/{target.version}" if target.group else target.version
        try:
            resource = await self.discovery(member).resource(api_version, target.kind)
        except (ApiError, ConnectionFailed) as exc:
            return Outcome(identifier(ordinal, target), error=f"discovery of {api_version} failed: {exc}")
        if resource is None:
            return Outcome(identifier(ordinal, target), error=f"the cluster serves no kind {target.kind} in "
                           f"{api_version} (a CRD not installed yet is found on a later pass)")
        ident = identifier(ordinal, target, resource)
        meta = objects.meta(work)
        want = desired(manifest, target, resource, (meta["namespace"], meta["name"]), applied)
        cache = await self.applied_objects.cache(member, resource)
        key = (str(want["metadata"].get("namespace") or ""), target.name)
        live, error = cache.get(key), None
        holder = _holder(works, live, (meta["namespace"], meta["name"]))
        if holder is not None:  # another Work of this member applied it first: it is not applied again over it
            if not objects.contains(live, _unstamped(want, applied)):
                error = (f"{target.kind} {'/'.join(p for p in key if p)} is applied by Work {'/'.join(holder)} with "
                         f"other contents; one of the two Works has to stop naming it (or name it alike)")
        elif live is None or not objects.contains(live, want):  # nothing drifted: no apply
            try:
                live = await member.client.apply(resource, want, FIELD_MANAGER, force=True)
            except ApiError as exc:
                error = exc.message
            except ConnectionFailed as exc:
                error = str(exc)
        rules = [rule for config in objects.spec(work).get("manifestConfigs") or []
                 if isinstance(config, dict) and same_object(ident, config.get("resourceIdentifier") or {})
                 for rule in config.get("feedbackRules") or [] if isinstance(rule, dict)]
        values, problems = feedback(rules, target.group, target.kind, live) if rules else ([], [])
        return Outcome(ident, live, error, values, problems, bool(rules))

    # ------------------------------------------------------------------ what the Work no longer names
    async def _remove_stale(self, member: Cluster, works: Cache, work: Obj, applied: Obj, outcomes: list[Outcome]
                            ) -> tuple[list[Obj], bool]:
        """Deletes (or, by the delete option's rules, releases) what the AppliedWork tracks and no manifest names
        any more; returns the entries still tracked without a live object this pass (those a failing manifest may
        still name, and those whose removal failed) and whether a removal failed (the pass is tried again)."""
        kept, failed = [], False
        for entry in _applied_resources(applied):
            if any(same_object(entry, o.identifier) for o in outcomes if o.live is not None):
                continue
            if any(names(o.identifier, entry) for o in outcomes):
                kept.append(entry)
                continue
            try:
                await self._remove(member, works, work, applied, entry)
            except (ApiError, ConnectionFailed) as exc:
                log.warning("removing an object the Work no longer names failed work=%s entry=%s: %s",
                            objects.meta(work).get("name"), entry, exc)
                kept.append(entry)
                failed = True
        return kept, failed

    async def _remove(self, member: Cluster, works: Cache, work: Obj, applied: Obj, entry: Obj) -> None:
        """What this Work no longer names goes, unless another Work of the member holds it (then it is only no longer
        tracked here) or still names it (then it is handed over to that Work, which applies it on its next pass)."""
        meta = objects.meta(work)
        mine = (meta["namespace"], meta["name"])
        resource, namespace, name = _entry_resource(entry), str(entry.get("namespace") or ""), str(entry["name"])
        cache = self.applied_objects.loaded(member, resource)
        try:  # a kind no longer served (its CRD gone) has nothing left to remove either
            live = cache.get((namespace, name)) if cache is not None else \
                await member.client.get(resource, name, namespace or None)
        except NotFound:
            return
        if _holder(works, live, mine) is not None:
            return
        heir = _naming(works, entry, mine)
        if heir is not None:
            await _release(member, entry, applied, to=heir)
        elif _orphaned(work, entry):
            await _release(member, entry, applied)
        else:
            await _delete_entry(member, entry)

    async def _record_applied(self, member: Cluster, applied: Obj, outcomes: list[Outcome], kept: list[Obj]) -> None:
        entries = [{**o.identifier, "uid": objects.meta(o.live)["uid"]} for o in outcomes
                   if o.live is not None and objects.meta(o.live).get("uid")]
        entries += kept
        if _applied_resources(applied) == entries:
            return
        out = await member.client.patch(APPLIED_WORKS, objects.meta(applied)["name"],
                                        {"status": {"appliedResources": entries}}, subresource="status",
                                        field_manager=FIELD_MANAGER)
        await member.cache(APPLIED_WORKS).seen(out)

    # ------------------------------------------------------------------ deletion
    async def _finalize(self, member: Cluster, view: HubView, works: Cache, work: Obj, applied: Obj | None) -> None:
        """The Work is being deleted: what it applied is deleted (or released, by its delete option), then its
        AppliedWork, then the finalizer goes."""
        finalizers = objects.meta(work).get("finalizers") or []
        if WORK_CLEANUP_FINALIZER not in finalizers:
            return
        if applied is not None:
            for entry in _applied_resources(applied):
                await self._remove(member, works, work, applied, entry)
            await _delete_object(member, APPLIED_WORKS, member.cache(APPLIED_WORKS), applied)
        await _patch_meta(view.cluster, view.namespace, work,
                          {"finalizers": [f for f in finalizers if f != WORK_CLEANUP_FINALIZER]})

    # ------------------------------------------------------------------ status
    async def _write_status(self, member: Cluster, view: HubView, work: Obj, applied: Obj,
                            outcomes: list[Outcome]) -> None:
        now = now_rfc3339()
        status = objects.status(work)
        before = {int((m.get("identifier") or {}).get("ordinal", -1)): m
                  for m in status.get("manifestConditions") or [] if isinstance(m, dict)}
        manifest_entries, per_manifest = [], []
        for outcome in outcomes:
            previous = before.get(outcome.identifier["ordinal"]) or {}
            conditions = _with_times(previous.get("conditions"), manifest_conditions(outcome), now)
            per_manifest.append(conditions)
            entry: Obj = {"identifier": outcome.identifier, "conditions": conditions}
            if outcome.has_feedback_rules:
                entry["statusFeedback"] = {"values": outcome.feedback}
            manifest_entries.append(entry)
        generation = objects.meta(work).get("generation")
        conditions = _with_times(status.get("conditions"), work_conditions(outcomes, per_manifest, generation), now)
        if status.get("conditions") == conditions and status.get("manifestConditions") == manifest_entries:
            return
        meta = objects.meta(work)
        out = await view.cluster.client.patch(
            WORKS, meta["name"], {"status": {"conditions": conditions, "manifestConditions": manifest_entries}},
            namespace=meta["namespace"], subresource="status", field_manager=FIELD_MANAGER)
        await view.cluster.cache(WORKS, view.namespace).seen(out)
        for outcome, conds in zip(outcomes, per_manifest, strict=True):
            was = objects.condition((before.get(outcome.identifier["ordinal"]) or {}).get("conditions"), APPLIED)
            now_applied = objects.condition(conds, APPLIED) or {}
            if now_applied.get("status") == "False" and (was is None or was.get("message") != now_applied["message"]):
                await record_event(member.client, APPLIED_WORKS, applied, "Warning", "ManifestApplyFailed",
                                   f"Work {meta['namespace']}/{meta['name']}, {outcome.label}: {outcome.error}",
                                   EVENT_SOURCE, namespace=EVENT_NAMESPACE)


def _manifests(work: Obj) -> list[Any]:
    manifests = (objects.spec(work).get("workload") or {}).get("manifests")
    return manifests if isinstance(manifests, list) else []


def _applied_resources(applied: Obj) -> list[Obj]:
    return [r for r in objects.status(applied).get("appliedResources") or [] if isinstance(r, dict)]


def _with_times(current: Any, wanted: list[Obj], now: str) -> list[Obj]:
    """`wanted` with each condition's transition time kept from `current` while its status holds."""
    out = [c for c in current or [] if isinstance(c, dict) and c.get("type") in {w["type"] for w in wanted}]
    for condition in wanted:
        out = set_condition(out, condition, now)
    order = [w["type"] for w in wanted]
    return sorted(out, key=lambda c: order.index(c["type"]))


def _orphaned(work: Obj, entry: Obj) -> bool:
    """Whether the Work's delete option keeps this object when the Work (or its manifest) goes."""
    option = objects.spec(work).get("deleteOption") or {}
    policy = option.get("propagationPolicy") or "Foreground"
    if policy == "Orphan":
        return True
    if policy == "SelectivelyOrphan":
        rules = (option.get("selectivelyOrphans") or {}).get("orphaningRules") or []
        return any(isinstance(r, dict) and same_object(entry, r) for r in rules)
    return False


def _entry_resource(entry: Obj) -> Resource:
    return Resource(str(entry.get("group") or ""), str(entry.get("version") or ""), str(entry["resource"]),
                    str(entry.get("kind") or ""), namespaced=bool(entry.get("namespace")))


async def _delete_entry(member: Cluster, entry: Obj) -> None:
    """Deletes an applied object if it is still the one applied (its uid). One the member refuses to delete (the
    `default` namespace) is left, said once in the log: retrying would hold the Work's deletion forever."""
    preconditions = {"uid": entry["uid"]} if entry.get("uid") else None
    try:
        await member.client.delete(_entry_resource(entry), str(entry["name"]), entry.get("namespace") or None,
                                   propagation_policy="Background", preconditions=preconditions)
    except (NotFound, Conflict):  # gone, or another object by that name now: not ours
        pass
    except Forbidden as exc:
        log.warning("the member refuses to delete an applied object, left in place cluster=%s entry=%s: %s",
                    member.name, entry, exc.message)


def _holder(works: Cache, live: Obj | None, mine: tuple[str, str]) -> tuple[str, str] | None:
    """The other Work of this member that applied `live` and still exists (not being deleted): two Works naming one
    object would otherwise apply it over each other without end."""
    holder = work_of(live) if live is not None else None
    if holder is None or holder == mine:
        return None
    other = works.get(holder)
    return holder if other is not None and not objects.meta(other).get("deletionTimestamp") else None


def _unstamped(want: Obj, applied: Obj) -> Obj:
    """The object to apply without what marks it as this Work's: what another Work's copy must contain alike."""
    meta = dict(want["metadata"])
    meta["labels"] = {k: v for k, v in meta["labels"].items() if k != WORK_LABEL}
    meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != WORK_ANNOTATION}
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("uid") != objects.meta(applied).get("uid")]
    if owners:
        meta["ownerReferences"] = owners
    else:
        meta.pop("ownerReferences", None)
    return {**want, "metadata": meta}


def _naming(works: Cache, entry: Obj, mine: tuple[str, str]) -> tuple[str, str] | None:
    """Another Work of this member (not being deleted) that names the object of `entry` too."""
    for other in works.list():
        meta = objects.meta(other)
        key = (meta["namespace"], meta["name"])
        if key == mine or meta.get("deletionTimestamp"):
            continue
        for ordinal, manifest in enumerate(_manifests(other)):
            try:
                target = parse(ordinal, manifest)
            except ManifestError:
                continue
            namespace = (target.namespace or "default") if entry.get("namespace") else ""
            if (target.group, target.kind, target.name, namespace) == (
                    entry.get("group") or "", entry.get("kind"), entry.get("name"), entry.get("namespace") or ""):
                return key
    return None


async def _release(member: Cluster, entry: Obj, applied: Obj, to: tuple[str, str] | None = None) -> None:
    """An orphaned object stays, without the AppliedWork's ownerReference and the Work's label and annotation; one
    handed over to another Work (`to`) gets that Work's label and annotation, and its event queues that Work."""
    resource, namespace = _entry_resource(entry), entry.get("namespace") or None
    try:
        live = await member.client.get(resource, str(entry["name"]), namespace)
    except NotFound:
        return
    meta = objects.meta(live)
    if entry.get("uid") and meta.get("uid") != entry["uid"]:
        return
    owner_uid = objects.meta(applied).get("uid")
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("uid") != owner_uid]
    patch: Obj = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                               "labels": {WORK_LABEL: work_label(*to) if to else None},
                               "annotations": {WORK_ANNOTATION: "/".join(to) if to else None},
                               "ownerReferences": owners or None}}
    await member.client.patch(resource, str(entry["name"]), patch, namespace=namespace)


async def _delete_object(member: Cluster, resource: Resource, cache: Cache, obj: Obj) -> None:
    meta = objects.meta(obj)
    with contextlib.suppress(NotFound, Conflict):
        await member.client.delete(resource, meta["name"], meta.get("namespace") or None,
                                   preconditions={"uid": meta["uid"]})
    await cache.wait_for((meta.get("namespace") or "", meta["name"]),
                         lambda now: now is None or objects.meta(now).get("uid") != meta["uid"], SEEN_TIMEOUT)


async def _with_finalizer(view: HubView, work: Obj) -> Obj:
    finalizers = objects.meta(work).get("finalizers") or []
    if WORK_CLEANUP_FINALIZER in finalizers:
        return work
    return await _patch_meta(view.cluster, view.namespace, work, {"finalizers": [*finalizers, WORK_CLEANUP_FINALIZER]})


async def _together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both awaited at once, and both finished before the first failure is raised (no write left running)."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


async def _patch_meta(hub: Cluster, namespace: str, work: Obj, fields: Obj) -> Obj:
    """A merge patch of the Work's metadata, on the resourceVersion read (a 409 retries the pass)."""
    meta = objects.meta(work)
    out = await hub.client.patch(WORKS, meta["name"], {"metadata": {**fields, "resourceVersion":
                                                                    meta.get("resourceVersion")}},
                                 namespace=namespace, field_manager=FIELD_MANAGER)
    cache, written = hub.cache(WORKS, namespace), objects.meta(out)
    if written.get("deletionTimestamp") and not written.get("finalizers"):
        # its last finalizer went: the Work is gone, so no version of it reaches the cache, but its deletion does,
        # at once. The next pass of the key waits for that rather than act on the Work as it was (a patch: NotFound)
        def gone(now: Obj | None) -> bool:
            return now is None or objects.meta(now).get("uid") != written.get("uid")

        await cache.wait_for((namespace, str(written.get("name"))), gone, SEEN_TIMEOUT)
    else:
        await cache.seen(out)
    return out
