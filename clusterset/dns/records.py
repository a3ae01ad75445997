"""The records of `clusterset.local` (mcs.md §9-§10) as pure functions of a ServiceImport and its slices.

Everything here is data in, data out: no I/O, no DNS wire format, so each rule of the spec is a unit test.
A service's records are a map from owner name (lowercase, absolute, no trailing dot) to its RRsets; a name
that is not in the map does not exist (NXDOMAIN), a name mapped to no RRset of the asked type is NODATA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterset.api.mcs import SOURCE_CLUSTER_LABEL

TTL = 5  # CoreDNS multicluster's, for every record but dns-version (not configurable there either)
VERSION_TTL = 28800  # the spec's example for dns-version
DNS_VERSION = "1.0.0"  # the schema version of the spec we implement (CoreDNS says 1.1.0, mcs.md §10)
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400  # CoreDNS's SOA timers

A, NS, SOA, TXT, AAAA, SRV, OPT, ANY = 1, 2, 6, 16, 28, 33, 41, 255
IN = 1


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int = SOA_REFRESH
    retry: int = SOA_RETRY
    expire: int = SOA_EXPIRE
    minimum: int = TTL


@dataclass(frozen=True)
class Record:
    """One RR. `data` is an IP address (A/AAAA), a target name (NS), a string (TXT), an Srv or a Soa."""

    name: str
    type: int
    ttl: int
    data: str | Srv | Soa


RRsets = dict[int, list[Record]]
Names = dict[str, RRsets]


@dataclass(frozen=True)
class Endpoint:
    """One ready address of an imported slice, with the per-pod name it answers under."""

    cluster: str
    hostname: str
    address: str
    family: int  # A or AAAA


def fqdn(*labels: str) -> str:
    return ".".join(labels)


def valid_name(name: str) -> bool:
    """Fits a DNS name: labels of 1 to 63 octets, at most 253 characters (objects may hold longer values)."""
    return len(name) <= 253 and all(0 < len(label) <= 63 and label.isascii() for label in name.split("."))


def dashed(address: str) -> str:
    """CoreDNS's hostname for an endpoint without one: its IP with `.` and `:` turned into `-`."""
    return address.replace(".", "-").replace(":", "-")


def family_of(address: str) -> int | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return A if ip.version == 4 else AAAA


def zone_records(zone: str, serial: int) -> Names:
    """The names every zone has: the apex (SOA, NS) and `dns-version` (TXT)."""
    soa = Soa(fqdn("ns.dns", zone), fqdn("hostmaster", zone), serial)
    return {
        zone: {SOA: [Record(zone, SOA, TTL, soa)], NS: [Record(zone, NS, TTL, soa.mname)]},
        fqdn("dns-version", zone): {TXT: [Record(fqdn("dns-version", zone), TXT, VERSION_TTL, DNS_VERSION)]},
    }


def soa_record(zone: str, serial: int) -> Record:
    """The SOA that negative answers carry in their authority section."""
    return zone_records(zone, serial)[zone][SOA][0]


def ready_endpoints(slices: Iterable[Mapping[str, Any]]) -> list[Endpoint]:
    """The ready addresses (ready unset counts as ready) of slices that name their source cluster, deduplicated
    by (cluster, hostname, address), in the slices' order."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Endpoint] = []
    for eps in slices:
        cluster = str(((eps.get("metadata") or {}).get("labels") or {}).get(SOURCE_CLUSTER_LABEL) or "").lower()
        if not cluster:
            continue  # not an MCS slice: the label is mandatory (mcs.md §8)
        for endpoint in eps.get("endpoints") or []:
            if not isinstance(endpoint, Mapping) or (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            hostname = str(endpoint.get("hostname") or "").lower()
            for address in endpoint.get("addresses") or []:
                family = family_of(str(address))
                if family is None:
                    continue  # FQDN slices and garbage: nothing to answer with
                address = str(ipaddress.ip_address(str(address)))
                key = (cluster, hostname or dashed(address), address)
                if key not in seen:
                    seen.add(key)
                    out.append(Endpoint(cluster, key[1], address, family))
    return out


def _ports(spec: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(name, protocol, port) of the import's ports, lowercased; ports without a number are skipped."""
    out = []
    for port in spec.get("ports") or []:
        if isinstance(port, Mapping) and isinstance(port.get("port"), int):
            out.append((str(port.get("name") or "").lower(), str(port.get("protocol") or "TCP").lower(),
                        int(port["port"])))
    return out


def _srv_set(owner: str, targets: Iterable[tuple[str, int]]) -> list[Record]:
    """SRV records for (target, port) pairs, deduplicated, priority 0 and weight ⌊100/N⌋ as CoreDNS."""
    unique = list(dict.fromkeys(targets))
    weight = 100 // len(unique) if unique else 0
    return [Record(owner, SRV, TTL, Srv(0, weight, port, target)) for target, port in unique]


def _add(names: Names, name: str, record: Record) -> None:
    rrset = names.setdefault(name, {}).setdefault(record.type, [])
    if record not in rrset:
        rrset.append(record)


def service_records(zone: str, namespace: str, name: str, service_import: Mapping[str, Any],
                    slices: Iterable[Mapping[str, Any]]) -> Names:
    """Every name under `<name>.<namespace>.svc.<zone>` with its RRsets (mcs.md §9 rows 2-6, §10).

    ClusterSetIP: A/AAAA from `spec.ips`; SRV per named port (`_<port>._<proto>`) and, on the bare name, per port
    deduplicated by (target, port), all targeting the service name. Headless: A/AAAA of every ready endpoint;
    SRV per ready endpoint x port targeting its per-pod name; no ready endpoint → no name at all (NXDOMAIN).
    Per-pod names `<hostname>.<clusterid>` exist for both types, as CoreDNS answers them.
    """
    base = fqdn(name, namespace, "svc", zone).lower()
    if not valid_name(base):
        return {}
    spec = service_import.get("spec") or {}
    headless = spec.get("type") == "Headless"
    ports = [p for p in _ports(spec) if valid_name(p[0] or "x") and valid_name(p[1])]
    endpoints = [e for e in ready_endpoints(slices) if valid_name(fqdn(e.hostname, e.cluster, base))]
    if headless and not endpoints:
        return {}  # spec row 4: no ready endpoints → NXDOMAIN
    names: Names = {base: {}}

    for ep in endpoints:
        pod = fqdn(ep.hostname, ep.cluster, base)
        _add(names, pod, Record(pod, ep.family, TTL, ep.address))

    if headless:
        for ep in endpoints:
            _add(names, base, Record(base, ep.family, TTL, ep.address))
        targets = list(dict.fromkeys(fqdn(e.hostname, e.cluster, base) for e in endpoints))
    else:
        for ip in spec.get("ips") or []:
            family = family_of(str(ip))
            if family is not None:
                _add(names, base, Record(base, family, TTL, str(ipaddress.ip_address(str(ip)))))
        targets = [base]

    # the bare name: every port matches, unnamed ones included (CoreDNS; conformance queries it)
    bare = _srv_set(base, ((t, port) for t in targets for _, _, port in ports))
    if bare:
        names[base][SRV] = bare
    for port_name, protocol, port in ports:
        if not port_name:
            continue  # spec row 3/6: unnamed ports get no `_<port>._<proto>` name
        owner = fqdn(f"_{port_name}", f"_{protocol}", base)
        names[owner] = {SRV: _srv_set(owner, ((t, port) for t in targets))}
    return names
