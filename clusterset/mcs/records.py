"""The export side as pure functions: a member's ServiceExport, Service and EndpointSlices → its hub records.

What a member publishes is a summary (the ServiceImport fields KEP-1645 derives from a Service, and nothing
else: no selector, no cluster IPs, no node ports) and its endpoints as they are; the hub decides what wins.
"""

from __future__ import annotations

from typing import Any

from clusterset.api import objects
from clusterset.api.mcs import (
    CLUSTERSET_IP,
    HEADLESS,
    INVALID_SERVICE_TYPE,
    KUBE_SERVICE_NAME_LABEL,
    MANAGED_BY_LABEL,
    MCS_CONTROLLER,
    NO_SERVICE,
    SERVICE_NAME_LABEL,
    SERVICE_NAMESPACE_LABEL,
    bounded_name,
    record_name,
)

Obj = dict[str, Any]


def validity(service: Obj | None) -> tuple[bool, str, str]:
    """(valid, reason, message) of the `Valid` condition of the export of `service`."""
    if service is None:
        return False, NO_SERVICE, "no Service of this name exists in this namespace; create it to export it"
    if objects.spec(service).get("type") == "ExternalName":
        return False, INVALID_SERVICE_TYPE, ("a Service of type ExternalName cannot be exported; export a ClusterIP, "
                                             "NodePort, LoadBalancer or headless Service")
    return True, "Valid", "the Service can be exported"


def service_type(service: Obj) -> str:
    return HEADLESS if objects.spec(service).get("clusterIP") == "None" else CLUSTERSET_IP


def service_ports(service: Obj) -> list[dict[str, Any]]:
    """The ServicePorts a ServiceImport carries: name, protocol, appProtocol, port (no targetPort, no nodePort)."""
    out = []
    for port in objects.spec(service).get("ports") or []:
        if not isinstance(port, dict):
            continue
        entry: dict[str, Any] = {"name": str(port.get("name") or ""), "protocol": str(port.get("protocol") or "TCP"),
                                 "port": port.get("port")}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return out


def exported_service(export: Obj, service: Obj) -> Obj:
    """The ExportedService record of a valid export (without namespace: the agent writes it into its own)."""
    meta = objects.meta(export)
    namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
    svc = objects.spec(service)
    affinity = svc.get("sessionAffinity") or "None"
    spec: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "exportCreationTimestamp": meta.get("creationTimestamp"),
        "type": service_type(service),
        "ports": service_ports(service),
        "sessionAffinity": affinity,
        "ipFamilies": [str(f) for f in svc.get("ipFamilies") or ["IPv4"]],
        "exportedLabels": dict(objects.spec(export).get("exportedLabels") or {}),
        "exportedAnnotations": dict(objects.spec(export).get("exportedAnnotations") or {}),
    }
    if affinity == "ClientIP" and svc.get("sessionAffinityConfig"):
        spec["sessionAffinityConfig"] = svc["sessionAffinityConfig"]
    for field in ("internalTrafficPolicy", "trafficDistribution"):
        if svc.get(field):
            spec[field] = svc[field]
    return {"metadata": {"name": record_name(namespace, name), "labels": service_labels(namespace, name)},
            "spec": spec}


def service_labels(namespace: str, name: str) -> dict[str, str]:
    """The labels every hub record of a service carries, so that caches find them by service."""
    return {SERVICE_NAMESPACE_LABEL: namespace, SERVICE_NAME_LABEL: name}


# the EndpointSlices of local Services, as a label selector: a member's imported slices (ClusterSetIP ones carry
# `kubernetes.io/service-name` too, the derived Service's) stay out of the export side's cache and queue
SOURCE_SLICES = f"{KUBE_SERVICE_NAME_LABEL},{MANAGED_BY_LABEL}!={MCS_CONTROLLER}"


def is_source_slice(slice_: Obj) -> bool:
    """An EndpointSlice of a local Service (not one of ours, imported)."""
    labels = objects.labels(slice_)
    return bool(labels.get(KUBE_SERVICE_NAME_LABEL)) and labels.get(MANAGED_BY_LABEL) != MCS_CONTROLLER


def exported_endpoints(namespace: str, name: str, slice_: Obj) -> Obj:
    """The ExportedEndpoints record of one source EndpointSlice: the fields an imported slice copies (spec §8)."""
    endpoints = []
    for ep in slice_.get("endpoints") or []:
        if not isinstance(ep, dict):
            continue
        out: dict[str, Any] = {"addresses": list(ep.get("addresses") or [])}
        conditions = {k: v for k, v in (ep.get("conditions") or {}).items() if k in ("ready", "serving", "terminating")}
        if conditions:
            out["conditions"] = conditions
        for field in ("hostname", "zone", "nodeName"):  # not hints: they are for the source cluster's topology
            if ep.get(field):
                out[field] = ep[field]
        endpoints.append(out)
    slice_name = str(objects.meta(slice_)["name"])
    return {"metadata": {"name": bounded_name(namespace, slice_name), "labels": service_labels(namespace, name)},
            "spec": {"sourceSlice": slice_name, "addressType": slice_.get("addressType") or "IPv4",
                     "ports": list(slice_.get("ports") or []), "endpoints": endpoints}}
