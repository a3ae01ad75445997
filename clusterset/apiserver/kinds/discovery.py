"""discovery.k8s.io: EndpointSlices."""

from __future__ import annotations

import ipaddress

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy
from clusterset.apiserver.storage.store import Obj


class EndpointSliceStrategy(NoGenerationStrategy):
    def default(self, cluster: ClusterView, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("name", "")

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        family = obj.get("addressType")
        if not family:
            errors.append(field_required("addressType"))
        elif family not in ("IPv4", "IPv6", "FQDN"):
            errors.append(field_not_supported("addressType", family, ["FQDN", "IPv4", "IPv6"]))
        for i, ep in enumerate(obj.get("endpoints") or []):
            if not isinstance(ep, dict) or not ep.get("addresses"):
                errors.append(field_required(f"endpoints[{i}].addresses"))
                continue
            for j, addr in enumerate(ep["addresses"]):
                if family in ("IPv4", "IPv6"):
                    try:
                        ip = ipaddress.ip_address(addr)
                        if (ip.version == 4) != (family == "IPv4"):
                            raise ValueError
                    except ValueError:
                        errors.append(
                            field_invalid(f"endpoints[{i}].addresses[{j}]", addr, f"must be a valid {family} address")
                        )
        return errors


