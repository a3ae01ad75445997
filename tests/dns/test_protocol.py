"""The server as a DNS server: sync, other zones, forwarding, EDNS0, bad input, TCP limits."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import dns.message
import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from clusterset.api.mcs import SERVICE_IMPORTS
from clusterset.client import ClientConfig, ClusterClient, RetryPolicy
from clusterset.dns import DnsServer, parse_address
from tests.dns.util import ZONE, eventually, query, raw_udp, rcode, service_import, values

WEB = f"web.default.svc.{ZONE}"


def header(flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0, id_: int = 0x1234) -> bytes:
    return struct.pack("!HHHHHH", id_, flags, qd, an, ns, ar)


def question(name: str, qtype: int = 1) -> bytes:
    return b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)


class Upstream:
    """A tiny DNS server of our own: answers every A question with 192.0.2.1, over UDP and TCP."""

    def __init__(self) -> None:
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None
        self.port = 0
        self.seen: list[str] = []

    def answer(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        self.seen.append(str(request.q.qname))
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
        return bytes(reply.pack())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data), addr)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            size = int.from_bytes(await reader.readexactly(2), "big")
            out = self.answer(await reader.readexactly(size))
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
            writer.close()

        self.tcp = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.tcp.sockets[0].getsockname()[1]
        self.udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", self.port))

    async def stop(self) -> None:
        if self.udp:
            self.udp.close()
        if self.tcp:
            self.tcp.close()
            await self.tcp.wait_closed()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


async def test_servfail_until_synced_never_nxdomain() -> None:
    """A member it cannot list yet: every name it would answer from objects is SERVFAIL, not NXDOMAIN."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    unreachable = ClusterClient.from_config(ClientConfig(server=f"https://127.0.0.1:{closed}", token="x",
                                                         retry=RetryPolicy(attempts=1)))
    server = DnsServer(unreachable)
    try:
        await server.start("127.0.0.1", 0)
        assert not server.synced
        for name in (WEB, f"default.svc.{ZONE}", f"_http._tcp.{WEB}", f"nope.nope.svc.{ZONE}"):
            for tcp in (False, True):
                assert rcode(await query(server.port, name, tcp=tcp)) == "SERVFAIL", name
        # what needs no object is answered at once
        assert values(await query(server.port, f"dns-version.{ZONE}", "TXT")) == {'"1.0.0"'}
    finally:
        await server.stop()
        await unreachable.close()


async def test_other_zones_are_refused_without_an_upstream(dns_server: DnsServer) -> None:
    for tcp in (False, True):
        answer = await query(dns_server.port, "example.com", tcp=tcp)
        assert rcode(answer) == "REFUSED" and str(answer.question[0].name) == "example.com."
    assert rcode(await query(dns_server.port, "cluster.local", "SOA")) == "REFUSED"


async def test_other_zones_go_to_the_upstream(client: ClusterClient, upstream: Upstream) -> None:
    server = DnsServer(client, upstream=("127.0.0.1", upstream.port))
    await server.start("127.0.0.1", 0)
    try:
        await server.wait_synced(10)
        for tcp in (False, True):
            answer = await query(server.port, "www.example.com", tcp=tcp)
            assert rcode(answer) == "NOERROR" and values(answer) == {"192.0.2.1"}
        assert upstream.seen == ["www.example.com.", "www.example.com."]
        # the zone itself is still ours
        assert rcode(await query(server.port, f"dns-version.{ZONE}", "TXT")) == "NOERROR"
        assert len(upstream.seen) == 2
    finally:
        await server.stop()


def silent_upstream() -> tuple[socket.socket, socket.socket]:
    """A UDP socket that never answers and a TCP listener that never accepts, on one port: a port free for UDP
    may be taken for TCP (another worker's server), so ports are tried until both binds succeed."""
    for _ in range(50):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.1", silent.getsockname()[1]))
        except OSError:
            silent.close()
            listener.close()
            continue
        listener.listen()
        return silent, listener
    raise RuntimeError("no port free for both UDP and TCP")


async def test_an_upstream_that_does_not_answer_is_servfail_within_the_deadline(client: ClusterClient) -> None:
    silent, listener = silent_upstream()
    server = DnsServer(client, upstream=("127.0.0.1", silent.getsockname()[1]), upstream_timeout=0.3)
    await server.start("127.0.0.1", 0)
    try:
        for tcp in (False, True):
            started = time.monotonic()
            assert rcode(await query(server.port, "www.example.com", tcp=tcp)) == "SERVFAIL"
            assert time.monotonic() - started < 2
    finally:
        await server.stop()
        silent.close()
        listener.close()


