"""Services: defaulting, validation, and their cluster IPs and node ports."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_duplicate,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.validation import validate_labels
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.storage.store import Obj


class ServiceStrategy(Strategy):
    name_rule = "dns1035"
    delete_returns_object = True  # kube-apiserver's service registry returns the deleted Service

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        svc_type = spec.setdefault("type", "ClusterIP")
        if svc_type != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if svc_type in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        obj.setdefault("status", {"loadBalancer": {}})

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_update(self, cluster: ClusterView, obj: Obj, old: Obj) -> None:
        spec, old_spec = ensure_spec(obj), old.get("spec") or {}
        if spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if key not in spec and key in old_spec:
                    spec[key] = old_spec[key]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if (
                prev
                and "nodePort" in prev
                and "nodePort" not in port
                and spec.get("type") in ("NodePort", "LoadBalancer")
            ):
                port["nodePort"] = prev["nodePort"]

    def allocate(self, cluster: ClusterView, obj: Obj) -> list[FieldError]:
        """Assigns cluster IPs (and node ports); returns field errors for impossible requests."""
        spec = ensure_spec(obj)
        errors: list[FieldError] = []
        if spec.get("type") == "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(key, None)
            return errors
        addresses = cluster.part(ServiceAddresses)
        requested = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
        if requested and spec.get("clusterIP") and requested[0] != spec["clusterIP"]:
            return [field_invalid("spec.clusterIPs", requested, "element [0] must match clusterIP")]
        if requested == ["None"] or spec.get("clusterIP") == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            spec.setdefault(
                "ipFamilyPolicy", "RequireDualStack" if len(spec.get("ipFamilies") or []) > 1 else "SingleStack"
            )
            spec.setdefault("ipFamilies", ["IPv4"])
            return errors
        policy = spec.get("ipFamilyPolicy") or ("RequireDualStack" if len(requested) > 1 else "SingleStack")
        families = list(spec.get("ipFamilies") or [])
        if not families:
            families = [_family(ip) for ip in requested] or ["IPv4"]
            if policy in ("PreferDualStack", "RequireDualStack") and len(families) == 1 and addresses.service_cidr6:
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
        if policy == "RequireDualStack" and not addresses.service_cidr6:
            return [
                field_invalid("spec.ipFamilyPolicy", policy, "this cluster is not configured for dual-stack services")
            ]
        ips: list[str] = []
        for i, family in enumerate(families):
            want = requested[i] if i < len(requested) else None
            try:
                ips.append(addresses.ip_allocator(family).allocate(want))
            except ValueError as exc:
                for ip in ips:
                    addresses.ip_allocator(_family(ip)).release(ip)
                return [field_invalid(f"spec.clusterIPs[{i}]", want or "", str(exc))]
        spec["clusterIPs"] = ips
        spec["clusterIP"] = ips[0]
        spec["ipFamilies"] = families
        spec["ipFamilyPolicy"] = policy
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                if "nodePort" not in port:
                    port["nodePort"] = addresses.allocate_node_port()
        return errors

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec") or {}
        svc_type = spec.get("type", "ClusterIP")
        if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errors.append(
                field_not_supported("spec.type", svc_type, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
            )
        ports = spec.get("ports") or []
        headless = spec.get("clusterIP") == "None"
        if svc_type == "ExternalName":
            if not spec.get("externalName"):
                errors.append(field_required("spec.externalName"))
        elif not ports and not headless:
            errors.append(field_required("spec.ports"))
        seen_names: set[str] = set()
        seen_ports: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            base = f"spec.ports[{i}]"
            if not isinstance(port, dict):
                errors.append(field_invalid(base, port, "must be an object"))
                continue
            number = port.get("port")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                errors.append(field_invalid(f"{base}.port", number, "must be between 1 and 65535, inclusive"))
            name = port.get("name", "")
            if len(ports) > 1 and not name:
                errors.append(field_required(f"{base}.name"))
            if name:
                if name in seen_names:
                    errors.append(field_duplicate(f"{base}.name", name))
                seen_names.add(name)
            proto = port.get("protocol", "TCP")
            if proto not in ("TCP", "UDP", "SCTP"):
                errors.append(field_not_supported(f"{base}.protocol", proto, ["SCTP", "TCP", "UDP"]))
            if (number, proto) in seen_ports:
                errors.append(field_duplicate(f"{base}", {"port": number, "protocol": proto}))
            seen_ports.add((number, proto))
        if old is not None:
            old_spec = old.get("spec") or {}
            both_ip = svc_type != "ExternalName" and old_spec.get("type", "ClusterIP") != "ExternalName"
            if both_ip and old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec.get("clusterIP"):
                errors.append(field_invalid("spec.clusterIPs[0]", spec.get("clusterIP"), "may not change once set"))
        errors += validate_labels(spec.get("selector"), "spec.selector")
        return errors

    def after_delete(self, cluster: ClusterView, obj: Obj) -> None:
        cluster.part(ServiceAddresses).release(obj)


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"



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


class ServiceAddresses:
    """One cluster's Service IPs and node ports (a cluster part: made on the cluster's first Service write).

    It starts from the Services stored, so after a restart every stored address is taken again.
    """

    def __init__(self, cluster: ClusterView) -> None:
        self.settings = cluster.settings
        self._allocators: dict[str, IPAllocator] = {}
        self._node_ports: set[int] = set()
        for entry in cluster.store.entries("/services"):
            spec = entry.obj.get("spec") or {}
            for ip in spec.get("clusterIPs") or []:
                if ip != "None":
                    self.ip_allocator(_family(ip)).reserve(ip)
            for port in spec.get("ports") or []:
                if "nodePort" in port:
                    self._node_ports.add(int(port["nodePort"]))

    @property
    def service_cidr6(self) -> str | None:
        value = self.settings.get("serviceCIDR6")
        return str(value) if self.settings.get("dualStack") and value else None

    def ip_allocator(self, family: str) -> IPAllocator:
        if family not in self._allocators:
            key = "serviceCIDR" if family == "IPv4" else "serviceCIDR6"
            self._allocators[family] = IPAllocator(str(self.settings[key]))
        return self._allocators[family]

    def allocate_node_port(self) -> int:
        while True:
            port = random.randint(30000, 32767)
            if port not in self._node_ports:
                self._node_ports.add(port)
                return port

    def release(self, service: Obj) -> None:
        spec = service.get("spec") or {}
        for ip in spec.get("clusterIPs") or []:
            if ip != "None":
                self.ip_allocator(_family(ip)).release(ip)
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and "nodePort" in port:
                self._node_ports.discard(port["nodePort"])
