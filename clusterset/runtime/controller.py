"""A controller: watches that turn events into keys, a work queue, and workers that reconcile keys.

A reconciler receives a Request (the cluster and the key) and makes that cluster match the desired
state of the key, reading from caches. It is level-based: it is told *what* to look at, never
*what changed*, so coalesced, repeated or resynced keys are all harmless. The queue item is
(cluster name, key), so the same key in two clusters is two independent items.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from clusterset.api import labels
from clusterset.api.resources import Resource
from clusterset.runtime.cache import Obj, ObjectKey, key_of
from clusterset.runtime.cluster import Cluster
from clusterset.runtime.informer import RESYNC, Event, Handler, Informer
from clusterset.runtime.logs import bind
from clusterset.runtime.metrics import Metrics
from clusterset.runtime.workqueue import RateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)

ReconcileKey = ObjectKey | str
"""What a controller reconciles: an object's (namespace, name), or any string (e.g. a member's name)."""

Item = tuple[str, ReconcileKey]
ClusterSelector = str | Collection[str] | Callable[[str], bool]
"""Which engaged clusters a watch applies to: "all", one name, several names, or a predicate on names."""

Mapper = Callable[[str, Obj], Iterable[tuple[str, ReconcileKey | tuple[str, str]]]]
"""map_to(cluster_name, obj) -> (cluster_name, key) pairs to reconcile."""


@dataclass(frozen=True)
class Request:
    """What to reconcile: `key` in `cluster`."""

    cluster: Cluster
    key: ReconcileKey

    @property
    def namespace(self) -> str:
        return self.key.namespace if isinstance(self.key, ObjectKey) else ""

    @property
    def name(self) -> str:
        return self.key.name if isinstance(self.key, ObjectKey) else self.key

    def __str__(self) -> str:
        return f"{self.cluster.name}:{self.key}"


@dataclass(frozen=True)
class Result:
    """How a reconcile ended. `requeue_after`: look again after that many seconds (its backoff is reset);
    `requeue`: look again after the key's backoff; `later`: look again once no other key waits at normal priority
    (work that can wait for the rest, such as a status once every data-plane write is done; events of this
    reconcile's own writes wait with it). Raising an exception also retries with backoff."""

    requeue_after: float | None = None
    requeue: bool = False
    later: bool = False

    @classmethod
    def done(cls) -> Result:
        return cls()


Reconcile = Callable[[Request], Awaitable[Result | None]]


@dataclass(frozen=True)
class Watch:
    """A source of keys: a view of `resource` in each selected cluster.

    - `map_to(cluster_name, obj)` yields the (cluster, key) pairs an event makes stale; the default is
      the object's own key in its own cluster. On an update both the old and the new object are mapped,
      so a key an object stops pointing to is reconciled too.
    - `clusters` narrows the controller's cluster selector for this watch (e.g. a hub-only watch that
      maps to member keys).
    - `predicate(event)` drops events before mapping (e.g. status-only updates).
    - `namespace` may be a function of the cluster's name, for a namespace that differs per cluster (an agent's
      own namespace on the hub).
    """

    resource: Resource
    namespace: str | Callable[[str], str | None] | None = None
    label_selector: str | Mapping[str, str] | None = None
    field_selector: str | None = None
    map_to: Mapper | None = None
    clusters: ClusterSelector | None = None
    predicate: Callable[[Event], bool] | None = None


class Host(Protocol):
    """What a controller needs from its Manager."""

    @property
    def clusters(self) -> Mapping[str, Cluster]: ...

    @property
    def metrics(self) -> Metrics: ...


def selects(selector: ClusterSelector | None, name: str) -> bool:
    if selector is None or selector == "all":
        return True
    if isinstance(selector, str):
        return name == selector
    if callable(selector):
        return bool(selector(name))
    return name in selector


class Controller:
    """Reconciles keys produced by `watches` with `workers` concurrent workers (never two on one key).

    `resync_period`: every that many seconds every key the watches' caches map to is queued again (a
    periodic requeue; coalesced with pending keys). `rate_limiter`: retry backoff (per key and overall).
    """

    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        watches: Iterable[Watch | Resource] = (),
        *,
        clusters: ClusterSelector = "all",
        workers: int = 1,
        rate_limiter: RateLimiter | None = None,
        resync_period: float | None = None,
        graceful_timeout: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"controller {name!r}: workers must be at least 1, not {workers}")
        self.name = name
        self.reconcile = reconcile
        self.watches = [w if isinstance(w, Watch) else Watch(w) for w in watches]
        for watch in self.watches:
            try:
                labels.selector_of(watch.label_selector)
            except ValueError as exc:
                raise ValueError(f"controller {name!r}, watch on {watch.resource}: {exc}") from None
        self.clusters = clusters
        self.workers = workers
        self.rate_limiter = rate_limiter
        self.resync_period = resync_period
        self.graceful_timeout = graceful_timeout
        self._host: Host | None = None
        self._queue: WorkQueue[Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._resync_task: asyncio.Task[None] | None = None
        self._engaged: dict[str, list[tuple[Informer, Handler, Watch]]] = {}
        self._parked: dict[str, set[ReconcileKey]] = {}
        self._removed: set[str] = set()  # disengaged clusters: their stragglers are not parked
        self._log = bind(log, controller=name)

    # ------------------------------------------------------------------ public
    def enqueue(self, cluster: str | Cluster, key: ReconcileKey | tuple[str, str], after: float | None = None) -> None:
        """Queues `key` in `cluster` (now, or `after` seconds). Ignored while the controller is not running
        (e.g. not the leader): starting queues every watched key anyway."""
        queue = self._queue
        if queue is None or queue.shutting_down:
            return
        item = (cluster if isinstance(cluster, str) else cluster.name, _normalize(key))
        if after:
            queue.add_after(item, after)
        else:
            queue.add(item)

    @property
    def running(self) -> bool:
        return self._queue is not None and not self._queue.shutting_down

    @property
    def queue(self) -> WorkQueue[Item] | None:
        """The current work queue (None while stopped); for tests and introspection."""
        return self._queue

    # ------------------------------------------------------------------ driven by the Manager
    def start(self, host: Host) -> None:
        if self.running:
            return
        self._host = host
        limiter = self.rate_limiter or RateLimiter()
        self._queue = WorkQueue(limiter, metrics=host.metrics.queue(self.name))
        self._tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}")
                       for i in range(self.workers)]
        if self.resync_period:
            self._resync_task = asyncio.create_task(self._resync(self.resync_period), name=f"{self.name} resync")
        for cluster in list(host.clusters.values()):
            self.engage(cluster)
        self._log.info("started", workers=self.workers)

    async def stop(self, graceful: bool = True) -> None:
        """Stops taking keys; waits up to `graceful_timeout` for running reconciles (if `graceful`), then
        cancels them; detaches from every cluster. A non-graceful stop (a lost lease) during a graceful one
        cancels the running reconciles at once."""
        queue = self._queue
        if queue is None:
            return
        queue.shut_down()
        resync, self._resync_task = self._resync_task, None
        for name in list(self._engaged):
            self._detach(name)
        self._parked.clear()
        tasks = list(self._tasks)
        if graceful and tasks:
            await asyncio.wait(tasks, timeout=self.graceful_timeout)
        if resync is not None:
            tasks.append(resync)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._queue is queue:  # not restarted meanwhile
            self._queue, self._tasks = None, []
            self._log.info("stopped")

    def engage(self, cluster: Cluster) -> None:
        """Starts the watches that apply to `cluster`; re-queues keys parked while it was unknown."""
        if not self.running or cluster.name in self._engaged:
            return
        attached: list[tuple[Informer, Handler, Watch]] = []
        self._engaged[cluster.name] = attached
        for watch in self.watches:
            if not selects(watch.clusters if watch.clusters is not None else self.clusters, cluster.name):
                continue
            namespace = watch.namespace(cluster.name) if callable(watch.namespace) else watch.namespace
            informer = cluster.informer(watch.resource, namespace, watch.label_selector, watch.field_selector)
            handler = self._handler(cluster.name, watch)
            attached.append((informer, handler, watch))
            informer.add_handler(handler)
        self._removed.discard(cluster.name)
        for key in self._parked.pop(cluster.name, ()):
            self.enqueue(cluster.name, key)

    def disengage(self, name: str) -> None:
        """Detaches from cluster `name` and drops its pending keys."""
        self._detach(name)
        self._parked.pop(name, None)
        self._removed.add(name)
        if self._queue is not None:
            self._queue.discard(lambda item: item[0] == name)

    def _detach(self, name: str) -> None:
        for informer, handler, _ in self._engaged.pop(name, []):
            informer.remove_handler(handler)

    # ------------------------------------------------------------------ events to keys
    def _handler(self, cluster: str, watch: Watch) -> Handler:
        def handle(event: Event) -> None:
            queue = self._queue
            if queue is None or (watch.predicate is not None and not watch.predicate(event)):
                return
            if watch.map_to is None:
                queue.add((cluster, key_of(event.obj)))
                return
            for target, key in watch.map_to(cluster, event.obj):
                queue.add((target, _normalize(key)))
            if event.old is not None and event.old is not event.obj:
                for target, key in watch.map_to(cluster, event.old):
                    queue.add((target, _normalize(key)))

        return handle

    async def _resync(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for attached in list(self._engaged.values()):
                for informer, handler, _ in attached:
                    for obj in informer.cache.list():
                        handler(Event(RESYNC, obj, obj))

    # ------------------------------------------------------------------ workers
    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            try:
                item = await queue.get()
            except ShutDown:
                return
            try:
                await self._process(queue, item)
            except Exception:  # outside the reconciler (metrics, logging): the worker must survive it
                self._log.exception("processing a key failed", cluster=item[0], key=str(item[1]))
                queue.add_rate_limited(item)
            finally:
                queue.done(item)

    async def _process(self, queue: WorkQueue[Item], item: Item) -> None:
        assert self._host is not None
        cluster_name, key = item
        cluster = self._host.clusters.get(cluster_name)
        if cluster is None:  # mapped to a cluster not engaged (yet): reconcile it when it is
            if cluster_name not in self._removed:  # a retry of a removed cluster's key is dropped
                self._parked.setdefault(cluster_name, set()).add(key)
            queue.forget(item)
            return
        metrics = self._host.metrics
        workers = metrics.active_workers.labels(self.name)
        workers.inc()
        started = time.monotonic()
        try:
            result = await self.reconcile(Request(cluster, key))
            if result is not None and not isinstance(result, Result):
                raise TypeError(f"reconcile returned {result!r}, not a Result or None")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._host.clusters.get(cluster_name) is not cluster:  # disengaged meanwhile: its key goes with it
                self._log.debug("reconcile of a cluster disengaged meanwhile dropped", cluster=cluster_name,
                                key=str(key), error=repr(exc))
                queue.forget(item)
                return
            retries = queue.num_requeues(item)
            fields = {"cluster": cluster_name, "key": str(key), "error": repr(exc), "retries": retries}
            if retries == 0:  # the traceback once per failure streak, not on every retry
                self._log.exception("reconcile failed", **fields)
            else:
                self._log.error("reconcile failed", **fields)
            metrics.reconciled(self.name, cluster_name, "error", time.monotonic() - started)
            queue.add_rate_limited(item)
            return
        finally:
            workers.dec()
        elapsed = time.monotonic() - started
        if result is not None and result.requeue_after:
            outcome = "requeue_after"
            queue.forget(item)
            queue.add_after(item, result.requeue_after)
        elif result is not None and result.later:
            outcome = "requeue"
            queue.forget(item)
            queue.add_later(item)
        elif result is not None and result.requeue:
            outcome = "requeue"
            queue.add_rate_limited(item)
        else:
            outcome = "success"
            queue.forget(item)
        metrics.reconciled(self.name, cluster_name, outcome, elapsed)
        self._log.debug("reconciled", cluster=cluster_name, key=str(key), result=outcome,
                        seconds=round(elapsed, 4))


def _normalize(key: object) -> ReconcileKey:
    if isinstance(key, ObjectKey | str):
        return key
    if isinstance(key, tuple) and len(key) == 2:
        return ObjectKey(str(key[0]), str(key[1]))
    raise TypeError(f"a reconcile key is a (namespace, name) tuple or a string, not {key!r}")
