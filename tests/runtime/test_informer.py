"""Informers against the real server: list+watch, a watch broken by a server restart, 410 → relist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pytest

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES, Resource
from clusterset.apiserver import Apiserver, inprocess
from clusterset.client import ClientConfig, ClusterClient, RetryPolicy
from clusterset.client.errors import ApiError, BadRequest, Invalid
from clusterset.runtime.cluster import Cluster
from clusterset.runtime.informer import ADDED, DELETED, MODIFIED, Event, Informer
from clusterset.runtime.metrics import Metrics
from clusterset.testing import ClusterInfo, ServerThread
from tests.runtime.util import MINE, Proxy, client_of, cm, eventually, free_port, listed, snapshot


async def test_list_then_watch_feeds_the_cache_and_handlers(cluster: ClusterInfo, client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("before", v="1"))
    informer = Informer(client, CONFIG_MAPS, namespace="default", label_selector=MINE)
    events: list[Event] = []
    informer.add_handler(events.append)
    informer.start()
    try:
        await informer.cache.wait_synced(10)
        assert [e.type for e in events] == [ADDED]
        await client.create(CONFIG_MAPS, cm("after", v="1"))
        await client.patch(CONFIG_MAPS, "before", {"data": {"v": "2"}}, namespace="default")
        await client.delete(CONFIG_MAPS, "after", namespace="default")
        await eventually(lambda: len(events) == 4, message="four events")
        assert [(e.type, e.obj["metadata"]["name"]) for e in events] == [
            (ADDED, "before"), (ADDED, "after"), (MODIFIED, "before"), (DELETED, "after")]
        assert events[2].old is not None and events[2].old["data"] == {"v": "1"}
        assert informer.cache.get(("default", "before"))["data"] == {"v": "2"}  # type: ignore[index]
        # a handler added late first sees what is already there
        late: list[Event] = []
        informer.add_handler(late.append)
        assert [(e.type, e.obj["metadata"]["name"]) for e in late] == [(ADDED, "before")]
    finally:
        await informer.stop()
    assert not informer.running


async def test_a_watch_broken_by_a_server_restart_resumes_without_missing_events(tmp_path: Path) -> None:
    port = free_port()
    server = ServerThread(tmp_path, port=port, bookmark_interval=0.5)
    restarted: ServerThread | None = None
    try:
        info = server.add_cluster("restart", controllers=False)
        client = client_of(info)
        metrics = Metrics()
        informer = Informer(client, CONFIG_MAPS, namespace="default", label_selector=MINE, cluster="restart",
                            max_backoff=0.5, metrics=metrics.informer("restart", "configmaps"))
        events: list[Event] = []
        informer.add_handler(events.append)
        for i in range(5):
            await client.create(CONFIG_MAPS, cm(f"cm-{i}", v="0"))
        informer.start()
        await informer.cache.wait_synced(10)
        await eventually(lambda: len(informer.cache) == 5)

        await asyncio.to_thread(server.stop)
        # while the informer cannot connect, the same state is served on another port and changed there
        elsewhere = await asyncio.to_thread(ServerThread, tmp_path, bookmark_interval=0.5)
        async with client_of(elsewhere.info("restart")) as writer:
            await writer.patch(CONFIG_MAPS, "cm-0", {"data": {"v": "1"}}, namespace="default")
            await writer.delete(CONFIG_MAPS, "cm-1", namespace="default")
            await writer.create(CONFIG_MAPS, cm("cm-new", v="0"))
        await asyncio.to_thread(elsewhere.stop)
        assert snapshot(informer.cache).keys() == {f"cm-{i}" for i in range(5)}  # it saw none of that yet
        restarted = await asyncio.to_thread(ServerThread, tmp_path, port=port, bookmark_interval=0.5)
        direct = client_of(restarted.info("restart"))

        fresh = listed(await direct.list(CONFIG_MAPS, namespace="default", label_selector=MINE))
        await eventually(lambda: snapshot(informer.cache) == fresh, message="the cache to equal a fresh list")
        assert "cm-1" not in fresh
        assert ("DELETED", "cm-1") in [(e.type, e.obj["metadata"]["name"]) for e in events]
        restarts = sum(metrics.registry.get_sample_value(
            "clusterset_informer_watch_restarts_total", {"cluster": "restart", "resource": "configmaps",
                                                         "reason": reason}) or 0 for reason in ("closed", "error"))
        assert restarts >= 1
        # the persisted watch history let the informer resume: no relist was needed
        assert metrics.registry.get_sample_value(
            "clusterset_informer_relists_total", {"cluster": "restart", "resource": "configmaps"}) is None
        await informer.stop()
        await client.close()
        await direct.close()
    finally:
        await asyncio.to_thread((restarted or server).stop)


async def test_a_410_relists_and_reports_deletions_missed_while_disconnected() -> None:
    server = ServerThread(None, history_size=20, bookmark_interval=0.5)
    proxy: Proxy | None = None
    try:
        info = server.add_cluster("small", controllers=False)
        direct = client_of(info)
        url = urlsplit(info.server)
        proxy = Proxy(url.hostname or "127.0.0.1", url.port or 443)
        await proxy.start()
        via_proxy = client_of(info, server=urlunsplit(url._replace(netloc=f"127.0.0.1:{proxy.port}")))
        metrics = Metrics()
        informer = Informer(via_proxy, CONFIG_MAPS, namespace="default", label_selector=MINE, cluster="small",
                            max_backoff=0.3, metrics=metrics.informer("small", "configmaps"))
        events: list[Event] = []
        informer.add_handler(events.append)
        for i in range(5):
            await direct.create(CONFIG_MAPS, cm(f"cm-{i}", v="0"))
        informer.start()
        await informer.cache.wait_synced(10)
        await eventually(lambda: len(informer.cache) == 5)

        proxy.cut()  # the watch breaks mid-stream and cannot reconnect
        for v in range(30):  # more events than the server's history of 20
            await direct.patch(CONFIG_MAPS, "cm-0", {"data": {"v": str(v)}}, namespace="default")
        await direct.delete(CONFIG_MAPS, "cm-1", namespace="default")
        await direct.delete(CONFIG_MAPS, "cm-2", namespace="default")
        await direct.create(CONFIG_MAPS, cm("cm-new", v="0"))
        proxy.restore()

        fresh = listed(await direct.list(CONFIG_MAPS, namespace="default", label_selector=MINE))
        await eventually(lambda: snapshot(informer.cache) == fresh, message="the cache to equal a fresh list")
        assert sorted(fresh) == ["cm-0", "cm-3", "cm-4", "cm-new"]
        assert informer.cache.get("default/cm-0")["data"] == {"v": "29"}  # type: ignore[index]
        seen = [(e.type, e.obj["metadata"]["name"]) for e in events]
        assert {n for t, n in seen if t == DELETED} == {"cm-1", "cm-2"}
        assert (ADDED, "cm-new") in seen
        labels = {"cluster": "small", "resource": "configmaps"}
        assert (metrics.registry.get_sample_value("clusterset_informer_relists_total", labels) or 0) >= 1
        assert (metrics.registry.get_sample_value("clusterset_informer_watch_restarts_total",
                                                  {**labels, "reason": "expired"}) or 0) >= 1
        await informer.stop()
        await via_proxy.close()
        await direct.close()
    finally:
        if proxy is not None:
            await proxy.stop()
        await asyncio.to_thread(server.stop)


class EndsEveryWatch:
    """A server (or proxy) that answers every watch with an empty stream."""

    in_process = None  # over HTTP: list, then watch

    def __init__(self) -> None:
        self.watches = 0

    async def list(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        self.watches += 1
        return
        yield {}  # makes this an async generator that yields nothing


async def test_watches_that_end_at_once_are_reopened_with_backoff() -> None:
    client = EndsEveryWatch()
    informer = Informer(cast(ClusterClient, client), CONFIG_MAPS, max_backoff=0.2)
    informer.start()
    try:
        await informer.cache.wait_synced(10)
        await asyncio.sleep(1.0)
    finally:
        await informer.stop()
    assert 1 <= client.watches <= 15, client.watches  # a tight loop would open thousands


async def test_an_on_demand_view_that_cannot_load_holds_up_no_other_reader(cluster: ClusterInfo,
                                                                           client: ClusterClient) -> None:
    unserved = Resource("example.com", "v1", "gadgets", "Gadget")
    engaged = Cluster("c", client)
    try:
        configmaps = engaged.cache(CONFIG_MAPS, "default")
        gadgets = engaged.informer(unserved, label_selector="clusterset.io/work", on_demand=True)
        await engaged.wait_synced(10)
        assert engaged.synced and configmaps.synced.is_set() and not gadgets.cache.synced.is_set()
        engaged.informer(unserved, label_selector="clusterset.io/work")  # asked for as a plain view: it counts
        assert not engaged.synced
    finally:
        await engaged.stop()


async def test_a_synced_cluster_waits_again_for_each_cache_added(cluster: ClusterInfo, client: ClusterClient) -> None:
    """`synced` is remembered once every cache has loaded (it is asked before every reconcile), until a cache is
    added: the new one has not loaded yet."""
    engaged = Cluster("c", client)
    try:
        engaged.cache(CONFIG_MAPS, "default")
        await engaged.wait_synced(10)
        assert engaged.synced and engaged.synced
        added = engaged.cache(CONFIG_MAPS, "kube-system")
        assert not added.synced.is_set() and not engaged.synced
        await engaged.wait_synced(10)
        assert added.synced.is_set() and engaged.synced
        engaged.cache(CONFIG_MAPS, "default")  # a cache asked for again is no new one
        assert engaged.synced
    finally:
        await engaged.stop()


async def test_one_view_asked_for_in_several_spellings_is_one_informer(cluster: ClusterInfo,
                                                                       client: ClusterClient) -> None:
    """A reconciler asks for its caches on every reconcile (answered from a memo of its arguments): a selector as a
    mapping or a string, a namespace given for a cluster-scoped kind, all name the same view."""
    engaged = Cluster("c", client)
    try:
        by_string = engaged.informer(CONFIG_MAPS, "default", "app=web")
        assert engaged.informer(CONFIG_MAPS, "default", {"app": "web"}) is by_string
        assert engaged.informer(CONFIG_MAPS, "default", "app=web") is by_string
        assert engaged.informer(CONFIG_MAPS, "default", "app=api") is not by_string
        namespaces = engaged.informer(NAMESPACES)
        assert engaged.informer(NAMESPACES, "default") is namespaces
        assert len(engaged.informers()) == 3
    finally:
        await engaged.stop()
    with pytest.raises(RuntimeError, match="disengaged"):
        engaged.informer(CONFIG_MAPS, "default", "app=web")  # remembered views go with the rest


async def test_an_informer_of_the_server_in_this_process_loads_by_watch_list() -> None:
    """One watch with sendInitialEvents instead of a list and a watch: the snapshot, then the changes after it."""
    server = Apiserver(None)
    await server.add_cluster("one", controllers=False)
    await server.start()
    asked: list[tuple[str, dict[str, str]]] = []
    real = inprocess.InProcess.request

    async def counted(self: inprocess.InProcess, token: str | None, method: str, path: str, query: Any,
                      *args: Any, **kwargs: Any) -> Any:
        asked.append((method, dict(query)))
        return await real(self, token, method, path, query, *args, **kwargs)

    local = ClusterClient(ClientConfig(server="https://127.0.0.1:1/clusters/one", ca_data=server.ca_pem.encode(),
                                       token=server.cluster_token("one"), retry=RetryPolicy(attempts=1)),
                          in_process=server.in_process("one"))
    informer = Informer(local, CONFIG_MAPS, namespace="default", label_selector=MINE)
    events: list[Event] = []
    informer.add_handler(events.append)
    try:
        for name in ("a", "b"):
            await local.create(CONFIG_MAPS, cm(name, v="1"))
        inprocess.InProcess.request = counted  # type: ignore[method-assign]
        informer.start()
        await informer.cache.wait_synced(10)
        assert informer.watch_list
        assert sorted(e.obj["metadata"]["name"] for e in events) == ["a", "b"]
        assert [(m, q.get("watch"), q.get("sendInitialEvents")) for m, q in asked] == [("GET", "true", "true")]
        await local.patch(CONFIG_MAPS, "a", {"data": {"v": "2"}}, namespace="default")
        await eventually(lambda: len(events) == 3, message="the change after the snapshot")
        assert events[-1].type == MODIFIED and events[-1].obj["data"] == {"v": "2"}
        assert informer.cache.resource_version == events[-1].obj["metadata"]["resourceVersion"]
    finally:
        inprocess.InProcess.request = real  # type: ignore[method-assign]
        await informer.stop()
        await local.close()
        await server.stop()


@pytest.mark.parametrize("refusal", [BadRequest, Invalid])
async def test_a_server_that_refuses_watch_list_gets_a_list_and_a_watch(cluster: ClusterInfo, client: ClusterClient,
                                                                         refusal: type[ApiError]) -> None:
    """As client-go's reflector falls back: a 400 (or upstream's 422 without the WatchList gate) to
    sendInitialEvents, and the informer lists from then on."""
    await client.create(CONFIG_MAPS, cm("there", v="1"))
    real_watch = client.watch
    refused: list[bool] = []

    def refusing(*args: Any, send_initial_events: bool | None = None, **kwargs: Any) -> Any:
        if send_initial_events:
            refused.append(True)
            raise refusal(400, {"message": "sendInitialEvents: Forbidden"}, method="GET", path="/")
        return real_watch(*args, **kwargs)

    informer = Informer(client, CONFIG_MAPS, namespace="default", label_selector=MINE, watch_list=True)
    client.watch = refusing  # type: ignore[method-assign]
    informer.start()
    try:
        await informer.cache.wait_synced(10)
        assert refused == [True] and not informer.watch_list
        assert informer.cache.get(("default", "there")) is not None
        await client.create(CONFIG_MAPS, cm("later", v="1"))
        await eventually(lambda: informer.cache.get(("default", "later")) is not None, message="watched after a list")
    finally:
        await informer.stop()
