"""The objects Works applied on a member, watched per resource type as they are first applied: one label-selected
informer per (member, resource) (`clusterset.io/work` exists), whose every change queues the object's Work (from
its annotation). So a status change (ready replicas) or a drift reaches the Work at once, without polling."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable

from clusterset.api.resources import Resource
from clusterset.runtime import Cache, Cluster, Event, Informer
from clusterset.runtime.hubview import SYNC_TIMEOUT
from clusterset.work.manifests import WORK_LABEL, work_of

Enqueue = Callable[[str, tuple[str, str]], None]


class AppliedObjects:
    """Caches of the applied objects of each member, by resource type, started on first use. `enqueue(member,
    work)` is told of every change; it is set once the controller exists."""

    def __init__(self) -> None:
        self.enqueue: Enqueue | None = None
        self._watched: weakref.WeakKeyDictionary[Cluster, set[Resource]] = weakref.WeakKeyDictionary()

    async def cache(self, member: Cluster, resource: Resource) -> Cache:
        """The loaded cache of `resource`'s applied objects in `member` (its watch queues their Works)."""
        informer = member.informer(resource, label_selector=WORK_LABEL, on_demand=True)
        watched = self._watched.setdefault(member, set())
        if resource not in watched:
            watched.add(resource)
            informer.add_handler(self._handler(member.name))
        await _loaded(member, informer)
        return informer.cache

    def loaded(self, member: Cluster, resource: Resource) -> Cache | None:
        """The cache of `resource`'s applied objects in `member` if it has loaded; never starts or waits for one."""
        if resource not in self._watched.get(member, ()):
            return None
        cache = member.informer(resource, label_selector=WORK_LABEL, on_demand=True).cache
        return cache if cache.synced.is_set() else None

    def _handler(self, member: str) -> Callable[[Event], None]:
        def handle(event: Event) -> None:
            if self.enqueue is None:
                return
            for obj in (event.obj, event.old):
                work = work_of(obj) if obj is not None else None
                if work is not None:
                    self.enqueue(member, work)
        return handle


async def _loaded(member: Cluster, informer: Informer) -> None:
    """Waits for the informer's first list, but not for one that was stopped meanwhile (its member disengaged:
    the pass must end, not hold its key until a timeout)."""
    deadline = asyncio.get_running_loop().time() + SYNC_TIMEOUT
    while not informer.cache.synced.is_set():
        if not informer.running:
            raise RuntimeError(f"member {member.name} was disengaged while its {informer.resource} loaded")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"member {member.name}: {informer.resource} not loaded in {SYNC_TIMEOUT}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(informer.cache.synced.wait(), 0.1)
