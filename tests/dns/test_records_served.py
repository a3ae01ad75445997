"""Every record of mcs.md §9/§10, from a member's ServiceImports and imported EndpointSlices, over UDP and TCP."""

from __future__ import annotations

import pytest

from clusterset.api.mcs import SERVICE_IMPORTS
from clusterset.api.resources import ENDPOINT_SLICES, NAMESPACES
from clusterset.client import ClusterClient
from clusterset.dns import DnsServer
from tests.dns.util import (
    ZONE,
    endpoint,
    endpoint_slice,
    eventually,
    query,
    rcode,
    service_import,
    texts,
    values,
)

WEB = f"web.default.svc.{ZONE}"
DB = f"db.default.svc.{ZONE}"


async def clusterset_ip(client: ClusterClient, server: DnsServer) -> None:
    await client.create(SERVICE_IMPORTS, service_import(
        "web", ips=["10.42.0.7", "fd00:42::7"],
        ports=[{"name": "http", "protocol": "TCP", "port": 80}, {"name": "dns", "protocol": "UDP", "port": 53},
               {"name": "tcp-42", "protocol": "TCP", "port": 42}, {"name": "udp-42", "protocol": "UDP", "port": 42}]))

    async def ready() -> bool:
        return rcode(await query(server.port, WEB)) == "NOERROR"

    await eventually(ready, message="the ClusterSetIP service")


async def headless(client: ClusterClient, server: DnsServer) -> None:
    await client.create(SERVICE_IMPORTS, service_import("db", "Headless", ports=[
        {"name": "pg", "protocol": "TCP", "port": 5432}, {"name": "metrics", "protocol": "TCP", "port": 9187}]))
    await client.create(ENDPOINT_SLICES, endpoint_slice("db-a", "db", "cluster-a", [
        endpoint("10.1.0.1", "db-0"), endpoint("10.1.0.2"), endpoint("10.1.0.3", "db-2", ready=False),
        endpoint("10.1.0.4", "db-3", ready=None)]))
    await client.create(ENDPOINT_SLICES, endpoint_slice("db-b", "db", "cluster-b", [endpoint("10.2.0.1", "db-0")]))
    await client.create(ENDPOINT_SLICES, endpoint_slice("db-b6", "db", "cluster-b", [endpoint("fd00:2::1", "db-0")],
                                                        address_type="IPv6"))

    async def ready() -> bool:
        return len(values(await query(server.port, DB))) == 4 and len(values(await query(server.port, DB, "AAAA"))) == 1

    await eventually(ready, message="the headless service's endpoints")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_clusterset_ip_a_aaaa_and_srv(client: ClusterClient, dns_server: DnsServer, tcp: bool) -> None:
    await clusterset_ip(client, dns_server)
    port = dns_server.port
    a = await query(port, WEB, "A", tcp)
    assert texts(a) == {f"{WEB}. 5 A 10.42.0.7"} and a.flags & 0x0400  # authoritative
    assert texts(await query(port, WEB, "AAAA", tcp)) == {f"{WEB}. 5 AAAA fd00:42::7"}

    srv = await query(port, f"_http._tcp.{WEB}", "SRV", tcp)
    assert texts(srv) == {f"_http._tcp.{WEB}. 5 SRV 0 100 80 {WEB}."}
    assert texts(srv, "additional") == {f"{WEB}. 5 A 10.42.0.7", f"{WEB}. 5 AAAA fd00:42::7"}
    assert values(await query(port, f"_dns._udp.{WEB}", "SRV", tcp)) == {f"0 100 53 {WEB}."}
    # a port name under the wrong protocol does not exist
    assert rcode(await query(port, f"_dns._tcp.{WEB}", "SRV", tcp)) == "NXDOMAIN"

    # the bare name: one SRV per (target, port), so tcp/42 and udp/42 are one record
    bare = await query(port, WEB, "SRV", tcp)
    assert sorted(v.split()[2] for v in values(bare)) == ["42", "53", "80"]
    assert len(bare.answer[0]) == 3


