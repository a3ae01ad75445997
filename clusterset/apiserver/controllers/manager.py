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

from clusterset.apiserver.auth.users import LOOPBACK, UserInfo
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
        """The keys an event makes stale (usually the object itself, or its owner).

        A controller may also define `keys_on_attach(cluster) -> Iterable[Key]`: keys to reconcile when it starts
        controlling a cluster, for what it must make although no object tells it to (the Local APIServices)."""

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        """Makes the world match the desired state of `key`; returns seconds to requeue after, or None."""


@dataclass
class ClusterAPI:
    """What a reconcile may touch: one cluster's store (reads) and the REST pipeline (writes).

    Writes run as the server's own user (`LOOPBACK`, in system:masters): the controllers are in-process and
    trusted, as upstream's loopback clients, and kube-controller-manager's roles hold what its controllers
    write (the ClusterRole aggregation controller may `escalate`)."""

    rest: Rest
    cluster: Cluster
    manager: str
    user: UserInfo = LOOPBACK

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
        return Ctx(self.cluster, served, namespace if served.rt.namespaced else None, user=self.user,
                   manager=self.manager, manager_explicit=True)

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
    listener: Callable[[str, Event], None]  # subscribed in every cluster the controller runs in
    pending: set[Item] = field(default_factory=set)
    running: set[Item] = field(default_factory=set)
    dirty: set[Item] = field(default_factory=set)
    failures: dict[Item, int] = field(default_factory=dict)
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    reconciles: int = 0


class ControllerManager:
    """Runs the core controllers for every cluster, the switchable ones for clusters that want them."""

    def __init__(self, clusters: Mapping[str, Cluster], rest: Rest, core: list[Controller],
                 switchable: list[Controller], workers: int = 4, core_workers: int = 32) -> None:
        """`core_workers`: the core controllers mostly wait on commits (a new cluster's namespaces get their
        defaults, a deleted namespace's objects go), so more of them run at once: 16 clusters added together
        take no longer than with a task per write (4 workers: 1.3x as long)."""
        self.clusters = clusters
        self.rest = rest
        self._queues = {c.name: self._queue(c) for c in [*core, *switchable]}
        # cluster → the controllers attached: one of these two sets, shared (nothing allocated per cluster)
        self._core = frozenset(c.name for c in core)
        self._every = frozenset(self._queues)
        self._attached: dict[str, frozenset[str]] = {}
        self._workers = {name: core_workers if name in self._core else workers for name in self._queues}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        # keys queued or being reconciled, per cluster; who waits for a cluster (or, under None, any) to have none
        self._outstanding: dict[str, int] = {}
        self._idle_waiters: dict[str | None, list[asyncio.Future[None]]] = {}

    def start(self) -> None:
        """Starts the workers (once; `attach` starts them too, so clusters made before `start` are served)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        for name, q in self._queues.items():
            for _ in range(self._workers[name]):
                self._tasks.append(loop.create_task(self._work(q)))

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def attach(self, cluster: Cluster, *, switchable: bool, born: bool = False) -> None:
        """Starts controlling a cluster: the core controllers, and the switchable ones when asked. Each
        controller subscribes to the cluster's events and reconciles what exists (a relist). `born`: a cluster about
        to be bootstrapped, which writes what a controller's start-up seeds would ask for (the built-in
        APIServices): no seeds (they were 13 reconciles per new cluster, each finding its APIService written)."""
        self.start()
        attached = self._attached.get(cluster.name, frozenset())
        wanted = self._every if switchable or attached == self._every else self._core
        self._attached[cluster.name] = wanted
        added: dict[str, list[Event]] = {}  # what exists, as the ADDED events every controller's relist reads

        def existing(resource: str) -> list[Event]:
            events = added.get(resource)
            if events is None:
                events = added[resource] = [Event(int(entry.obj["metadata"]["resourceVersion"]), "ADDED", resource,
                                                  entry) for entry in cluster.store.entries(resource)]
            return events

        for q in [q for name, q in self._queues.items() if name in wanted and name not in attached]:
            for resource in q.controller.watches:
                cluster.store.subscribe(resource, q.listener)
            seeds = getattr(q.controller, "keys_on_attach", None)
            for key in seeds(cluster) if seeds is not None and not born else ():
                self._enqueue(q, cluster.name, key)
            for resource in q.controller.watches:
                for key_resource in cluster.store.resources() if resource == ANY_RESOURCE else [resource]:
                    for event in existing(key_resource):
                        for key in q.controller.keys_for(cluster, event):
                            self._enqueue(q, cluster.name, key)

    def detach(self, cluster: Cluster) -> None:
        for name in self._attached.pop(cluster.name, frozenset()):
            q = self._queues[name]
            for resource in q.controller.watches:
                cluster.store.unsubscribe(resource, q.listener)
        self._wake_idle(cluster.name)

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
        requeue is scheduled either (a scheduled one fires into the queue, and wakes the waiters again)."""
        while self._outstanding.get(cluster, 0) if cluster is not None else \
                (any(self._outstanding.values()) or (timers and self._timers)):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.setdefault(cluster, []).append(waiter)
            await waiter

    def _count(self, cluster: str, change: int) -> None:
        left = self._outstanding[cluster] = self._outstanding.get(cluster, 0) + change
        if not left:
            del self._outstanding[cluster]
            self._wake_idle(cluster)

    def _wake_idle(self, cluster: str) -> None:
        for waiting in (cluster, None):
            for waiter in self._idle_waiters.pop(waiting, ()):
                if not waiter.done():
                    waiter.set_result(None)

    def _queue(self, controller: Controller) -> _Queue:
        def on_event(cluster_name: str, event: Event) -> None:
            cluster = self.clusters.get(cluster_name)
            if cluster is None:
                return
            for key in controller.keys_for(cluster, event):
                self._enqueue(q, cluster_name, key)

        q = _Queue(controller, on_event)
        return q

    def _enqueue(self, q: _Queue, cluster: str, key: Key) -> None:
        item = (cluster, key)
        if item in q.running:
            q.dirty.add(item)  # reconcile again once the running one finishes
        elif item not in q.pending:
            q.pending.add(item)
            self._count(cluster, 1)
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
                self._count(cluster_name, -1)
                continue
            q.running.add(item)  # still outstanding: from queued to being reconciled
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
                self._count(cluster_name, -1)
