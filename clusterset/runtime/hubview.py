"""What a member's controllers (MCS, Work) see of the hub: the hub engaged with that member's agent credentials,
next to the member itself, so that hub events map to the member's keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clusterset.runtime.cluster import Cluster

VIEW_SUFFIX = "@hub"


def view_name(cluster_id: str) -> str:
    """The name a member's view of the hub is engaged under, next to the member itself."""
    return cluster_id + VIEW_SUFFIX


def member_of(view: str) -> str | None:
    return view[: -len(VIEW_SUFFIX)] if view.endswith(VIEW_SUFFIX) else None


@dataclass(frozen=True)
class HubView:
    """A member's hub: `cluster` (engaged with the agent's token), its own namespace there (`namespace`, where it
    writes its records and reads its Works) and the ClusterSet's (`clusterset`, where it reads the merged services)."""

    cluster: Cluster
    namespace: str
    clusterset: str


HubViews = Callable[[str], HubView | None]
"""A member's id → its view of the hub (None while it has none engaged)."""


SYNC_TIMEOUT = 30.0
NO_VIEW_RETRY = 1.0  # seconds before a member's key is tried again while its view of the hub is not engaged


async def synced(*clusters: Cluster) -> None:
    """Waits until the caches a reconcile reads have loaded: a cache still loading would look like nothing
    exists, and a reconciler would create what is there already."""
    for cluster in clusters:
        if not cluster.synced:
            await cluster.wait_synced(SYNC_TIMEOUT)


async def ready_view(views: HubViews, member: Cluster) -> HubView | None:
    """A member's view of the hub, once the caches of both have loaded; None while it has no view engaged (its
    reconcilers try again after NO_VIEW_RETRY)."""
    view = views(member.name)
    if view is not None:
        await synced(member, view.cluster)
    return view