async def test_a_clusterset_ip_service_without_ips_is_nodata(client: ClusterClient, dns_server: DnsServer) -> None:
    await client.create(SERVICE_IMPORTS, service_import("pending"))
    name = f"pending.default.svc.{ZONE}"

    async def nodata() -> bool:
        answer = await query(dns_server.port, name)
        return rcode(answer) == "NOERROR" and not answer.answer and bool(answer.authority)

    await eventually(nodata, message="NODATA for an import without IPs")
    assert values(await query(dns_server.port, name, "SRV")) == {f"0 100 80 {name}."}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_headless_a_per_pod_and_srv(client: ClusterClient, dns_server: DnsServer, tcp: bool) -> None:
    await headless(client, dns_server)
    port = dns_server.port
    # ready endpoints of every cluster (ready unset counts), not-ready ones left out
    assert values(await query(port, DB, "A", tcp)) == {"10.1.0.1", "10.1.0.2", "10.1.0.4", "10.2.0.1"}
    assert values(await query(port, DB, "AAAA", tcp)) == {"fd00:2::1"}

    # per-pod names: the hostname, else the IP dashed; per cluster id
    assert values(await query(port, f"db-0.cluster-a.{DB}", "A", tcp)) == {"10.1.0.1"}
    assert values(await query(port, f"10-1-0-2.cluster-a.{DB}", "A", tcp)) == {"10.1.0.2"}
    assert values(await query(port, f"db-0.cluster-b.{DB}", "A", tcp)) == {"10.2.0.1"}
    assert values(await query(port, f"db-0.cluster-b.{DB}", "AAAA", tcp)) == {"fd00:2::1"}
    assert rcode(await query(port, f"db-2.cluster-a.{DB}", "A", tcp)) == "NXDOMAIN"  # not ready
    # the `<clusterid>.<svc>` form must not exist (mcs.md §9 row 8)
    assert rcode(await query(port, f"cluster-a.{DB}", "A", tcp)) == "NXDOMAIN"

    targets = {f"db-0.cluster-a.{DB}.", f"10-1-0-2.cluster-a.{DB}.", f"db-3.cluster-a.{DB}.",
               f"db-0.cluster-b.{DB}."}
    srv = await query(port, f"_pg._tcp.{DB}", "SRV", tcp)
    assert {(v.split()[2], v.split()[3]) for v in values(srv)} == {("5432", t) for t in targets}
    assert len(srv.answer[0]) == 4
    assert f"db-0.cluster-b.{DB}. 5 AAAA fd00:2::1" in texts(srv, "additional")
    # the bare name: every ready endpoint x every port (8 SRV and their addresses: over 512 bytes, so EDNS0)
    bare = await query(port, DB, "SRV", tcp, edns=4096)
    assert {(v.split()[2], v.split()[3]) for v in values(bare)} == {(p, t) for t in targets for p in ("5432", "9187")}
    assert len(bare.answer[0]) == 8


async def test_readiness_changes_the_answer_and_no_ready_endpoint_is_nxdomain(
        client: ClusterClient, dns_server: DnsServer) -> None:
    await headless(client, dns_server)
    port = dns_server.port
    eps = await client.get(ENDPOINT_SLICES, "db-a", "default")
    eps["endpoints"][0]["conditions"] = {"ready": False}
    await client.update(ENDPOINT_SLICES, eps)

    async def updated() -> bool:
        return values(await query(port, DB)) == {"10.1.0.2", "10.1.0.4", "10.2.0.1"}

    await eventually(updated, message="db-0 of cluster-a to leave the answer")
    for name in ("db-a", "db-b", "db-b6"):
        await client.delete(ENDPOINT_SLICES, name, "default")

    async def gone() -> bool:
        return rcode(await query(port, DB)) == "NXDOMAIN"

    await eventually(gone, message="NXDOMAIN once no endpoint is ready")
    assert rcode(await query(port, f"_pg._tcp.{DB}", "SRV")) == "NXDOMAIN"


