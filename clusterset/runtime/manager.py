"""The Manager: engaged clusters, controllers, providers, leader election, metrics, shutdown.

What it guarantees:
- a cluster a provider adds is engaged by every running controller whose watches select it, and a
  removed cluster is disengaged (watches stopped, pending keys dropped, its client closed);
- with leader election, controllers run only while this replica holds the Lease; losing it stops
  them at once and the replica campaigns again (caches and clusters stay, so a regained lease
  resumes quickly);
- `stop()` stops controllers first (in-flight reconciles may finish), then releases the lease,
  providers, informers and clients, and leaves no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Protocol

from clusterset.client import ClusterClient
from clusterset.runtime.cluster import Cluster
from clusterset.runtime.controller import Controller
from clusterset.runtime.leader import LeaderElection
from clusterset.runtime.logs import bind
from clusterset.runtime.metrics import Metrics, MetricsServer
from clusterset.runtime.shared import InformerSource

log = logging.getLogger(__name__)


class ClusterSink(Protocol):
    """What a provider drives: the Manager's add/remove."""

    async def add_cluster(self, name: str, client: ClusterClient, *, owned: bool = True) -> Cluster: ...

    async def remove_cluster(self, name: str) -> None: ...


class Provider(Protocol):
    """Adds and removes clusters at run time. `run` is a task for the manager's lifetime; it is cancelled
    at stop. It should retry its own failures (a provider that raises is logged and not restarted)."""

    async def run(self, sink: ClusterSink) -> None: ...


