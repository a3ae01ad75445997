"""Writing only differences, then waiting for the cache to show the write (read-your-writes), so the next
reconcile of a WorkSet starts from what it wrote. A cache behind someone else's write makes an update a 409,
which the controller retries once its watch has caught up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from clusterset.api import objects
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.client.errors import NotFound
from clusterset.runtime import Cache
from clusterset.runtime.cache import SEEN_TIMEOUT, key_of

Obj = dict[str, Any]
T = TypeVar("T")
FIELD_MANAGER = "clusterset-workset"
CONCURRENCY = 16  # writes of one reconcile in flight at once: a WorkSet to 100 clusters is 100 Works


async def each(items: Iterable[T], action: Callable[[T], Awaitable[None]], limit: int = CONCURRENCY) -> None:
    """`action` on every item, at most `limit` at once; all run to the end, then the first failure is raised."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        async with gate:
            await action(item)

    results = await asyncio.gather(*(one(i) for i in items), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def ensure(client: ClusterClient, resource: Resource, cache: Cache, want: Obj, have: Obj | None) -> Obj:
    """Creates `want`, or updates `have` to it when its spec, labels or annotations differ (fields the server
    defaulted in `have` are not differences); returns the object as it now is."""
    want = {"apiVersion": resource.api_version, "kind": resource.kind, **want}
    if have is None:
        out = await client.create(resource, want, field_manager=FIELD_MANAGER)
    else:
        meta, want_meta = objects.meta(have), want["metadata"]
        if objects.contains(have.get("spec"), want["spec"]) and objects.contains(meta, {
                "labels": want_meta.get("labels") or {}, "annotations": want_meta.get("annotations") or {}}):
            return have
        body = {**have, "spec": want["spec"], "metadata": {
            **meta, "labels": {**(meta.get("labels") or {}), **(want_meta.get("labels") or {})},
            "annotations": {**(meta.get("annotations") or {}), **(want_meta.get("annotations") or {})}}}
        out = await client.update(resource, body, field_manager=FIELD_MANAGER)
    await cache.seen(out)
    return out


async def update(client: ClusterClient, resource: Resource, cache: Cache, obj: Obj,
                 subresource: str | None = None) -> Obj:
    """Writes `obj` (carrying the resourceVersion it was read at) and waits for the cache to show it."""
    out = await client.update(resource, obj, subresource=subresource, field_manager=FIELD_MANAGER)
    await cache.seen(out)
    return out


async def drop_finalizer(client: ClusterClient, resource: Resource, cache: Cache, obj: Obj, finalizer: str) -> None:
    """Writes `obj` (without `finalizer`), then waits until the cache shows it gone or without the finalizer, so
    that a reconcile right after does not try again on the old copy."""
    with contextlib.suppress(NotFound):
        await client.update(resource, obj, field_manager=FIELD_MANAGER)
    await cache.wait_for(key_of(obj), lambda now: now is None or finalizer not in (
        objects.meta(now).get("finalizers") or []), SEEN_TIMEOUT)
