"""The one way the embedded server reacts to writes: controllers, as kube-controller-manager runs them.

Design: a controller declares the resources it watches (storage keys such as "/pods" and
"apps/deployments", or "*" for every resource) and maps each event to the keys to reconcile. Events
arrive through synchronous store subscriptions, so an idle cluster costs no task and no CPU. One work
queue per controller serves every cluster: keys are coalesced while queued (a burst of updates to one
object costs one reconcile), a key is never reconciled twice at once, and a reconcile may ask to run
again after a delay (timed transitions such as readiness delays and grace periods) or fail and be
retried with backoff.

Two sets of controllers: the core ones (namespaces, garbage collection, CRDs, ClusterRole
aggregation: what any kube-apiserver with its controller manager does) run for every cluster; the
others (nodes, scheduler, kubelets, workloads, endpoints) only for clusters whose `controllers`
setting is on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.store import ANY_RESOURCE, Entry, Event, Obj

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of the object the controller reconciles
Item = tuple[str, Key]  # (cluster, key)


class Controller(Protocol):
    """One control loop. `watches` are storage keys ("/pods", "apps/deployments") or "*" (every resource)."""

    name: str
    watches: tuple[str, ...]

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        """The keys an event makes stale (usually the object itself, or its owner)."""

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        """Makes the world match the desired state of `key`; returns seconds to requeue after, or None."""


@dataclass
class ClusterAPI:
    """What a reconcile may touch: one cluster's store (reads) and the REST pipeline (writes)."""

    rest: Rest
    cluster: Cluster
    manager: str

    def as_manager(self, manager: str) -> ClusterAPI:
        """The same cluster, writing under another field manager."""
        return dataclasses.replace(self, manager=manager)

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        entry = self.cluster.store.get(resource, namespace, name)
        return entry.obj if entry else None

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return [e.obj for e in self.cluster.store.entries(resource, namespace)]

    def entries(self, resource: str, namespace: str | None = None) -> list[Entry]:
        return self.cluster.store.entries(resource, namespace)

    def ctx(self, resource: str, namespace: str | None) -> Ctx:
        served = self.cluster.registry.by_key(resource)
        if served is None:
            raise KeyError(resource)
        return Ctx(self.cluster, served, namespace if served.rt.namespaced else None, manager=self.manager,
                   manager_explicit=True)

    async def create(self, resource: str, obj: Obj) -> Obj | None:
        """Creates `obj`; None if it already exists or its namespace is going away."""
        ctx = self.ctx(resource, obj.get("metadata", {}).get("namespace"))
        try:
            return await self.rest.create(ctx, obj)
        except StatusError as err:
            if err.code in (403, 404, 409):
                return None
            raise

    async def update(self, resource: str, obj: Obj, subresource: str | None = None) -> Obj | None:
        """Writes `obj` (with its resourceVersion: optimistic); None on conflict or if it is gone."""
        meta = obj["metadata"]
        ctx = self.ctx(resource, meta.get("namespace"))
        try:
            return await self.rest.update(ctx, meta["name"], obj, subresource)
        except StatusError as err:
            if err.code in (404, 409):
                return None
            raise

    async def delete(self, resource: str, namespace: str, name: str, **options: Any) -> None:
        ctx = self.ctx(resource, namespace)
        try:
            await self.rest.delete(ctx, name, options)
        except StatusError as err:
            if err.code not in (404, 409):
                raise


@dataclass
class _Queue:
    controller: Controller
    pending: set[Item] = field(default_factory=set)
    running: set[Item] = field(default_factory=set)
    dirty: set[Item] = field(default_factory=set)
    failures: dict[Item, int] = field(default_factory=dict)
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    reconciles: int = 0


class ControllerManager:
    """Runs the core controllers for every cluster, the switchable ones for clusters that want them."""

    def __init__(self, clusters: Mapping[str, Cluster], rest: Rest, core: list[Controller],
                 switchable: list[Controller], workers: int = 4) -> None:
        self.clusters = clusters
        self.rest = rest
        self._core = [c.name for c in core]
        self._switchable = [c.name for c in switchable]
        self._queues = {c.name: _Queue(c) for c in [*core, *switchable]}
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._attached: dict[str, set[str]] = {}  # cluster → controllers attached
        self._unsubscribe: dict[str, list[Callable[[], None]]] = {}
        self._idle_waiters: list[asyncio.Future[None]] = []

    def start(self) -> None:
        """Starts the workers (once; `attach` starts them too, so clusters made before `start` are served)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        for q in self._queues.values():
            for _ in range(self._workers):
                self._tasks.append(loop.create_task(self._work(q)))

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def attach(self, cluster: Cluster, *, switchable: bool) -> None:
        """Starts controlling a cluster: the core controllers, and the switchable ones when asked. Each
        controller subscribes to the cluster's events and reconciles what exists (a relist)."""
        self.start()
        attached = self._attached.setdefault(cluster.name, set())
        names = [*self._core, *(self._switchable if switchable else [])]
        for q in [self._queues[n] for n in names if n not in attached]:
            attached.add(q.controller.name)
            for resource in q.controller.watches:
                self._unsubscribe.setdefault(cluster.name, []).append(
                    cluster.store.subscribe(resource, self._listener(q)))
            for resource in q.controller.watches:
                for key_resource in cluster.store.resources() if resource == ANY_RESOURCE else [resource]:
                    for entry in cluster.store.entries(key_resource):
                        event = Event(int(entry.obj["metadata"]["resourceVersion"]), "ADDED", key_resource, entry)
                        for key in q.controller.keys_for(cluster, event):
                            self._enqueue(q, cluster.name, key)

    def detach(self, cluster: Cluster) -> None:
        self._attached.pop(cluster.name, None)
        for unsubscribe in self._unsubscribe.pop(cluster.name, []):
            unsubscribe()
        self._wake_idle()

    def enqueue(self, controller: str, cluster: str, key: Key, after: float = 0.0) -> None:
        q = self._queues[controller]
        if after > 0:
            self._later(q, cluster, key, after)
        else:
            self._enqueue(q, cluster, key)

    def reconcile_count(self, controller: str) -> int:
        return self._queues[controller].reconciles

    async def wait_idle(self, cluster: str | None = None, *, timers: bool = False) -> None:
        """Returns once no key (of `cluster`, or of any) is queued or being reconciled; with `timers`, once no
        requeue is scheduled either. Every reconcile that ends wakes the waiters, which look again."""
        while not self._idle(cluster, timers):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def _idle(self, cluster: str | None, timers: bool) -> bool:
        if timers and self._timers:
            return False
        for q in self._queues.values():
            for items in (q.pending, q.running, q.dirty):
                if any(cluster is None or item[0] == cluster for item in items):
                    return False
        return True

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _listener(self, q: _Queue) -> Callable[[str, Event], None]:
        def on_event(cluster_name: str, event: Event) -> None:
            cluster = self.clusters.get(cluster_name)
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
            cluster = self.clusters.get(cluster_name)
            if cluster is None or q.controller.name not in self._attached.get(cluster_name, ()):
                self._wake_idle()
                continue
            q.running.add(item)
            api = ClusterAPI(self.rest, cluster, q.controller.name)
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
                self._wake_idle()
