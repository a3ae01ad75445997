"""The hub's merge: every member's ExportedService of one namespace/name → one ClusterSetService, and each live
exporting cluster's ExportedEndpoints → ClusterSetEndpoints with the merged service's ports.

A record counts only in a member's hub namespace (labelled with the member's id, which the hub set at join):
what an agent writes into its own namespace cannot speak for another member. A member's endpoints count only
while its endpoint Lease is fresh (renewed by its agent while its member answers); once it expires they are
withdrawn everywhere, and they come back with the next renewal. The service itself stays while any export
exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import MEMBER_LABEL
from clusterset.api.mcs import (
    CLUSTERSET_ENDPOINTS,
    CLUSTERSET_SERVICES,
    ENDPOINT_LEASE,
    ENDPOINT_LEASE_SELECTOR,
    EXPORTED_ENDPOINTS,
    EXPORTED_SERVICES,
    SERVICE_NAME_LABEL,
    SERVICE_NAMESPACE_LABEL,
    SOURCE_CLUSTER_LABEL,
    bounded_name,
    record_name,
    split_record_name,
)
from clusterset.api.resources import LEASES, NAMESPACES
from clusterset.api.times import parse_time
from clusterset.mcs.merge import Export, Merged, merge, route_ports
from clusterset.mcs.records import service_labels
from clusterset.mcs.sync import converge, ensure
from clusterset.runtime import Controller, Request, Result, Watch
from clusterset.runtime.hubview import synced
from clusterset.runtime.writes import delete

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AVAILABLE, WITHDRAWN = "Available", "Withdrawn"


def lease_expiry(lease: Obj | None) -> datetime | None:
    """When a member's endpoint Lease runs out (None: it has none, or one that says nothing)."""
    spec = objects.spec(lease or {})
    renewed = parse_time(spec.get("renewTime"))
    seconds = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(seconds, int):
        return None
    return renewed + timedelta(seconds=seconds)


