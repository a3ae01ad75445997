"""Helpers of the DNS tests: MCS objects as the import controller writes them, and queries with deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype

from clusterset.api.mcs import SERVICE_NAME_LABEL, SOURCE_CLUSTER_LABEL

ZONE = "clusterset.local"
MANAGED_BY = "mcs-controller.clusterset.io"


def service_import(name: str, type_: str = "ClusterSetIP", ips: list[str] | None = None,
                   ports: list[dict[str, Any]] | None = None, namespace: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "ports": ports if ports is not None else
                            [{"name": "http", "protocol": "TCP", "port": 80}]}
    if ips:
        spec["ips"] = ips
    return {"apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceImport",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint(address: str, hostname: str | None = None, ready: bool | None = True) -> dict[str, Any]:
    ep: dict[str, Any] = {"addresses": [address]}
    if hostname:
        ep["hostname"] = hostname
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    return ep


def endpoint_slice(name: str, service: str, cluster: str, endpoints: list[dict[str, Any]],
                   address_type: str = "IPv4", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": {
                SERVICE_NAME_LABEL: service, SOURCE_CLUSTER_LABEL: cluster,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "addressType": address_type, "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": endpoints}


async def query(port: int, name: str, rdtype: str = "A", tcp: bool = False, edns: int | None = None,
                host: str = "127.0.0.1") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=edns is not None, payload=edns or 1232)
    if tcp:
        return await dns.asyncquery.tcp(q, host, port=port, timeout=3)
    return await dns.asyncquery.udp(q, host, port=port, timeout=3, ignore_trailing=False)


def rcode(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def texts(message: dns.message.Message, section: str = "answer") -> set[str]:
    """The records of a section as `name TTL IN TYPE data` lines (owner names lowercased)."""
    out = set()
    for rrset in getattr(message, section):
        for rdata in rrset:
            out.add(f"{str(rrset.name).lower()} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}")
    return out


def values(message: dns.message.Message) -> set[str]:
    """The data of the answer's records (IPs, SRV text), without owner or TTL."""
    return {rdata.to_text() for rrset in message.answer for rdata in rrset}


async def eventually(check: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    """Awaits `check()` (a coroutine function) until it returns something truthy, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except Exception as exc:  # a timeout of one query is a retry, not a failure
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
        await asyncio.sleep(0.05)


async def raw_udp(port: int, payload: bytes, timeout: float = 0.5) -> bytes | None:
    """Sends one datagram; the answer, or None if none came within `timeout`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not done.done():
                done.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(payload)
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return None
    finally:
        transport.close()
