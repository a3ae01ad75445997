"""Watch: events in order, bookmarks, initial events, large objects, the end of the stream, 410."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from clusterset.api.resources import CONFIG_MAPS
from clusterset.client import ClientConfig, ClusterClient, Gone, RetryPolicy
from clusterset.client.watch import WatchDecoder
from clusterset.testing import ServerThread
from tests.client.conftest import FaultServer


async def _collect(stream: Any, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def run() -> None:
        async with contextlib.aclosing(stream) as events:
            async for ev in events:
                out.append(ev)
                if len(out) >= count:
                    return

    await asyncio.wait_for(run(), timeout)
    return out


async def test_events_from_a_list_version(client: ClusterClient) -> None:
    rv = (await client.list(CONFIG_MAPS, namespace="default"))["metadata"]["resourceVersion"]
    await client.create(CONFIG_MAPS, {"metadata": {"name": "w", "namespace": "default"}})
    await client.patch(CONFIG_MAPS, "w", {"data": {"a": "1"}}, namespace="default")
    await client.delete(CONFIG_MAPS, "w", namespace="default")
    events = await _collect(client.watch(CONFIG_MAPS, namespace="default", resource_version=rv,
                                         allow_bookmarks=False), 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_live_events_and_bookmarks(client: ClusterClient) -> None:
    rv = (await client.list(CONFIG_MAPS, namespace="default"))["metadata"]["resourceVersion"]
    stream = client.watch(CONFIG_MAPS, namespace="default", resource_version=rv)
    seen: list[dict[str, Any]] = []

    async def consume() -> None:
        async with contextlib.aclosing(stream) as events:
            async for ev in events:
                seen.append(ev)
                if ev["type"] == "BOOKMARK" and any(e["type"] == "ADDED" for e in seen):
                    return

    task = asyncio.create_task(consume())
    created = await client.create(CONFIG_MAPS, {"metadata": {"name": "live", "namespace": "default"}})
    await asyncio.wait_for(task, 10)  # the session's server sends bookmarks every second
    added = next(e for e in seen if e["type"] == "ADDED")
    assert added["object"]["metadata"]["uid"] == created["metadata"]["uid"]
    bookmark = seen[-1]["object"]
    assert bookmark["kind"] == "ConfigMap" and int(bookmark["metadata"]["resourceVersion"]) >= int(
        created["metadata"]["resourceVersion"])


async def test_stream_ends_when_server_closes_and_no_bookmarks_unless_asked(client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, {"metadata": {"name": "pre", "namespace": "default"}})
    events = []

    async def run() -> None:
        async for ev in client.watch(CONFIG_MAPS, namespace="default", allow_bookmarks=False, timeout_seconds=2):
            events.append(ev)

    await asyncio.wait_for(run(), 10)  # ends by itself after the server's 2 s (bookmarks would come every 1 s)
    assert {e["type"] for e in events} == {"ADDED"}
    assert {e["object"]["metadata"]["name"] for e in events} == {"pre", "kube-root-ca.crt"}


async def test_send_initial_events(client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, {"metadata": {"name": "init", "namespace": "default"}})
    events = []
    async with contextlib.aclosing(client.watch(CONFIG_MAPS, namespace="default", send_initial_events=True)) as s:
        async for ev in s:
            events.append(ev)
            if ev["type"] == "BOOKMARK":
                break
    assert {e["object"]["metadata"]["name"] for e in events[:-1]} == {"init", "kube-root-ca.crt"}
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_large_object_in_small_chunks(fault_server: FaultServer) -> None:
    """A 2 MB event written 1 kB at a time, then a bookmark: both arrive whole."""
    big = "x" * 2_000_000
    first = orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": "big"}, "data": {"a": big}}}) + b"\n"
    second = orjson.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}) + b"\n"

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        payload = first + second
        for i in range(0, len(payload), 1000):
            await resp.write(payload[i:i + 1000])
        await resp.write_eof()
        return resp

    fault_server.handler = handler
    async with ClusterClient.from_config(ClientConfig(server=fault_server.url)) as c:
        events = [ev async for ev in c.watch(CONFIG_MAPS, namespace="default")]
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[0]["object"]["data"]["a"] == big


def test_decoder_any_chunking() -> None:
    lines = [orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": f"o{i}"}, "data": {"v": "é" * i}}})
             for i in range(4)]
    raw = b"\n".join(lines) + b"\n"
    for size in (1, 2, 7, 64, len(raw)):
        decoder = WatchDecoder("/x")
        got = []
        for i in range(0, len(raw), size):
            got += decoder.feed(raw[i:i + size])
        got += decoder.close()
        assert [e["object"]["metadata"]["name"] for e in got] == ["o0", "o1", "o2", "o3"], size
    decoder = WatchDecoder("/x")
    assert decoder.feed(lines[0]) == [] and len(decoder.close()) == 1  # no trailing newline


async def test_gone_after_restart_beyond_the_window(tmp_path: Path) -> None:
    first = ServerThread(tmp_path, history_size=3)
    try:
        info = first.add_cluster("w", controllers=False)
        async with await ClusterClient.from_kubeconfig(str(info.kubeconfig)) as c:
            old_rv = (await c.list(CONFIG_MAPS, namespace="default"))["metadata"]["resourceVersion"]
            await c.create(CONFIG_MAPS, {"metadata": {"name": "before", "namespace": "default"}})
    finally:
        first.stop()
    second = ServerThread(tmp_path, history_size=3)
    try:
        info = second.info("w")
        async with await ClusterClient.from_kubeconfig(str(info.kubeconfig)) as c:
            # within the window the watch resumes across the restart
            events = await _collect(c.watch(CONFIG_MAPS, namespace="default", resource_version=old_rv), 1)
            assert events[0]["object"]["metadata"]["name"] == "before"
            for i in range(6):
                await c.create(CONFIG_MAPS, {"metadata": {"name": f"n{i}", "namespace": "default"}})
            with pytest.raises(Gone) as exc:
                await _collect(c.watch(CONFIG_MAPS, namespace="default", resource_version=old_rv), 1)
            assert exc.value.status == 410 and exc.value.reason == "Expired"
            assert "too old resource version" in exc.value.message
    finally:
        second.stop()


async def test_http_410_is_gone(fault_server: FaultServer) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                                  "reason": "Expired", "message": "too old"}, status=410)

    fault_server.handler = handler
    async with ClusterClient.from_config(ClientConfig(server=fault_server.url, retry=RetryPolicy(base=0.01))) as c:
        with pytest.raises(Gone, match="too old"):
            await _collect(c.watch(CONFIG_MAPS, namespace="default", resource_version="5"), 1)
    assert len(fault_server.requests) == 1
    query = fault_server.requests[0].query
    assert query["watch"] == "true" and query["resourceVersion"] == "5" and query["allowWatchBookmarks"] == "true"


async def test_broken_stream_is_a_connection_error(fault_server: FaultServer) -> None:
    from clusterset.client import ConnectionFailed

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"ADD')
        assert request.transport is not None
        request.transport.close()  # no terminating chunk
        return resp

    fault_server.handler = handler
    async with ClusterClient.from_config(ClientConfig(server=fault_server.url)) as c:
        got: list[dict[str, Any]] = []
        with pytest.raises(ConnectionFailed, match="stream broken"):
            async for ev in c.watch(CONFIG_MAPS, namespace="default"):
                got.append(ev)
    assert [e["object"]["metadata"]["name"] for e in got] == ["a"]
