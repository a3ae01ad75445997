"""The import side (a member's agent): each ClusterSetService on the hub → a ServiceImport, its derived Service
(ClusterSetIP) and its imported EndpointSlices, in this member, when the namespace exists here.

The desired objects are pure functions of the merged service, its endpoints and the derived Service; the
reconciler writes only differences, so an agent restart rewrites nothing and DNS keeps answering.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import set_condition
from clusterset.api.mcs import (
    CLUSTERSET_ENDPOINTS,
    CLUSTERSET_IP,
    CLUSTERSET_SERVICES,
    DERIVED_SERVICE_ANNOTATION,
    IP_FAMILY_NOT_SUPPORTED,
    KUBE_SERVICE_NAME_LABEL,
    MANAGED_BY_LABEL,
    MCS_CONTROLLER,
    PENDING,
    READY,
    SERVICE_IMPORTS,
    SERVICE_NAME_LABEL,
    SERVICE_NAMESPACE_LABEL,
    SOURCE_CLUSTER_LABEL,
    derived_service_name,
    record_name,
    short_hash,
)
from clusterset.api.resources import ENDPOINT_SLICES, NAMESPACES, SERVICES
from clusterset.api.times import now_rfc3339
from clusterset.client.errors import Invalid
from clusterset.mcs.records import service_labels
from clusterset.mcs.sync import converge, ensure, update_status
from clusterset.runtime import Cluster, Request, Result
from clusterset.runtime.hubview import NO_VIEW_RETRY, HubViews, ready_view
from clusterset.runtime.writes import delete

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IMPORTED_SLICES = {MANAGED_BY_LABEL: MCS_CONTROLLER}  # the member's EndpointSlices this controller owns
IMPORT_FIELDS = ("sessionAffinity", "sessionAffinityConfig", "internalTrafficPolicy", "trafficDistribution")


def owner_reference(service_import: Obj) -> dict[str, Any]:
    meta = service_import["metadata"]
    return {"apiVersion": SERVICE_IMPORTS.api_version, "kind": SERVICE_IMPORTS.kind, "name": meta["name"],
            "uid": meta["uid"]}


def derived_service(merged: Obj, service_import: Obj | None) -> Obj:
    """The selectorless ClusterIP Service whose cluster IPs are the import's ClusterSet IPs (mcs-api's reference
    data plane: kube-proxy programs them from the imported slices labelled with its name)."""
    spec = objects.spec(merged)
    namespace, name = spec["namespace"], spec["name"]
    families = list(spec.get("ipFamilies") or ["IPv4"])
    service_spec: dict[str, Any] = {
        "type": "ClusterIP",
        "ports": [{**({"name": p["name"]} if p.get("name") else {}), "protocol": p.get("protocol") or "TCP",
                   "port": p["port"], "targetPort": p["port"],
                   **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
                  for p in spec.get("ports") or []],
        "ipFamilies": families,
        "ipFamilyPolicy": "PreferDualStack" if len(families) > 1 else "SingleStack",
        "sessionAffinity": spec.get("sessionAffinity") or "None",
    }
    if spec.get("sessionAffinityConfig"):
        service_spec["sessionAffinityConfig"] = spec["sessionAffinityConfig"]
    meta: dict[str, Any] = {"name": derived_service_name(namespace, name), "namespace": namespace,
                            "labels": {SERVICE_NAME_LABEL: name}}
    if service_import is not None:
        meta["ownerReferences"] = [owner_reference(service_import)]
    return {"metadata": meta, "spec": service_spec}


def desired_import(merged: Obj, derived: Obj | None) -> Obj:
    """The ServiceImport (without status) of a merged service: only the exported labels and annotations."""
    spec = objects.spec(merged)
    namespace, name = spec["namespace"], spec["name"]
    annotations = dict(spec.get("annotations") or {})
    out: dict[str, Any] = {"type": spec.get("type") or CLUSTERSET_IP, "ports": list(spec.get("ports") or [])}
    if out["type"] == CLUSTERSET_IP:
        annotations[DERIVED_SERVICE_ANNOTATION] = derived_service_name(namespace, name)
        derived_spec = objects.spec(derived or {})
        out["ips"] = list(derived_spec.get("clusterIPs") or [])
        out["ipFamilies"] = list(derived_spec.get("ipFamilies") or spec.get("ipFamilies") or ["IPv4"])
    else:
        out["ips"] = []
        out["ipFamilies"] = list(spec.get("ipFamilies") or ["IPv4"])
    for field in IMPORT_FIELDS:
        if spec.get(field):
            out[field] = spec[field]
    return {"metadata": {"name": name, "namespace": namespace, "labels": dict(spec.get("labels") or {}),
                         "annotations": annotations},
            "spec": out}


def import_status(merged: Obj, service_import: Obj, problem: tuple[str, str] | None) -> Obj:
    """`status.clusters` (the exporting clusters) and `Ready`."""
    clusters = [{"cluster": c["cluster"]} for c in objects.status(merged).get("clusters") or []
                if isinstance(c, dict) and c.get("cluster")]
    spec = objects.spec(service_import)
    if problem is not None:
        ready = {"type": READY, "status": "False", "reason": problem[0], "message": problem[1]}
    elif spec.get("type") == CLUSTERSET_IP and not spec.get("ips"):
        ready = {"type": READY, "status": "False", "reason": PENDING, "message": "waiting for ClusterSet IPs"}
    else:
        ready = {"type": READY, "status": "True", "reason": "Ready",
                 "message": f"imported from {', '.join(c['cluster'] for c in clusters)}"}
    conditions = set_condition(objects.status(service_import).get("conditions"), ready, now_rfc3339())
    return {"clusters": clusters, "conditions": conditions}


def imported_slice_name(service: str, cluster: str, source: str) -> str:
    return f"{service}-{cluster}-{short_hash(source, 5)}"


def desired_slices(merged: Obj, service_import: Obj, endpoints: Iterable[Obj]) -> list[Obj]:
    """One imported EndpointSlice per ClusterSetEndpoints: one source cluster each, the standard labels, our
    managed-by, and for ClusterSetIP the derived Service's name as `kubernetes.io/service-name` (never the
    user's Service: its local endpoints must stay local)."""
    spec = objects.spec(merged)
    name = spec["name"]
    out = []
    for record in endpoints:
        cluster = objects.labels(record).get(SOURCE_CLUSTER_LABEL)
        if not cluster:
            continue
        labels = {SERVICE_NAME_LABEL: name, SOURCE_CLUSTER_LABEL: cluster, **IMPORTED_SLICES}
        if spec.get("type") == CLUSTERSET_IP:
            labels[KUBE_SERVICE_NAME_LABEL] = derived_service_name(spec["namespace"], name)
        source = objects.spec(record)
        out.append({
            "metadata": {"name": imported_slice_name(name, cluster, record["metadata"]["name"]),
                         "namespace": spec["namespace"], "labels": labels,
                         "ownerReferences": [owner_reference(service_import)]},
            "addressType": source.get("addressType") or "IPv4",
            "ports": list(source.get("ports") or []),
            "endpoints": list(source.get("endpoints") or []),
        })
    return out


