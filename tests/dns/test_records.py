"""The records and the zone's cache as pure code: no server, no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dns.message

from clusterset.dns import records, wire
from clusterset.dns.zone import Zone
from tests.dns.util import endpoint, endpoint_slice, service_import

ZONE = "clusterset.local"


class Objects:
    """A Source holding objects in dicts (what the informers' caches hold)."""

    def __init__(self) -> None:
        self.synced = True
        self.namespaces = {"default"}
        self.imports: dict[tuple[str, str], dict[str, Any]] = {}
        self.slice_map: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def service_import(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.imports.get((namespace, name))

    def slices(self, namespace: str, name: str) -> list[Mapping[str, Any]]:
        return list(self.slice_map.get((namespace, name), []))


def ask(zone: Zone, name: str, rdtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=False).to_wire()
    query = wire.parse(q)
    assert isinstance(query, wire.Query)
    entry = zone.resolve(query)
    assert entry is not None
    return dns.message.from_wire(wire.respond(entry, query, udp=False))


def test_an_import_whose_namespace_is_missing_is_nxdomain() -> None:
    objs = Objects()
    objs.imports[("gone", "web")] = service_import("web", ips=["10.0.0.1"], namespace="gone")
    zone = Zone(objs, serial=1)
    assert ask(zone, f"web.gone.svc.{ZONE}").rcode() == 3
    objs.namespaces.add("gone")
    zone.namespace_changed("gone")
    assert ask(zone, f"web.gone.svc.{ZONE}").answer[0][0].to_text() == "10.0.0.1"


def test_a_change_drops_only_that_services_answers() -> None:
    objs = Objects()
    for name, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        objs.imports[("default", name)] = service_import(name, ips=[ip])
    zone = Zone(objs, serial=1)
    assert zone.warm("default", "a") == 3 * 2  # A, AAAA, SRV of the name and of `_http._tcp`
    zone.warm("default", "b")
    before = dict(zone.entries)
    objs.imports[("default", "a")] = service_import("a", ips=["10.0.0.9"])
    zone.service_changed("default", "a")
    assert all(key in zone.entries for key in before if b"\x01b\x07default" in key)
    assert not any(b"\x01a\x07default" in key for key in zone.entries)
    assert ask(zone, f"a.default.svc.{ZONE}").answer[0][0].to_text() == "10.0.0.9"


def test_not_synced_is_servfail_and_never_kept() -> None:
    objs = Objects()
    objs.synced = False
    zone = Zone(objs, serial=1)
    assert ask(zone, f"web.default.svc.{ZONE}").rcode() == 2
    assert zone.entries == {}
    objs.synced = True
    assert ask(zone, f"web.default.svc.{ZONE}").rcode() == 3


def test_two_label_cluster_ids_and_ipv6_hostnames() -> None:
    names = records.service_records(ZONE, "default", "db", service_import("db", "Headless"), [
        endpoint_slice("s", "db", "east.corp", [endpoint("fd00::1")], address_type="IPv6")])
    pod = f"fd00--1.east.corp.db.default.svc.{ZONE}"
    assert names[pod][records.AAAA][0].data == "fd00::1"
    assert f"east.corp.db.default.svc.{ZONE}" not in names


def test_srv_weights_and_dedup() -> None:
    spec = service_import("web", ips=["10.0.0.1"], ports=[
        {"name": "a", "protocol": "TCP", "port": 42}, {"name": "b", "protocol": "UDP", "port": 42},
        {"name": "c", "protocol": "TCP", "port": 43}, {"protocol": "TCP", "port": 44}])
    names = records.service_records(ZONE, "default", "web", spec, [])
    bare = names[f"web.default.svc.{ZONE}"][records.SRV]
    assert [(r.data.port, r.data.weight) for r in bare if isinstance(r.data, records.Srv)] == [
        (42, 33), (43, 33), (44, 33)]
    assert sorted(n.split(".")[0] for n in names if n.startswith("_")) == ["_a", "_b", "_c"]  # 44 is unnamed