class LeaseClock:
    """When each member's endpoint Lease runs out, as this hub sees it: a renewal counts from when the hub first
    saw it, when that is later than the renewTime it carries. A hub (re)started after an outage longer than the
    lease finds every renewTime old; counting from those alone withdrew every member's endpoints at once (every
    imported slice in every member deleted, then made again under a new uid once the agents renewed). So
    kube-controller-manager times node Leases: from its own observations. A member whose agent never renews
    after a restart still loses its endpoints, one lease after the hub started."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[str, datetime]] = {}  # lease → (its renewTime, first seen)

    def expiry(self, lease: Obj | None, now: datetime) -> datetime | None:
        stored = lease_expiry(lease)
        if lease is None or stored is None:
            return stored
        meta, spec = objects.meta(lease), objects.spec(lease)
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        renewed = str(spec.get("renewTime"))
        seen = self._seen.get(key)
        if seen is None or seen[0] != renewed:
            seen = self._seen[key] = (renewed, now)
        return max(stored, seen[1] + timedelta(seconds=int(spec["leaseDurationSeconds"])))


def merged_service(namespace: str, name: str, clusterset: str, merged: Merged, exports: list[Export],
                   live: Mapping[str, bool]) -> Obj:
    ordered = sorted(exports, key=lambda e: e.cluster)
    clusters: list[Obj] = [
        {"cluster": e.cluster, "exportCreationTimestamp": e.created, "observedGeneration": e.generation,
         "endpoints": AVAILABLE if live.get(e.cluster) else WITHDRAWN}
        for e in ordered]
    status: Obj = {"clusters": clusters, "clusterNames": ",".join(e.cluster for e in ordered)}
    if merged.reasons:
        status["conflict"] = {"reason": ",".join(merged.reasons), "message": merged.message}
    return {"metadata": {"name": record_name(namespace, name), "namespace": clusterset,
                         "labels": service_labels(namespace, name)},
            "spec": {"namespace": namespace, "name": name, **merged.spec}, "status": status}


def merged_endpoints(namespace: str, name: str, clusterset: str, merged: Merged, export: Export,
                     records: Iterable[Obj]) -> list[Obj]:
    """The ClusterSetEndpoints one live exporting cluster contributes: its slices, with only the ports it exposes."""
    import_ports = merged.spec.get("ports") or []
    out = []
    for record in records:
        spec = objects.spec(record)
        ports = route_ports(import_ports, export.spec.get("ports") or [], spec.get("ports") or [])
        if import_ports and not ports:  # it exposes none of the service's ports: no traffic may reach it
            continue
        out.append({
            "metadata": {"name": bounded_name(namespace, export.cluster, str(spec.get("sourceSlice") or "")),
                         "namespace": clusterset,
                         "labels": {**service_labels(namespace, name), SOURCE_CLUSTER_LABEL: export.cluster}},
            "spec": {"addressType": spec.get("addressType") or "IPv4", "ports": ports,
                     "endpoints": spec.get("endpoints") or []},
        })
    return out


class ServiceMerger:
    """Reconciles one service (key `<namespace>.<name>`) on the hub."""

    def __init__(self, clusterset: str) -> None:
        self.clusterset = clusterset
        self.leases = LeaseClock()

    async def reconcile(self, req: Request) -> Result | None:
        parsed = split_record_name(req.name)
        if parsed is None:
            return None
        namespace, name = parsed
        hub = req.cluster
        await synced(hub)
        selector = service_labels(namespace, name)
        members = {n["metadata"]["name"]: objects.labels(n)[MEMBER_LABEL]
                   for n in hub.cache(NAMESPACES, label_selector=MEMBER_LABEL).list()
                   if not objects.meta(n).get("deletionTimestamp")}
        exports = [Export(members[ns], objects.spec(r), int(objects.meta(r).get("generation") or 0))
                   for r in hub.cache(EXPORTED_SERVICES).list(label_selector=selector)
                   if (ns := objects.meta(r).get("namespace")) in members and r["metadata"]["name"] == req.name]
        namespace_of = {cid: ns for ns, cid in members.items()}
        merged = merge(exports)
        services = hub.cache(CLUSTERSET_SERVICES, self.clusterset)
        have_service = services.get((self.clusterset, req.name))
        endpoints = hub.cache(CLUSTERSET_ENDPOINTS, self.clusterset)
        have_endpoints = endpoints.list(self.clusterset, selector)
        if merged is None:
            await converge(hub.client, CLUSTERSET_ENDPOINTS, endpoints, have_endpoints, [])
            if have_service is not None:
                await delete(hub.client, CLUSTERSET_SERVICES, services, have_service)
                log.info("multi-cluster service gone, no export left service=%s/%s", namespace, name)
            return None

        now = datetime.now(UTC)
        leases = hub.cache(LEASES, field_selector=ENDPOINT_LEASE_SELECTOR)
        expiries = {e.cluster: self.leases.expiry(leases.get((namespace_of[e.cluster], ENDPOINT_LEASE)), now)
                    for e in exports}
        live = {c: t is not None and t > now for c, t in expiries.items()}
        await ensure(hub.client, CLUSTERSET_SERVICES, services,
                     merged_service(namespace, name, self.clusterset, merged, exports, live))
        want = []
        endpoint_records = hub.cache(EXPORTED_ENDPOINTS).list(label_selector=selector)
        for export in exports:
            if live[export.cluster]:
                records = [r for r in endpoint_records
                           if objects.meta(r).get("namespace") == namespace_of[export.cluster]]
                want += merged_endpoints(namespace, name, self.clusterset, merged, export, records)
        await converge(hub.client, CLUSTERSET_ENDPOINTS, endpoints, have_endpoints, want)
        pending = [(t - now).total_seconds() for c, t in expiries.items() if live[c] and t is not None]
        return Result(requeue_after=min(pending) + 0.05) if pending else None


def _service_key(_cluster: str, obj: Obj) -> Iterable[tuple[str, str]]:
    labels = objects.labels(obj)
    namespace, name = labels.get(SERVICE_NAMESPACE_LABEL), labels.get(SERVICE_NAME_LABEL)
    return [(_cluster, record_name(namespace, name))] if namespace and name else []


FAN_OUT = "@"  # a key `@<member namespace>`: every service exported from that member namespace


def _member_namespace_key(_cluster: str, obj: Obj) -> Iterable[tuple[str, str]]:
    meta = objects.meta(obj)
    return [(_cluster, FAN_OUT + str(meta.get("namespace") or meta.get("name")))]


def merge_controller(clusterset: str, hub: str = "hub", workers: int = 4) -> Controller:
    """Hub: one key per service (`<namespace>.<name>`); triggered by the members' records, the merged objects
    themselves (someone else's edit is undone), and, for every service a member exports, by its endpoint Lease
    and its hub namespace."""
    merger = ServiceMerger(clusterset)

    async def reconcile(req: Request) -> Result | None:
        if req.name.startswith(FAN_OUT):
            for record in req.cluster.cache(EXPORTED_SERVICES).list(req.name[len(FAN_OUT):]):
                controller.enqueue(req.cluster, record["metadata"]["name"])
            return None
        return await merger.reconcile(req)

    controller = Controller(
        "mcs-merge",
        reconcile,
        [
            Watch(EXPORTED_SERVICES, map_to=_service_key),
            Watch(EXPORTED_ENDPOINTS, map_to=_service_key),
            Watch(LEASES, field_selector=ENDPOINT_LEASE_SELECTOR, map_to=_member_namespace_key),
            Watch(NAMESPACES, label_selector=MEMBER_LABEL, map_to=_member_namespace_key),
            Watch(CLUSTERSET_SERVICES, namespace=clusterset, map_to=_service_key),
            Watch(CLUSTERSET_ENDPOINTS, namespace=clusterset, map_to=_service_key),
        ],
        clusters=hub,
        workers=workers,
    )
    return controller
