"""A logical cluster: its store, the resources it serves, its settings and token, and parts other layers own."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clusterset.apiserver.registry.registry import Registry
from clusterset.apiserver.registry.strategy import ClusterView
from clusterset.apiserver.storage.store import ClusterStore

T = TypeVar("T")


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
    """One logical cluster. What kinds and layers keep per cluster (address allocators, the RBAC index)
    hangs off `part`, so this class knows none of them."""

    name: str
    token: str
    index: int
    store: ClusterStore
    registry: Registry
    settings: dict[str, Any] = field(default_factory=dict)
    _parts: dict[Any, Any] = field(default_factory=dict, repr=False)

    def part(self, factory: Callable[[ClusterView], T]) -> T:
        """The cluster's instance of `factory`, made on first use (clusters that never need one never pay)."""
        found = self._parts.get(factory)
        if found is None:
            found = self._parts[factory] = factory(self)
        result: T = found
        return result
