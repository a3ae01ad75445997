"""The `clusterset.local` DNS server of one member: asyncio UDP and TCP on one port, answers from a Zone.

The hot path is `_Udp.datagram_received`: a plain one-question query whose lowercase question is in the
zone's cache gets `ID + prepared header + its own question + packed rest` without being parsed. Everything
else (EDNS0, truncation, errors, names not cached yet, names outside the zone) goes through `handle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Iterable
from typing import Any, cast

from clusterset.api.mcs import CLUSTERSET_ZONE
from clusterset.client import ClusterClient
from clusterset.dns import wire
from clusterset.dns.ports import LastingPorts
from clusterset.dns.source import ClusterSource
from clusterset.dns.zone import Zone
from clusterset.runtime import Cluster

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 << 20  # a burst of queries waits in the kernel instead of being dropped (limits.md §A)
MAX_TCP_MESSAGE = 65535
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QDCOUNT 1, no other section: the hot path's queries
_LASTING = LastingPorts()  # one cursor per process: a fleet's servers get neighbouring ports
LASTING_TRIES = 64  # taken ones in a row before any free port will do


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`ADDR:PORT`, `[V6ADDR]:PORT` or `:PORT` → (host, port); ValueError when it is none of them."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r} is not ADDR:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in host and not text.startswith("["):
        raise ValueError(f"{text!r}: write an IPv6 address as [ADDR]:PORT")
    return host or default_host, int(port_text)


class DnsServer:
    """Serves `zone` for one member from its objects; `await start(host, port)` (port 0: a free port, the same
    for UDP and TCP, below the ephemeral range when one is free there: `ports.py`), `await stop()`. Until its
    caches have loaded, names it would answer from objects get SERVFAIL (never NXDOMAIN). Names outside the zone
    are forwarded to `upstream` (host, port), else REFUSED."""

    def __init__(self, source: ClusterClient | Cluster, zone: str = CLUSTERSET_ZONE,
                 upstream: tuple[str, int] | None = None, *, tcp_idle_timeout: float = 10.0,
                 max_tcp_connections: int = 256, upstream_timeout: float = 2.0, max_forwards: int = 256) -> None:
        self._given = source
        self.zone_name = zone
        self.upstream = upstream
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.upstream_timeout = upstream_timeout
        self.max_forwards = max_forwards
        self.host = ""
        self.port = 0
        self.zone: Zone | None = None
        self.source: ClusterSource | None = None
        self._cluster: Cluster | None = None
        self._own_cluster = False
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def synced(self) -> bool:
        return self.source is not None and self.source.synced

    async def wait_synced(self, timeout: float | None = None) -> None:
        if self.source is None:
            raise RuntimeError("the DNS server has not started")
        await self.source.wait_synced(timeout)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Starts reading the member and listening; returns the port."""
        if isinstance(self._given, Cluster):
            self._cluster = self._given
        else:
            self._cluster, self._own_cluster = Cluster(self._given.name or "member", self._given), True
        self.source = ClusterSource(self._cluster)
        self.zone = Zone(self.source, self.zone_name)
        self.source.attach(self.zone)
        try:
            udp, tcp = _bind(host, port)
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        except BaseException:
            await self.stop()
            raise
        self.host, self.port = host, tcp.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 5)
            self._tcp = None
        if self.source is not None:
            self.source.detach()
        if self._own_cluster and self._cluster is not None:
            await self._cluster.stop()
        self._cluster = None

    # ------------------------------------------------------------------ answering
    def handle(self, data: bytes, udp: bool) -> bytes | wire.Query | None:
        """The response to a message; a Query when it is to be forwarded upstream; None to drop it."""
        query = wire.parse(data)
        if not isinstance(query, wire.Query):
            return query
        if query.edns is not None and query.edns_version > 0:
            return wire.short(query, wire.BADVERS)
        entry = self.zone.resolve(query) if self.zone is not None else None
        if entry is None:
            return query if self.upstream is not None else wire.short(query, wire.REFUSED)
        return wire.respond(entry, query, udp)

    def answer_udp(self, data: bytes, addr: Any, transport: asyncio.DatagramTransport) -> None:
        try:
            out = self.handle(data, udp=True)
        except Exception:
            log.exception("answering a query failed")
            return
        if isinstance(out, wire.Query):
            if len(self._tasks) >= self.max_forwards:
                transport.sendto(wire.short(out, wire.SERVFAIL), addr)
                return
            self._spawn(self._forward_udp(data, out, addr, transport))
        elif out is not None:
            transport.sendto(out, addr)

    async def _forward_udp(self, data: bytes, query: wire.Query, addr: Any,
                           transport: asyncio.DatagramTransport) -> None:
        out = await self._ask_upstream(data, tcp=False)
        if not transport.is_closing():
            transport.sendto(out if out is not None else wire.short(query, wire.SERVFAIL), addr)

    async def _ask_upstream(self, data: bytes, tcp: bool) -> bytes | None:
        """The upstream's answer to `data` as it sent it, or None when it did not answer within the deadline."""
        assert self.upstream is not None
        try:
            async with asyncio.timeout(self.upstream_timeout):
                return await (_ask_tcp(self.upstream, data) if tcp else _ask_udp(self.upstream, data))
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            log.info("upstream %s did not answer: %r", self.upstream, exc)
            return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Length-prefixed queries on one connection, answered in order, until the client closes or is idle."""
        if len(self._connections) >= self.max_tcp_connections:
            writer.close()
            return
        self._connections.add(writer)
        try:
            while True:
                async with asyncio.timeout(self.tcp_idle_timeout):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                out = self.handle(data, udp=False)
                if isinstance(out, wire.Query):
                    answer = await self._ask_upstream(data, tcp=True)
                    out = answer if answer is not None else wire.short(out, wire.SERVFAIL)
                elif isinstance(out, bytes) and len(out) > MAX_TCP_MESSAGE:
                    query = wire.parse(data)
                    out = wire.short(query, 0, tc=True) if isinstance(query, wire.Query) else None
                if out is None:
                    continue
                writer.write(len(out).to_bytes(2, "big") + out)
                async with asyncio.timeout(self.tcp_idle_timeout):
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("serving a TCP connection failed")
        finally:
            self._connections.discard(writer)
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.entries = server.zone.entries if server.zone is not None else {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # asyncio's own is not a subclass of it

    def datagram_received(self, data: bytes, addr: Any) -> None:
        transport = self.transport
        if transport is None:
            return
        n = len(data)
        if n > 16 and data[4:12] == _ONE_QUESTION and not data[2] & 0xF8:
            entry = self.entries.get(data[12:n - 4].lower() + data[n - 4:])
            if entry is not None and entry.small:
                transport.sendto(data[:2] + entry.pre[data[2] & 1] + data[12:] + entry.suffix, addr)
                return
        self.server.answer_udp(data, addr, transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %r", exc)


def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same port (port 0: a port both can have, below the ephemeral range if
    one is free there, so that it is still free when a restart asks for it again)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tries: Iterable[int] = [port] if port else itertools.chain(_LASTING.candidates(LASTING_TRIES), [0] * 50)
    for candidate in tries:
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            _receive_buffer(udp)
            udp.bind((host, candidate))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(f"no port free for both UDP and TCP on {host}")


def _receive_buffer(sock: socket.socket) -> None:
    """A large receive buffer: SO_RCVBUFFORCE passes the system's cap when we may, else as much as allowed."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
            return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


class _Answer(asyncio.DatagramProtocol):
    """Waits for the datagram answering one forwarded query (same ID)."""

    def __init__(self, query_id: bytes, done: asyncio.Future[bytes]) -> None:
        self.query_id = query_id
        self.done = done

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:2] == self.query_id and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def _ask_udp(upstream: tuple[str, int], data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Answer(data[:2], done), remote_addr=upstream)
    try:
        transport.sendto(data)
        return await done
    finally:
        transport.close()


async def _ask_tcp(upstream: tuple[str, int], data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(len(data).to_bytes(2, "big") + data)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(size)
    finally:
        writer.close()
