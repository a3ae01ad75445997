"""ControllerRevisions: the pod template history of DaemonSets and StatefulSets (upstream
pkg/controller/history and the DaemonSet controller's constructHistory/cleanupHistory).

A revision is named `<owner>-<hash>` and labelled with the template's labels plus
`controller-revision-hash: <hash>` (so the owner's selector finds it, as `kubectl rollout history`
lists them); its `data` is the strategic merge patch that restores the owner's template,
`{"spec": {"template": {..., "$patch": "replace"}}}`, which `kubectl rollout undo` sends back; its
`revision` is one above the owner's other revisions. The hash is the template's (with
status.collisionCount), as the DaemonSet controller computes it. A template seen before (after a
rollback) keeps its revision object, renumbered as the newest. Old revisions beyond
`spec.revisionHistoryLimit` are deleted oldest first, except those live pods still run.
"""

from __future__ import annotations

from typing import Any

from clusterset.api.objects import annotations_of, labels, meta, spec, status
from clusterset.apiserver.controllers.manager import ClusterAPI
from clusterset.apiserver.controllers.workloads.util import (
    CONTROLLER_REVISIONS,
    compact,
    deep_copy,
    int_or,
    owner_ref,
    template_hash,
)
from clusterset.apiserver.storage.store import Obj

HASH_LABEL = "controller-revision-hash"
PATCH_DIRECTIVE = "$patch"


def revision_number(revision: Obj) -> int:
    return int_or(revision.get("revision"), 0)


def restore_patch(owner: Obj) -> dict[str, Any]:
    """The revision data of the owner's current template (upstream's getPatch)."""
    template = deep_copy(spec(owner).get("template") or {})
    return {"spec": {"template": {**template, PATCH_DIRECTIVE: "replace"}}}


def _template_of(revision: Obj) -> Any:
    template = ((revision.get("data") or {}).get("spec") or {}).get("template")
    if isinstance(template, dict):
        template = {k: v for k, v in template.items() if k != PATCH_DIRECTIVE}
    return compact(template)


def new_revision(owner: Obj, hash_: str, number: int) -> Obj:
    """What upstream's snapshot creates; the owner's annotations (e.g. kubernetes.io/change-cause,
    which `kubectl rollout history` shows) are copied, as the DaemonSet controller does."""
    template_labels = ((spec(owner).get("template") or {}).get("metadata") or {}).get("labels") or {}
    revision_meta: dict[str, Any] = {
        "name": f"{meta(owner)['name']}-{hash_}",
        "namespace": meta(owner)["namespace"],
        "labels": {**template_labels, HASH_LABEL: hash_},
        "ownerReferences": [owner_ref(owner)],
    }
    if annotations_of(owner):
        revision_meta["annotations"] = dict(annotations_of(owner))
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": revision_meta,
            "data": restore_patch(owner), "revision": number}


async def record(api: ClusterAPI, resource: str, owner: Obj, revisions: list[Obj]) -> tuple[Obj, list[Obj]] | None:
    """The owner's revision of its current template (found, or created as the newest) and its other
    revisions. None when another template holds the name: a hash collision, for which the owner's
    status.collisionCount (part of the hash) goes up by one and the caller tries again."""
    wanted = compact(spec(owner).get("template") or {})
    matching = sorted((r for r in revisions if _template_of(r) == wanted), key=revision_number)
    current = matching[-1] if matching else None
    old = [r for r in revisions if r is not current]
    newest = max((revision_number(r) for r in old), default=0) + 1
    if current is not None:
        if revision_number(current) < newest:
            renumbered = deep_copy(current)
            renumbered["revision"] = newest
            current = await api.update(CONTROLLER_REVISIONS, renumbered) or current
        return current, old
    collisions = int_or(status(owner).get("collisionCount"), 0)
    hash_ = template_hash(spec(owner).get("template") or {}, collisions or None)
    created = await api.create(CONTROLLER_REVISIONS, new_revision(owner, hash_, newest))
    if created is not None:
        return created, old
    taken = api.get(CONTROLLER_REVISIONS, str(meta(owner)["namespace"]), f"{meta(owner)['name']}-{hash_}")
    if taken is not None and _template_of(taken) == wanted and \
            any(ref.get("uid") == meta(owner)["uid"] for ref in meta(taken).get("ownerReferences") or []):
        return taken, old
    bumped = deep_copy(owner)
    bumped.setdefault("status", {})["collisionCount"] = collisions + 1
    await api.update(resource, bumped, subresource="status")
    return None


async def truncate(api: ClusterAPI, owner: Obj, old: list[Obj], live_hashes: set[str]) -> None:
    """Deletes the oldest of `old` beyond spec.revisionHistoryLimit (default 10) that no live pod runs."""
    excess = len(old) - max(0, int_or(spec(owner).get("revisionHistoryLimit"), 10))
    for revision in sorted(old, key=revision_number):
        if excess <= 0:
            return
        if labels(revision).get(HASH_LABEL) in live_hashes or meta(revision)["name"] in live_hashes:
            continue
        await api.delete(CONTROLLER_REVISIONS, str(meta(revision)["namespace"]), str(meta(revision)["name"]),
                         preconditions={"uid": meta(revision)["uid"]})
        excess -= 1