async def test_edns0_payload_size_and_version(client: ClusterClient, dns_server: DnsServer) -> None:
    await client.create(SERVICE_IMPORTS, service_import("web", ips=["10.42.0.7"]))

    async def ready() -> bool:
        return values(await query(dns_server.port, WEB, edns=1232)) == {"10.42.0.7"}

    await eventually(ready)
    answer = await query(dns_server.port, WEB, edns=1232)
    assert answer.edns == 0 and answer.payload == 1232
    plain = await query(dns_server.port, WEB)
    assert plain.edns == -1  # no OPT RR to a client that sent none
    q = dns.message.make_query(WEB, "A", use_edns=1)
    raw = await raw_udp(dns_server.port, q.to_wire())
    assert raw is not None
    assert dns.message.from_wire(raw).rcode() == 16  # BADVERS


@pytest.mark.parametrize(("name", "payload", "expect"), [
    ("too short", b"\x12\x34\x01", None),
    ("header only", header(qd=0), "FORMERR"),
    ("two questions", header(qd=2) + question(WEB) + question(WEB), "FORMERR"),
    ("cut question", header() + question(WEB)[:-3], "FORMERR"),
    ("label past the end", header() + b"\x3fabc", "FORMERR"),
    ("compression pointer", header() + b"\xc0\x0c\x00\x01\x00\x01", "FORMERR"),
    ("answers in a query", header(an=1) + question(WEB), "FORMERR"),
    ("opcode STATUS", header(flags=0x1100) + question(WEB), "NOTIMP"),
    ("opcode NOTIFY", header(flags=0x2000) + question(ZONE, 6), "NOTIMP"),
    ("a response", header(flags=0x8180) + question(WEB), None),
    ("oversized garbage", header() + bytes(range(1, 256)) * 16, "FORMERR"),
    ("trailing bytes", header() + question(f"dns-version.{ZONE}", 16) + bytes(3000), "NOERROR"),
    ("root name", header() + question("", 2)[1:], "REFUSED"),
    ("31 labels", header() + question(".".join(["a"] * 31) + f".{ZONE}"), "NXDOMAIN"),
    ("name over 255 octets", header() + question(".".join(["a" * 63] * 4) + f".{ZONE}"), "FORMERR"),
    ("unknown qtype", header() + question(f"dns-version.{ZONE}", 65280), "NOERROR"),
])
async def test_bad_input_gets_an_error_or_nothing_and_the_server_carries_on(
        dns_server: DnsServer, name: str, payload: bytes, expect: str | None) -> None:
    answer = await raw_udp(dns_server.port, payload, timeout=0.3 if expect is None else 2)
    if expect is None:
        assert answer is None
    else:
        assert answer is not None and answer[:2] == payload[:2]
        assert dns.rcode.to_text(answer[3] & 0xF) == expect
        assert answer[2] & 0x80  # a response
    # the same over TCP
    reader, writer = await asyncio.open_connection("127.0.0.1", dns_server.port)
    writer.write(len(payload).to_bytes(2, "big") + payload)
    await writer.drain()
    if expect is not None:
        size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 2), "big")
        assert (await reader.readexactly(size))[:2] == payload[:2]
    writer.close()
    # and a good query is still answered, over both
    for tcp in (False, True):
        assert rcode(await query(dns_server.port, f"dns-version.{ZONE}", "TXT", tcp)) == "NOERROR"


async def test_tcp_keeps_a_connection_for_several_queries_and_closes_idle_ones(client: ClusterClient) -> None:
    server = DnsServer(client, tcp_idle_timeout=0.5, max_tcp_connections=2)
    await server.start("127.0.0.1", 0)
    try:
        await server.wait_synced(10)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for i in range(3):  # several queries on one connection, answered in order
            q = dns.message.make_query(f"dns-version.{ZONE}", "TXT", id=100 + i).to_wire()
            writer.write(len(q).to_bytes(2, "big") + q)
        await writer.drain()
        for i in range(3):
            size = int.from_bytes(await reader.readexactly(2), "big")
            assert dns.message.from_wire(await reader.readexactly(size)).id == 100 + i
        # a second connection is allowed, a third is closed at once
        _, w2 = await asyncio.open_connection("127.0.0.1", server.port)
        r3, w3 = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(r3.read(), 2) == b""
        # the idle ones are closed after the timeout
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        assert time.monotonic() - started < 2
        for w in (writer, w2, w3):
            w.close()
        # a connection that sends half a message is closed after the timeout too, and others are served
        r4, w4 = await asyncio.open_connection("127.0.0.1", server.port)
        w4.write(b"\x00\x40abc")
        assert await asyncio.wait_for(r4.read(), 3) == b""
        w4.close()
        assert rcode(await query(server.port, f"dns-version.{ZONE}", "TXT", tcp=True)) == "NOERROR"
    finally:
        await server.stop()


def test_listen_addresses_parse() -> None:
    assert parse_address("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_address("[::1]:53") == ("::1", 53)
    assert parse_address(":0") == ("127.0.0.1", 0)
    for bad in ("127.0.0.1", "host:port", "::1:53", "1.2.3.4:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)
