"""Writes a reconciler makes and then waits to see in its cache (read-your-writes), shared by the feature packages."""

from __future__ import annotations

import contextlib
from typing import Any

from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.client.errors import NotFound
from clusterset.runtime.cache import SEEN_TIMEOUT, Cache, key_of


async def delete(client: ClusterClient, resource: Resource, cache: Cache, obj: dict[str, Any]) -> None:
    """Deletes `obj` if it is still the object the cache saw (its uid: never a successor of the same name); gone
    already is fine. Waits until the cache shows it gone or going (a finalizer may hold it while someone cleans up),
    so the next reconcile does not delete it again."""
    meta = obj["metadata"]
    with contextlib.suppress(NotFound):
        await client.delete(resource, meta["name"], meta.get("namespace"), preconditions={"uid": meta["uid"]})

    def going(now: dict[str, Any] | None) -> bool:
        have = now["metadata"] if now is not None else {}
        return now is None or have.get("uid") != meta["uid"] or bool(have.get("deletionTimestamp"))

    await cache.wait_for(key_of(obj), going, SEEN_TIMEOUT)