class Manager:
    """Runs controllers against the clusters its providers engage.

    `metrics_port`: serve /metrics, /healthz and /readyz on that port (0: no server; `metrics.render()`
    still works). `resync_period`: every informer re-delivers its whole cache this often (None: never).
    """

    def __init__(
        self,
        provider: Provider | Sequence[Provider] | None = None,
        *,
        name: str = "manager",
        metrics_port: int = 0,
        metrics_host: str = "127.0.0.1",
        leader_election: LeaderElection | None = None,
        resync_period: float | None = None,
    ) -> None:
        if provider is None:
            self.providers: list[Provider] = []
        elif isinstance(provider, Sequence):
            self.providers = list(provider)
        else:
            self.providers = [provider]
        self.name = name
        self.metrics = Metrics()
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.leader_election = leader_election
        self.resync_period = resync_period
        self.elected = asyncio.Event()
        self._clusters: dict[str, Cluster] = {}
        self._owned: set[str] = set()
        self._controllers: list[Controller] = []
        self._leading = leader_election is None
        self._started = False
        self._stopping = False  # from the start of stop(): controllers may no longer be started
        self._tasks: list[asyncio.Task[None]] = []
        self._server: MetricsServer | None = None
        self._failed: BaseException | None = None
        self._failure = asyncio.Event()
        self._cluster_lock = asyncio.Lock()
        self._log = bind(log, manager=name)

    # ------------------------------------------------------------------ clusters
    @property
    def clusters(self) -> Mapping[str, Cluster]:
        """Engaged clusters by name (read-only view)."""
        return self._clusters

    def cluster(self, name: str) -> Cluster:
        try:
            return self._clusters[name]
        except KeyError:
            raise KeyError(f"cluster {name!r} is not engaged (engaged: {sorted(self._clusters)})") from None

    async def add_cluster(self, name: str, client: ClusterClient, *, owned: bool = True,
                          informers: InformerSource | None = None) -> Cluster:
        """Engages `client` as cluster `name` (replacing a cluster of that name). With `owned`, the manager
        closes the client when the cluster is removed or the manager stops. `informers`: serves some of the
        cluster's views from elsewhere (`shared.SharedReads`)."""
        async with self._cluster_lock:
            if name in self._clusters:
                await self._remove(name)
            cluster = Cluster(name, client, resync_period=self.resync_period, metrics=self.metrics,
                              informers=informers)
            self._clusters[name] = cluster
            if owned:
                self._owned.add(name)
            self.metrics.engaged_clusters.set(len(self._clusters))
            self._log.info("engaged cluster", cluster=name, server=getattr(client, "server", None))
            if self._started and self._leading:
                for controller in self._controllers:
                    controller.engage(cluster)
            return cluster

    async def remove_cluster(self, name: str) -> None:
        """Disengages cluster `name` (a no-op if it is not engaged)."""
        async with self._cluster_lock:
            await self._remove(name)

    async def _remove(self, name: str) -> None:
        cluster = self._clusters.get(name)
        for controller in self._controllers:
            controller.disengage(name)
        if cluster is None:
            return
        await cluster.stop()
        if name in self._owned:
            self._owned.discard(name)
            with contextlib.suppress(Exception):
                await cluster.client.close()
        del self._clusters[name]  # last: whoever sees it gone may rely on its watches and client being closed
        self.metrics.forget_cluster(name)
        self.metrics.engaged_clusters.set(len(self._clusters))
        self._log.info("disengaged cluster", cluster=name)

    # ------------------------------------------------------------------ controllers
    def add(self, controller: Controller) -> Controller:
        """Registers a controller; it runs from start() (or at once if the manager is running and leading)."""
        if any(c.name == controller.name for c in self._controllers):
            raise ValueError(f"a controller named {controller.name!r} is already registered")
        self._controllers.append(controller)
        if self.is_leader:
            controller.start(self)
        return controller

    @property
    def controllers(self) -> list[Controller]:
        return list(self._controllers)

    @property
    def is_leader(self) -> bool:
        """True while controllers may run: always without leader election."""
        return self._started and self._leading and not self._stopping

    def _start_controllers(self) -> None:
        if self._stopping:  # the lease was won while stopping: nothing may start now
            return
        self._leading = True
        for controller in self._controllers:
            controller.start(self)

    async def _stop_controllers(self, graceful: bool) -> None:
        self._leading = self.leader_election is None
        await asyncio.gather(*(c.stop(graceful=graceful) for c in self._controllers))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.metrics_port:
            self._server = MetricsServer(self.metrics, self.metrics_host, self.metrics_port, ready=self._ready)
            await self._server.start()
        for i, provider in enumerate(self.providers):
            self._tasks.append(asyncio.create_task(self._run_provider(provider), name=f"{self.name} provider {i}"))
        if self.leader_election is None:
            self._start_controllers()
            self.elected.set()
        else:
            self._tasks.append(asyncio.create_task(self._lead(self.leader_election), name=f"{self.name} leader"))
        self._log.info("started", controllers=len(self._controllers), providers=len(self.providers))

    async def stop(self) -> None:
        """Stops controllers (letting running reconciles finish), then leadership, providers, informers,
        owned clients and the metrics server."""
        if not self._started or self._stopping:
            return
        self._stopping = True
        await self._stop_controllers(graceful=True)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with self._cluster_lock:
            for name in list(self._clusters):
                await self._remove(name)
        if self._server is not None:
            await self._server.stop()
            self._server = None
        self.elected.clear()
        self._started = self._stopping = False
        self._log.info("stopped")

    async def __aenter__(self) -> Manager:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
                        ) -> None:
        await self.stop()

    async def run_until(self, event: asyncio.Event) -> None:
        """Starts, runs until `event` is set (or a provider fails: re-raised), stops."""
        await self.start()
        try:
            waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._failure.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
        finally:
            await self.stop()
        if self._failed is not None:
            raise self._failed

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Waits until every informer of every engaged cluster has loaded its first list."""
        async def all_synced() -> None:
            while True:
                clusters = list(self._clusters.values())
                await asyncio.gather(*(c.wait_synced() for c in clusters))
                if all(c.synced for c in self._clusters.values()):
                    return

        await asyncio.wait_for(all_synced(), timeout)

    def _ready(self) -> bool:
        return all(c.synced for c in self._clusters.values())

    @property
    def metrics_url(self) -> str | None:
        return self._server.url if self._server is not None else None

    async def _run_provider(self, provider: Provider) -> None:
        try:
            await provider.run(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.exception("cluster provider failed", provider=type(provider).__name__)
            self._failed = exc
            self._failure.set()

    async def _lead(self, election: LeaderElection) -> None:
        gauge = self.metrics.leader.labels(election.name)
        gauge.set(0)
        while True:
            await election.acquire()
            gauge.set(1)
            self.elected.set()
            self._start_controllers()
            try:
                await election.hold()
            finally:
                gauge.set(0)
                self.elected.clear()
            await self._stop_controllers(graceful=False)