async def test_zone_names_nodata_and_nxdomain(client: ClusterClient, dns_server: DnsServer) -> None:
    await clusterset_ip(client, dns_server)
    port = dns_server.port
    version = await query(port, f"dns-version.{ZONE}", "TXT")
    assert texts(version) == {f"dns-version.{ZONE}. 28800 TXT \"1.0.0\""}
    soa = await query(port, ZONE, "SOA")
    assert rcode(soa) == "NOERROR" and next(iter(values(soa))).startswith(f"ns.dns.{ZONE}. hostmaster.{ZONE}. ")
    assert values(await query(port, ZONE, "NS")) == {f"ns.dns.{ZONE}."}
    for name, rdtype in [(ZONE, "A"), (f"svc.{ZONE}", "A"), (f"default.svc.{ZONE}", "A"), (WEB, "TXT"),
                         (WEB, "TYPE65000"), (f"dns-version.{ZONE}", "A")]:
        answer = await query(port, name, rdtype)
        assert (rcode(answer), answer.answer) == ("NOERROR", []), (name, rdtype)
        assert [rrset.rdtype for rrset in answer.authority] == [6], (name, rdtype)  # NODATA carries the SOA
    for name in (f"nope.default.svc.{ZONE}", f"missing.svc.{ZONE}", f"web.missing.svc.{ZONE}",
                 f"other.{ZONE}", f"x.{WEB}", f"a.b.c.d.{WEB}"):
        assert rcode(await query(port, name)) == "NXDOMAIN", name
    assert rcode(await query(port, f"web.default.pod.{ZONE}")) == "NXDOMAIN"


async def test_names_are_case_insensitive_and_keep_the_query_case(client: ClusterClient, dns_server: DnsServer) -> None:
    await clusterset_ip(client, dns_server)
    for tcp in (False, True):
        answer = await query(dns_server.port, "WeB.DeFault.SVC.ClusterSet.LOCAL", "A", tcp)
        assert str(answer.question[0].name) == "WeB.DeFault.SVC.ClusterSet.LOCAL."
        assert values(answer) == {"10.42.0.7"}


async def test_a_missing_namespace_is_nxdomain(client: ClusterClient, dns_server: DnsServer) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "shop"}})
    await client.create(SERVICE_IMPORTS, service_import("cart", ips=["10.42.1.1"], namespace="shop"))
    name = f"cart.shop.svc.{ZONE}"

    async def answered() -> bool:
        return values(await query(dns_server.port, name)) == {"10.42.1.1"}

    await eventually(answered, message="the import in namespace shop")
    assert rcode(await query(dns_server.port, f"shop.svc.{ZONE}")) == "NOERROR"
    await client.delete(NAMESPACES, "shop")

    async def gone() -> bool:
        return rcode(await query(dns_server.port, f"shop.svc.{ZONE}")) == "NXDOMAIN"

    await eventually(gone, message="NXDOMAIN once the namespace is gone")
    assert rcode(await query(dns_server.port, name)) == "NXDOMAIN"


async def test_many_endpoints_truncate_over_udp_and_come_whole_over_tcp_or_edns(
        client: ClusterClient, dns_server: DnsServer) -> None:
    await client.create(SERVICE_IMPORTS, service_import("big", "Headless"))
    await client.create(ENDPOINT_SLICES, endpoint_slice(
        "big-a", "big", "cluster-a", [endpoint(f"10.9.0.{i}", f"big-{i}") for i in range(1, 101)]))
    name = f"big.default.svc.{ZONE}"

    async def tcp_answer() -> set[str]:
        answer = await query(dns_server.port, name, tcp=True)
        return values(answer) if len(values(answer)) == 100 else set()

    assert await eventually(tcp_answer, message="100 endpoints") == {f"10.9.0.{i}" for i in range(1, 101)}
    udp = await query(dns_server.port, name)
    assert udp.flags & 0x0200 and not udp.answer  # TC: the client is to ask again over TCP
    assert len(udp.to_wire()) <= 512

    big = await query(dns_server.port, name, edns=4096)  # EDNS0: the client takes 4 KiB over UDP
    assert not big.flags & 0x0200 and len(values(big)) == 100
    assert big.edns == 0 and big.payload > 512  # our OPT RR is echoed
    small = await query(dns_server.port, name, edns=1232)
    assert small.flags & 0x0200 and small.edns == 0

    # what a resolver does: UDP first, TCP on TC
    import dns.asyncquery
    import dns.message
    answer, used_tcp = await dns.asyncquery.udp_with_fallback(dns.message.make_query(name, "A"), "127.0.0.1",
                                                              port=dns_server.port, timeout=3)
    assert used_tcp and len(values(answer)) == 100
