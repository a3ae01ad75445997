"""Retries against a fault-injecting server: 429 with Retry-After, 5xx, refused and dropped connections."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from aiohttp import web

from clusterset.api.resources import CONFIG_MAPS
from clusterset.client import (
    ClientConfig,
    ClusterClient,
    ConnectionFailed,
    RetryPolicy,
    ServerError,
    TooManyRequests,
)
from clusterset.client.client import USER_AGENT
from tests.client.conftest import FaultServer, Handler

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)
CM = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a", "namespace": "default"}}


Answer = tuple[int, str, str, dict[str, str]]


def status(code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return code, reason, message, headers or {}


def answers(*responses: Answer) -> Handler:
    """A handler giving the Status `responses` in turn, then the object CM."""
    queue = list(responses)

    async def handler(request: web.Request) -> web.Response:
        if not queue:
            return web.json_response(CM)
        code, reason, message, headers = queue.pop(0)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                                  "reason": reason, "message": message}, status=code, headers=headers)

    return handler


def client_for(server: FaultServer, policy: RetryPolicy = FAST) -> ClusterClient:
    return ClusterClient.from_config(ClientConfig(server=server.url, token="t", retry=policy))


async def test_429_honours_retry_after(fault_server: FaultServer) -> None:
    fault_server.handler = answers(status(429, "TooManyRequests", "slow down", {"Retry-After": "1"}))
    async with client_for(fault_server) as c:
        started = time.monotonic()
        got = await c.get(CONFIG_MAPS, "a", namespace="default")
        elapsed = time.monotonic() - started
    assert got["metadata"]["name"] == "a"
    assert len(fault_server.requests) == 2
    assert elapsed >= 1.0  # the computed backoff alone is at most 0.05 s


async def test_503_retried_then_success_and_headers(fault_server: FaultServer) -> None:
    fault_server.handler = answers(status(503, "ServiceUnavailable", "busy"),
                                   status(503, "ServiceUnavailable", "busy"))
    async with client_for(fault_server) as c:
        got = await c.get(CONFIG_MAPS, "a", namespace="default")
    assert got["kind"] == "ConfigMap" and len(fault_server.requests) == 3
    request = fault_server.requests[0]
    assert request.headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("clusterset/")
    assert request.headers["Authorization"] == "Bearer t"


async def test_attempts_are_bounded(fault_server: FaultServer) -> None:
    fault_server.handler = answers(*[status(500, "InternalError", "boom")] * 10)
    async with client_for(fault_server) as c:
        with pytest.raises(ServerError) as exc:
            await c.get(CONFIG_MAPS, "a", namespace="default")
    assert exc.value.message == "boom" and len(fault_server.requests) == FAST.attempts


async def test_post_retried_only_when_the_server_did_not_act(fault_server: FaultServer) -> None:
    # 429: rejected before processing, so a create is retried
    fault_server.handler = answers(status(429, "TooManyRequests", "later"))
    async with client_for(fault_server) as c:
        await c.create(CONFIG_MAPS, CM)
        assert len(fault_server.requests) == 2
        # a 500 without Retry-After may come after the write: a create is not retried
        fault_server.requests.clear()
        fault_server.handler = answers(status(500, "InternalError", "maybe"))
        with pytest.raises(ServerError):
            await c.create(CONFIG_MAPS, CM)
        assert len(fault_server.requests) == 1
        # 503 with Retry-After says "not done, try again"
        fault_server.requests.clear()
        fault_server.handler = answers(status(503, "ServiceUnavailable", "x", {"Retry-After": "0"}))
        await c.create(CONFIG_MAPS, CM)
        assert len(fault_server.requests) == 2
        # 429s until the attempts run out
        fault_server.requests.clear()
        fault_server.handler = answers(*[status(429, "TooManyRequests", "no")] * 10)
        with pytest.raises(TooManyRequests):
            await c.create(CONFIG_MAPS, CM)
        assert len(fault_server.requests) == FAST.attempts


async def test_dropped_connection_after_send(fault_server: FaultServer) -> None:
    drops = {"left": 1}

    async def handler(request: web.Request) -> web.StreamResponse:
        if drops["left"]:
            drops["left"] -= 1
            assert request.transport is not None
            request.transport.close()  # the request arrived; no answer
            return web.Response()
        return web.json_response(CM)

    fault_server.handler = handler
    async with client_for(fault_server) as c:
        assert (await c.get(CONFIG_MAPS, "a", namespace="default"))["kind"] == "ConfigMap"
        assert len(fault_server.requests) == 2  # GET is idempotent: retried
        fault_server.requests.clear()
        drops["left"] = 1
        with pytest.raises(ConnectionFailed):
            await c.create(CONFIG_MAPS, CM)
        assert len(fault_server.requests) == 1  # POST may have been acted on: not retried


class _RetryLogged(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying"):
            self.event.set()


async def test_connection_refused_then_success() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = _RetryLogged()
    logger = logging.getLogger("clusterset.client.client")
    logger.addHandler(seen)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    server = FaultServer()
    server.handler = answers()
    policy = RetryPolicy(attempts=20, base=0.05, cap=0.2)
    try:
        async with ClusterClient.from_config(ClientConfig(server=f"http://127.0.0.1:{port}", retry=policy)) as c:
            task = asyncio.create_task(c.create(CONFIG_MAPS, CM))  # nothing sent yet, so even POST retries
            await asyncio.wait_for(seen.event.wait(), 10)  # the first attempt was refused
            assert not task.done()
            await server.start(port)
            got = await asyncio.wait_for(task, 10)
        assert got["kind"] == "ConfigMap" and len(server.requests) == 1
    finally:
        logger.removeHandler(seen)
        logger.setLevel(old_level)
        await server.stop()


async def test_connection_refused_gives_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with ClusterClient.from_config(ClientConfig(server=f"http://127.0.0.1:{port}", retry=FAST)) as c:
        with pytest.raises(ConnectionFailed, match="after 4 attempts"):
            await c.list(CONFIG_MAPS)