class ImportReconciler:
    """Reconciles one service (key: namespace, name) in a member."""

    def __init__(self, views: HubViews) -> None:
        self.views = views

    async def reconcile(self, req: Request) -> Result | None:
        view = await ready_view(self.views, req.cluster)
        if view is None:
            return Result(requeue_after=NO_VIEW_RETRY)
        member, hub = req.cluster, view.cluster
        namespace, name = req.namespace, req.name
        merged = hub.cache(CLUSTERSET_SERVICES, view.clusterset).get((view.clusterset, record_name(namespace, name)))
        imports = member.cache(SERVICE_IMPORTS)
        services = member.cache(SERVICES, label_selector=SERVICE_NAME_LABEL)
        slices = member.cache(ENDPOINT_SLICES, label_selector=IMPORTED_SLICES)
        have_import = imports.get((namespace, name))
        have_derived = services.get((namespace, derived_service_name(namespace, name)))
        have_slices = slices.list(namespace, {SERVICE_NAME_LABEL: name})
        ns = member.cache(NAMESPACES).get(("", namespace))
        if merged is None or ns is None or objects.meta(ns).get("deletionTimestamp"):
            await converge(member.client, ENDPOINT_SLICES, slices, have_slices, [])
            if have_derived is not None:
                await delete(member.client, SERVICES, services, have_derived)
            if have_import is not None:
                await delete(member.client, SERVICE_IMPORTS, imports, have_import)
            return None

        problem = None
        derived = None
        if objects.spec(merged).get("type") == CLUSTERSET_IP:
            derived, problem = await self._derived(member, merged, have_import, have_derived)
        elif have_derived is not None:
            await delete(member.client, SERVICES, services, have_derived)
        service_import = await ensure(member.client, SERVICE_IMPORTS, imports, desired_import(merged, derived))
        want = desired_slices(merged, service_import, hub.cache(CLUSTERSET_ENDPOINTS, view.clusterset).list(
            view.clusterset, service_labels(namespace, name)))
        wrote = await converge(member.client, ENDPOINT_SLICES, slices, have_slices, want,
                               defaulted=("endpoints", "ports"))
        if wrote or service_import is not have_import:
            # What makes the import usable (its IPs, its slices) first, in every member: the status waits for a
            # pass that writes neither, once no member's data-plane work is queued (a derived Service's IPs are
            # the import's, so a new one rewrote the import)
            return Result(later=True)
        await update_status(member.client, SERVICE_IMPORTS, imports, service_import,
                            import_status(merged, service_import, problem))
        return None

    async def _derived(self, member: Cluster, merged: Obj, have_import: Obj | None,
                       have: Obj | None) -> tuple[Obj | None, tuple[str, str] | None]:
        """The derived Service as it now is (made or updated), or why this member cannot have it."""
        services = member.cache(SERVICES, label_selector=SERVICE_NAME_LABEL)
        want = derived_service(merged, have_import)
        if have is not None and objects.spec(have).get("ipFamilies") != want["spec"]["ipFamilies"]:
            await delete(member.client, SERVICES, services, have)  # families cannot change in place: new IPs
        try:
            return await ensure(member.client, SERVICES, services, want, defaulted=("spec",)), None
        except Invalid as exc:
            reason = IP_FAMILY_NOT_SUPPORTED if "ipFamilies" in str(exc) or "family" in str(exc) else "Failed"
            log.info("no ClusterSet IP for import cluster=%s service=%s/%s: %s", member.name,
                     want["metadata"]["namespace"], objects.spec(merged).get("name"), exc)
            return None, (reason, f"this cluster cannot allocate the ClusterSet IP: {exc}")


def namespace_services(hub: Cluster, clusterset: str, namespace: str) -> list[str]:
    """The names of the merged services of one namespace (a member namespace appearing imports them all)."""
    return [str(objects.spec(s).get("name")) for s in
            hub.cache(CLUSTERSET_SERVICES, clusterset).list(clusterset, {SERVICE_NAMESPACE_LABEL: namespace})]
