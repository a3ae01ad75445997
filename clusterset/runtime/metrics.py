"""Prometheus series of a Manager, and the small aiohttp server that exposes them at `/metrics`.

Names follow controller-runtime (`workqueue_*`, `controller_runtime_reconcile_*`) so existing
dashboards and alerts apply; the informer series are clusterset's own. Each Manager has its own
registry, so several managers (tests, an embedded fleet) never collide; series of a removed cluster
are dropped, so cluster churn does not grow the registry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

_RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """All series of one Manager, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("workqueue_depth", "Keys waiting in a controller's work queue.", ["name"],
                                 registry=r)
        self.queue_adds = Counter("workqueue_adds", "Keys added to a controller's work queue.", ["name"], registry=r)
        self.queue_retries = Counter("workqueue_retries", "Keys re-added with backoff after a failure.", ["name"],
                                     registry=r)
        self.queue_wait = Histogram("workqueue_queue_duration_seconds", "Time a key waits in the queue.", ["name"],
                                    buckets=_RECONCILE_BUCKETS, registry=r)
        self.reconcile_total = Counter("controller_runtime_reconcile", "Reconciles by outcome.",
                                       ["controller", "cluster", "result"], registry=r)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors", "Reconciles that raised.",
                                        ["controller", "cluster"], registry=r)
        # by controller alone, as controller-runtime's: a histogram per cluster too would be 17 series per controller
        # and cluster (hundreds of thousands in a large fleet), each 40 µs to make at a cluster's first reconcile
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds", "Reconcile latency.",
                                        ["controller"], buckets=_RECONCILE_BUCKETS, registry=r)
        self.active_workers = Gauge("controller_runtime_active_workers", "Workers running a reconcile.",
                                    ["controller"], registry=r)
        self.relists = Counter("clusterset_informer_relists", "Lists after the first (410 Expired, reconnects).",
                               ["cluster", "resource"], registry=r)
        self.watch_restarts = Counter("clusterset_informer_watch_restarts",
                                      "Watches reopened, by reason (closed by the server, expired: 410, error).",
                                      ["cluster", "resource", "reason"], registry=r)
        self.engaged_clusters = Gauge("clusterset_runtime_engaged_clusters", "Clusters the manager runs against.",
                                      registry=r)
        self.leader = Gauge("leader_election_master_status", "1 while this replica holds the lease.", ["name"],
                            registry=r)

        self._by_cluster: dict[str, set[tuple[Counter | Histogram, tuple[str, ...]]]] = {}
        self._series_of: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        self._latency: dict[str, Any] = {}  # each controller's reconcile_time series

    def queue(self, name: str) -> QueueSeries:
        return QueueSeries(self, name)

    def informer(self, cluster: str, resource: str) -> InformerSeries:
        return InformerSeries(self, cluster, resource)

    def reconciled(self, controller: str, cluster: str, result: str, seconds: float) -> None:
        """One reconcile: its outcome (success, error, requeue, requeue_after) and latency."""
        self._series(self.reconcile_total, cluster, controller, cluster, result).inc()
        latency = self._latency.get(controller)
        if latency is None:
            latency = self._latency[controller] = self.reconcile_time.labels(controller)
        latency.observe(seconds)
        if result == "error":
            self._series(self.reconcile_errors, cluster, controller, cluster).inc()

    def _series(self, metric: Counter | Histogram, cluster: str, *labels: str) -> Any:
        """The labelled series, looked up once (`labels()` takes a lock and checks its labels on every call: every
        reconcile of every member's controllers asks for two)."""
        key = (metric, labels)
        series = self._series_of.get(key)
        if series is None:
            series = self._series_of[key] = metric.labels(*labels)
            self._by_cluster.setdefault(cluster, set()).add(key)
        return series

    def forget_cluster(self, cluster: str) -> None:
        """Drops every series labelled with `cluster` (it was disengaged)."""
        for metric, labels in self._by_cluster.pop(cluster, set()):
            self._series_of.pop((metric, labels), None)
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    def render(self) -> bytes:
        """The text exposition format, as served at /metrics."""
        return generate_latest(self.registry)


class QueueSeries:
    """The QueueMetrics of one controller's work queue."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._depth = metrics.queue_depth.labels(name)
        self._adds = metrics.queue_adds.labels(name)
        self._retries = metrics.queue_retries.labels(name)
        self._wait = metrics.queue_wait.labels(name)

    def added(self) -> None:
        self._adds.inc()

    def depth(self, value: int) -> None:
        self._depth.set(value)

    def retried(self) -> None:
        self._retries.inc()

    def waited(self, seconds: float) -> None:
        self._wait.observe(seconds)


class InformerSeries:
    """The InformerMetrics of one informer."""

    def __init__(self, metrics: Metrics, cluster: str, resource: str) -> None:
        self._metrics = metrics
        self._cluster = cluster
        self._resource = resource

    def relisted(self) -> None:
        self._metrics._series(self._metrics.relists, self._cluster, self._cluster, self._resource).inc()

    def watch_restarted(self, reason: str) -> None:
        m = self._metrics
        m._series(m.watch_restarts, self._cluster, self._cluster, self._resource, reason).inc()


class MetricsServer:
    """`/metrics` (Prometheus), `/healthz` and `/readyz` on host:port; port 0 picks a free port."""

    def __init__(self, metrics: Metrics, host: str, port: int, ready: Callable[[], bool] | None = None) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._ready = ready or (lambda: True)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        app.router.add_get("/readyz", self._serve_ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])  # the port picked when asked for 0
        log.info("serving metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _serve_ready(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="caches not synced")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"
