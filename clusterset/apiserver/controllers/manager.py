"""In-process controllers for embedded clusters (what kube-controller-manager, the scheduler and
kubelets do in a real cluster), driven by store events.

Design: a controller declares the resources it watches and maps each event to the keys to
reconcile. Events arrive through synchronous store listeners, so an idle cluster costs no task
and no CPU. One work queue per controller serves every cluster: keys are coalesced while
queued (a burst of updates to one object costs one reconcile), a key is never reconciled twice
at once, and a reconcile may ask to run again after a delay (used for timed transitions such
as readiness delays and grace periods) or fail and be retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.rest import Ctx
from clusterset.apiserver.storage.store import Entry, Event, Obj

if TYPE_CHECKING:
    from clusterset.apiserver.registry.cluster import Cluster
    from clusterset.apiserver.server import Apiserver

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of the object the controller reconciles


class Controller(Protocol):
    """One control loop. `watches` are storage keys ("/pods", "apps/deployments")."""

    name: str
    watches: tuple[str, ...]

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        """The keys an event makes stale (usually the object itself, or its owner)."""

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        """Makes the world match the desired state of `key`; returns seconds to requeue after, or None."""


@dataclass
class ClusterAPI:
    """What a reconcile may touch: one cluster's store (reads) and its REST API (writes)."""

    server: Apiserver
    cluster: Cluster
    manager: str

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        entry = self.cluster.store.get(resource, namespace, name)
        return entry.obj if entry else None

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return [e.obj for e in self.cluster.store.entries(resource, namespace)]

    def entries(self, resource: str, namespace: str | None = None) -> list[Entry]:
        return self.cluster.store.entries(resource, namespace)

    def ctx(self, resource: str, namespace: str | None) -> Ctx:
        served = next((s for s in self.cluster.registry.all() if s.key == resource), None)
        if served is None:
            raise KeyError(resource)
        return Ctx(self.cluster, served, namespace if served.rt.namespaced else None, manager=self.manager,
                   manager_explicit=True)

    async def create(self, resource: str, obj: Obj) -> Obj | None:
        """Creates `obj`; None if it already exists or its namespace is going away."""
        ctx = self.ctx(resource, obj.get("metadata", {}).get("namespace"))
        try:
            return await self.server.rest.create(ctx, obj)
        except StatusError as err:
            if err.code in (403, 404, 409):
                return None
            raise

    async def update(self, resource: str, obj: Obj, subresource: str | None = None) -> Obj | None:
        """Writes `obj` (with its resourceVersion: optimistic); None on conflict or if it is gone."""
        meta = obj["metadata"]
        ctx = self.ctx(resource, meta.get("namespace"))
        try:
            return await self.server.rest.update(ctx, meta["name"], obj, subresource)
        except StatusError as err:
            if err.code in (404, 409):
                return None
            raise

    async def delete(self, resource: str, namespace: str, name: str, **options: Any) -> None:
        ctx = self.ctx(resource, namespace)
        try:
            await self.server.rest.delete(ctx, name, options)
        except StatusError as err:
            if err.code not in (404, 409):
                raise


@dataclass
class _Queue:
    controller: Controller
    pending: set[tuple[str, Key]] = field(default_factory=set)
    running: set[tuple[str, Key]] = field(default_factory=set)
    dirty: set[tuple[str, Key]] = field(default_factory=set)
    failures: dict[tuple[str, Key], int] = field(default_factory=dict)
    queue: asyncio.Queue[tuple[str, Key]] = field(default_factory=asyncio.Queue)
    reconciles: int = 0


class ControllerManager:
    """Runs controllers for every cluster that has them switched on."""

    def __init__(self, server: Apiserver, controllers: list[Controller], workers: int = 4) -> None:
        self.server = server
        self.controllers = controllers
        self._queues = {c.name: _Queue(c) for c in controllers}
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._clusters: set[str] = set()

    def start(self) -> None:
        for q in self._queues.values():
            for _ in range(self._workers):
                self._tasks.append(asyncio.get_running_loop().create_task(self._work(q)))

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def attach(self, cluster: Cluster) -> None:
        """Starts controlling a cluster: listen to its events, and reconcile what exists (a relist)."""
        if cluster.name in self._clusters:
            return
        self._clusters.add(cluster.name)
        for q in self._queues.values():
            for resource in q.controller.watches:
                cluster.store.listeners.setdefault(resource, []).append(self._listener(q))
            for resource in q.controller.watches:
                for entry in cluster.store.entries(resource):
                    event = Event(int(entry.obj["metadata"]["resourceVersion"]), "ADDED", resource, entry)
                    for key in q.controller.keys_for(cluster, event):
                        self._enqueue(q, cluster.name, key)

    def detach(self, cluster: Cluster) -> None:
        self._clusters.discard(cluster.name)
        cluster.store.listeners.clear()

    def enqueue(self, controller: str, cluster: str, key: Key, after: float = 0.0) -> None:
        q = self._queues[controller]
        if after > 0:
            self._later(q, cluster, key, after)
        else:
            self._enqueue(q, cluster, key)

    def reconcile_count(self, controller: str) -> int:
        return self._queues[controller].reconciles

    def _listener(self, q: _Queue) -> Any:
        def on_event(cluster_name: str, event: Event) -> None:
            cluster = self.server.clusters.get(cluster_name)
            if cluster is None:
                return
            for key in q.controller.keys_for(cluster, event):
                self._enqueue(q, cluster_name, key)

        return on_event

    def _enqueue(self, q: _Queue, cluster: str, key: Key) -> None:
        item = (cluster, key)
        if item in q.running:
            q.dirty.add(item)  # reconcile again once the running one finishes
        elif item not in q.pending:
            q.pending.add(item)
            q.queue.put_nowait(item)

    def _later(self, q: _Queue, cluster: str, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self._enqueue(q, cluster, key)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _work(self, q: _Queue) -> None:
        while True:
            item = await q.queue.get()
            q.pending.discard(item)
            cluster_name, key = item
            cluster = self.server.clusters.get(cluster_name)
            if cluster is None or cluster_name not in self._clusters:
                continue
            q.running.add(item)
            api = ClusterAPI(self.server, cluster, q.controller.name)
            try:
                q.reconciles += 1
                again = await q.controller.reconcile(api, key)
                q.failures.pop(item, None)
                if again is not None:
                    self._later(q, cluster_name, key, again)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures = q.failures[item] = q.failures.get(item, 0) + 1
                delay = min(30.0, 0.05 * 2 ** min(failures, 10))
                log.exception("%s: reconcile %s/%s failed (retry in %.2fs)", q.controller.name, cluster_name, key,
                              delay)
                self._later(q, cluster_name, key, delay)
            finally:
                q.running.discard(item)
                if item in q.dirty:
                    q.dirty.discard(item)
                    self._enqueue(q, cluster_name, key)
