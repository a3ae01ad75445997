"""Fixtures of the client tests: a ClusterClient on a fresh logical cluster, a fault-injecting HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from clusterset.client import ClusterClient
from clusterset.testing import ClusterInfo


@pytest.fixture
async def client(cluster: ClusterInfo) -> AsyncIterator[ClusterClient]:
    """A client built the way users build one: from the cluster's kubeconfig file."""
    async with await ClusterClient.from_kubeconfig(str(cluster.kubeconfig)) as c:
        yield c


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultServer:
    """A tiny plain-HTTP server whose every request goes to `handler` and is recorded in `requests`."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.handler: Handler | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        sockets = self.runner.addresses
        self.url = f"http://127.0.0.1:{sockets[0][1]}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        assert self.handler is not None
        return await self.handler(request)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    server = FaultServer()
    await server.start()
    yield server
    await server.stop()
