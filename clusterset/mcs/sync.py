"""Writing only differences: the MCS reconcilers compare what a cache holds with what they want, and write
what differs (create, update with the cached resourceVersion, delete), then wait for the cache to see their
own write, so that the next reconcile of the key starts from it. A cache behind someone else's write makes an
update a 409, which the controller retries once the watch has caught up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clusterset.api.mcs import FIELD_MANAGER
from clusterset.api.objects import contains
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.runtime import Cache
from clusterset.runtime.cache import key_of
from clusterset.runtime.writes import delete

Obj = dict[str, Any]
META_FIELDS = ("labels", "annotations", "ownerReferences")


def differs(have: Obj, want: Obj, *, defaulted: Iterable[str] = ()) -> bool:
    """Whether `want`'s fields differ from `have`'s. Fields named in `defaulted` may hold more than `want` says
    (a Service's spec, which the server completes); the others must be equal."""
    loose = set(defaulted)
    have_meta, want_meta = have.get("metadata") or {}, want.get("metadata") or {}
    if any(f in want_meta and (have_meta.get(f) or None) != (want_meta[f] or None) for f in META_FIELDS):
        return True
    for field, value in want.items():
        if field in ("metadata", "apiVersion", "kind"):
            continue
        if not (contains(have.get(field), value) if field in loose else have.get(field) == value):
            return True
    return False


async def ensure(client: ClusterClient, resource: Resource, cache: Cache, want: Obj, *,
                 defaulted: Iterable[str] = ()) -> Obj:
    """Creates `want`, or updates the cached object to it when they differ; returns the object as it now is."""
    want = {"apiVersion": resource.api_version, "kind": resource.kind, **want}
    have = cache.get(key_of(want))
    if have is None:
        out = await client.create(resource, want, field_manager=FIELD_MANAGER)
    else:
        loose = set(defaulted)
        if not differs(have, want, defaulted=loose):
            return have
        meta = {**have["metadata"], **{f: want["metadata"][f] for f in META_FIELDS if f in want["metadata"]}}
        body = {**have, "metadata": meta}
        for field, value in want.items():
            if field != "metadata":
                old = have.get(field)
                body[field] = {**old, **value} if field in loose and isinstance(old, dict) and isinstance(value, dict) \
                    else value
        out = await client.update(resource, body, field_manager=FIELD_MANAGER)
    await cache.seen(out)
    return out


async def update_status(client: ClusterClient, resource: Resource, cache: Cache, obj: Obj, status: Obj) -> Obj:
    """Writes `status` through the status subresource (unless the object has it already)."""
    if obj.get("status") == status:
        return obj
    out = await client.update(resource, {**obj, "status": status}, subresource="status", field_manager=FIELD_MANAGER)
    await cache.seen(out)
    return out


async def converge(client: ClusterClient, resource: Resource, cache: Cache, have: Iterable[Obj],
                   want: Iterable[Obj], *, defaulted: Iterable[str] = ()) -> bool:
    """Makes a set of objects (by name, `have` read from `cache`) `want`: creates and updates what differs,
    deletes the others. Whether it wrote anything."""
    wanted = {o["metadata"]["name"]: o for o in want}
    loose = tuple(defaulted)
    wrote = False
    for obj in wanted.values():
        have_it = cache.get(key_of(obj))
        wrote |= await ensure(client, resource, cache, obj, defaulted=loose) is not have_it
    for obj in have:
        if obj["metadata"]["name"] not in wanted:
            await delete(client, resource, cache, obj)
            wrote = True
    return wrote
