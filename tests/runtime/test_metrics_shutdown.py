"""/metrics exposes the runtime's series with per-controller labels; stop() leaves no task behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from clusterset.api.resources import CONFIG_MAPS
from clusterset.client import ClusterClient
from clusterset.runtime import (
    Controller,
    KubeconfigProvider,
    LeaderElection,
    Manager,
    RateLimiter,
    Request,
    StaticProvider,
    Watch,
)
from clusterset.testing import ClusterInfo, ServerThread
from tests.runtime.util import MINE, client_of, cm, eventually, free_port


async def test_metrics_endpoint_exposes_named_series_per_controller_and_cluster(cluster: ClusterInfo,
                                                                                client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("ok"))
    await client.create(CONFIG_MAPS, cm("fails"))

    async def reconcile(req: Request) -> None:
        if req.name == "fails":
            raise ValueError("always")

    watch = Watch(CONFIG_MAPS, namespace="default", label_selector=MINE)
    manager = Manager(StaticProvider({"c1": client}), metrics_port=free_port())
    manager.add(Controller("metered", reconcile, [watch], rate_limiter=RateLimiter(base_delay=0.01, qps=0)))
    manager.add(Controller("quiet", reconcile, [watch], clusters="nowhere"))
    async with manager, aiohttp.ClientSession() as http:
        assert manager.metrics_url is not None
        await manager.wait_synced(10)
        errors = 'controller_runtime_reconcile_errors_total{cluster="c1",controller="metered"}'

        async def scrape() -> str:
            async with http.get(manager.metrics_url or "") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                return await resp.text()

        async def errors_counted() -> str | None:
            text = await scrape()
            return text if f"{errors} 3.0" in text or f"{errors} 4.0" in text else None

        text = await eventually(errors_counted, message="reconcile errors on /metrics")
        for line in [
            'workqueue_depth{name="metered"}',
            'workqueue_adds_total{name="metered"}',
            'workqueue_retries_total{name="metered"}',
            'workqueue_queue_duration_seconds_bucket{le="0.001",name="metered"}',
            'controller_runtime_reconcile_total{cluster="c1",controller="metered",result="success"} 1.0',
            'controller_runtime_reconcile_total{cluster="c1",controller="metered",result="error"}',
            'controller_runtime_reconcile_time_seconds_bucket{controller="metered",le="0.005"}',
            'controller_runtime_reconcile_time_seconds_count{controller="metered"}',
            'controller_runtime_active_workers{controller="metered"} 0.0',
            "clusterset_runtime_engaged_clusters 1.0",
            "# TYPE clusterset_informer_relists_total counter",
            "# TYPE clusterset_informer_watch_restarts_total counter",
        ]:
            assert line in text, line
        assert 'controller="quiet"' not in text  # it selects no cluster: it never reconciled
        async with http.get(manager.metrics_url.replace("/metrics", "/readyz")) as resp:
            assert resp.status == 200
        # a disengaged cluster's series go away with it
        await manager.remove_cluster("c1")
        assert 'cluster="c1"' not in await scrape()


async def test_stop_finishes_running_reconciles_and_leaves_no_task(server: ServerThread, tmp_path: Path) -> None:
    members = [server.add_cluster(controllers=False) for _ in range(2)]
    path = tmp_path / "kubeconfig"
    server.server.write_kubeconfig(path, names=[m.name for m in members])
    hub = client_of(members[0])
    for m in members:
        async with client_of(m) as c:
            await c.create(CONFIG_MAPS, cm("slow"))
    started, finished, cancelled = asyncio.Event(), [], []

    async def slow(req: Request) -> None:
        started.set()
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            cancelled.append(req.cluster.name)
            raise
        finished.append(req.cluster.name)

    before = asyncio.all_tasks()
    manager = Manager(
        [KubeconfigProvider(path, poll_interval=0.1), StaticProvider({"hub": hub})],
        metrics_port=free_port(),
        leader_election=LeaderElection(hub, "default", "shutdown-test", lease_duration=2, renew_deadline=1.5,
                                       retry_period=0.2),
    )
    manager.add(Controller("slow", slow, [Watch(CONFIG_MAPS, namespace="default", label_selector=MINE)], workers=2))
    await manager.start()
    await eventually(lambda: len(manager.clusters) == 3 and started.is_set(), message="a reconcile running")
    clients = [c.client for c in manager.clusters.values()]
    await manager.stop()
    assert finished and not cancelled  # the running reconciles were allowed to finish
    assert asyncio.all_tasks() - before == set()
    assert all(c._session is None for c in clients if c is not hub)  # the manager's own clients are closed
    assert hub._session is not None  # a client handed in by the caller is the caller's to close
    assert not manager.clusters
    await hub.close()
