"""A logical cluster: its store, served resources (built-ins plus its own CRDs), IP ranges, token, RBAC."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from clusterset.apiserver.auth.rbac import RbacAuthorizer
from clusterset.apiserver.kinds.apiextensions import CRD_TYPE, CRDStrategy
from clusterset.apiserver.kinds.builtins import BUILTINS
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.strategy import Strategy
from clusterset.apiserver.storage.store import ClusterStore


def storage_key(rt: ResourceType) -> str:
    """Objects are stored once per group/resource, whatever version they are served in."""
    return f"{rt.group}/{rt.plural}"


@dataclass
class Served:
    """A resource as served in one version, with the strategy that handles its writes."""

    rt: ResourceType
    strategy: Strategy

    @property
    def key(self) -> str:
        return storage_key(self.rt)


class Registry:
    """The resources a cluster serves: shared built-ins plus the cluster's established CRDs."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], Served] = {}
        self.generation = 0  # bumped on every change; discovery/OpenAPI caches key on it

    def add(self, served: Served) -> None:
        rt = served.rt
        self._by_gvr[(rt.group, rt.version, rt.plural)] = served
        self.generation += 1

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> Served | None:
        return self._by_gvr.get((group, version, plural))

    def all(self) -> list[Served]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group → versions, in insertion order (built-ins first, preferred first)."""
        out: dict[str, list[str]] = {}
        for g, v, _ in self._by_gvr:
            versions = out.setdefault(g, [])
            if v not in versions:
                versions.append(v)
        return out

    def in_group_version(self, group: str, version: str) -> list[Served]:
        return [s for (g, v, _), s in self._by_gvr.items() if g == group and v == version]

    def by_kind(self, group: str, kind: str) -> list[Served]:
        return [s for (g, _, _), s in self._by_gvr.items() if g == group and s.rt.kind == kind]


_BUILTIN_SERVED = [Served(rt, strategy) for rt, strategy in [*BUILTINS, (CRD_TYPE, CRDStrategy())]]


class IPAllocator:
    """Random free addresses from a range, as kube-apiserver's ClusterIP allocator picks them."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        self.used: set[str] = set()

    def reserve(self, ip: str) -> None:
        self.used.add(ip)

    def allocate(self, want: str | None = None) -> str:
        if want:
            try:
                addr = ipaddress.ip_address(want)
            except ValueError as exc:
                raise ValueError("must be a valid IP address") from exc
            if addr not in self.network or addr in (self.network.network_address, self.network.broadcast_address):
                raise ValueError(
                    f"the provided IP ({want}) is not in the valid range. The range of valid IPs is {self.network}"
                )
            if want in self.used:
                raise ValueError(f"failed to allocate IP {want}: provided IP is already allocated")
            self.used.add(want)
            return want
        size = self.network.num_addresses
        if len(self.used) >= min(size - 2, 1 << 20):
            raise ValueError(f"range is full: no more IPs in {self.network}")
        base = int(self.network.network_address)
        while True:
            candidate = str(ipaddress.ip_address(base + random.randrange(2, min(size - 1, 1 << 24))))
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def release(self, ip: str) -> None:
        self.used.discard(ip)


def cidrs_for(index: int) -> dict[str, str]:
    """Distinct pod and service ranges per cluster index, so IPs never collide across members.

    Services: a /22 (1,022 addresses) each from 10.96.0.0/11; pods: a /19 (8,190) each from
    10.128.0.0/9; 1,024 clusters before ranges repeat.
    """
    slot = index % 1024
    service = ipaddress.ip_network((int(ipaddress.ip_address("10.96.0.0")) + slot * 1024, 22))
    pod = ipaddress.ip_network((int(ipaddress.ip_address("10.128.0.0")) + slot * 8192, 19))
    return {
        "serviceCIDR": str(service),
        "podCIDR": str(pod),
        "serviceCIDR6": f"fd00:10:96:{slot:x}::/112",
        "podCIDR6": f"fd00:10:244:{slot:x}::/96",
    }


@dataclass
class Cluster:
    name: str
    token: str
    index: int
    store: ClusterStore
    settings: dict[str, Any] = field(default_factory=dict)
    registry: Registry = field(default_factory=Registry)
    _allocators: dict[str, IPAllocator] = field(default_factory=dict)
    _node_ports: set[int] = field(default_factory=set)
    _rbac: RbacAuthorizer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for served in _BUILTIN_SERVED:
            self.registry.add(served)

    def rbac(self) -> RbacAuthorizer:
        """The cluster's RBAC authorizer, built on first use (clusters only admins use never build it)."""
        if self._rbac is None:
            self._rbac = RbacAuthorizer(self.store)
        return self._rbac

    @property
    def service_cidr(self) -> str:
        return str(self.settings["serviceCIDR"])

    @property
    def service_cidr6(self) -> str | None:
        value = self.settings.get("serviceCIDR6")
        return str(value) if self.settings.get("dualStack") and value else None

    def ip_allocator(self, family: str) -> IPAllocator:
        if family not in self._allocators:
            cidr = self.service_cidr if family == "IPv4" else (self.service_cidr6 or self.settings["serviceCIDR6"])
            self._allocators[family] = IPAllocator(cidr)
        return self._allocators[family]

    def allocate_node_port(self) -> int:
        while True:
            port = random.randint(30000, 32767)
            if port not in self._node_ports:
                self._node_ports.add(port)
                return port

    def reserve_loaded_addresses(self) -> None:
        """After a restart: mark every stored Service's IPs and node ports as taken."""
        for entry in self.store.entries("/services"):
            spec = entry.obj.get("spec") or {}
            for ip in spec.get("clusterIPs") or []:
                if ip != "None":
                    family = "IPv6" if ":" in ip else "IPv4"
                    self.ip_allocator(family).reserve(ip)
            for port in spec.get("ports") or []:
                if "nodePort" in port:
                    self._node_ports.add(int(port["nodePort"]))
