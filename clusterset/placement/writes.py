"""The scheduler's writes: only differences, each followed by waiting for the cache to show it (read-your-writes),
so that the next reconcile of a Placement starts from its own last write. A cache behind someone else's write makes
an update a 409, which the controller retries once its watch has caught up."""

from __future__ import annotations

import logging
from typing import Any

from clusterset.api.placement import PLACEMENTS
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.runtime import Cache

log = logging.getLogger(__name__)

Obj = dict[str, Any]
FIELD_MANAGER = "clusterset-scheduler"
EVENT_SOURCE = "clusterset-scheduler"


async def create_or_update(client: ClusterClient, resource: Resource, cache: Cache, have: Obj | None,
                           want: Obj) -> None:
    """Creates `want`, or updates `have` (the cached object, with its resourceVersion) to `want`'s fields."""
    if have is None:
        out = await client.create(resource, want, field_manager=FIELD_MANAGER)
    else:
        labels = {**(have["metadata"].get("labels") or {}), **(want["metadata"].get("labels") or {})}
        meta = {**have["metadata"], "labels": labels, "ownerReferences": want["metadata"]["ownerReferences"]}
        out = await client.update(resource, {**have, **want, "metadata": meta}, field_manager=FIELD_MANAGER)
    await cache.seen(out)


async def update_status(client: ClusterClient, cache: Cache, placement: Obj, status: Obj) -> None:
    out = await client.update(PLACEMENTS, {**placement, "status": status}, subresource="status",
                              field_manager=FIELD_MANAGER)
    await cache.seen(out)
