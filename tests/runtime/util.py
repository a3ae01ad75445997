"""Helpers for the runtime tests: async waiting with deadlines, clients, a TCP proxy that can be cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from clusterset.client import ClusterClient, load_kubeconfig
from clusterset.runtime.cache import Cache
from clusterset.testing import ClusterInfo

T = TypeVar("T")


@overload
async def eventually(predicate: Callable[[], Awaitable[T | None]], timeout: float = ..., interval: float = ...,
                     message: str = ...) -> T: ...


@overload
async def eventually(predicate: Callable[[], T | None], timeout: float = ..., interval: float = ...,
                     message: str = ...) -> T: ...


async def eventually(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02,
                     message: str = "condition") -> Any:
    """Polls `predicate` (sync or async) until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


def client_of(info: ClusterInfo, **overrides: Any) -> ClusterClient:
    config = load_kubeconfig(str(info.kubeconfig))
    for key, value in overrides.items():
        setattr(config, key, value)
    return ClusterClient.from_config(config)


def snapshot(cache: Cache) -> dict[str, str]:
    """name → resourceVersion of every cached object."""
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cache.list()}


def listed(answer: dict[str, Any]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in answer["items"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


MINE = "test=runtime"  # the label selector of every object the tests create (not kube-root-ca.crt)


def cm(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"test": "runtime"}}, "data": data}


class Proxy:
    """A TCP forwarder to the API server that a test can cut: `cut()` drops every live connection
    (a watch broken mid-stream) and refuses new ones until `restore()`."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.target_port = host, port
        self.blocked = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()

    def cut(self) -> None:
        self.blocked = True
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.blocked = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
