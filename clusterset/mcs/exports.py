"""The export side (a member's agent): each ServiceExport → its records in the member's own hub namespace, and
the export's conditions (`Valid`, `Ready`, `Conflict`) from what the hub merged.

The agent writes only its own namespace on the hub; it learns the outcome of the merge from the ClusterSet's
ClusterSetService, which it may read. `Ready=True` means the hub has merged this export (a later change of the
Service is merged in turn, without the export turning Pending meanwhile).
"""

from __future__ import annotations

import logging
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import set_condition
from clusterset.api.mcs import (
    CLUSTERSET_SERVICES,
    CONFLICT,
    EXPORTED_ENDPOINTS,
    EXPORTED_SERVICES,
    KUBE_SERVICE_NAME_LABEL,
    NO_CONFLICTS,
    PENDING,
    READY,
    SERVICE_EXPORTS,
    VALID,
    record_name,
)
from clusterset.api.resources import ENDPOINT_SLICES, SERVICES
from clusterset.api.times import now_rfc3339
from clusterset.client import ClusterClient
from clusterset.client.errors import NotFound
from clusterset.mcs.records import (
    SOURCE_SLICES,
    exported_endpoints,
    exported_service,
    is_source_slice,
    service_labels,
    validity,
)
from clusterset.mcs.sync import converge, ensure, update_status
from clusterset.runtime import Cluster, Request, Result
from clusterset.runtime.events import record_event
from clusterset.runtime.hubview import NO_VIEW_RETRY, HubView, HubViews, ready_view
from clusterset.runtime.writes import delete

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EVENT_SOURCE = "clusterset-mcs"


def export_conditions(cluster_id: str, valid: tuple[bool, str, str], record: Obj | None,
                      merged: Obj | None) -> list[Obj]:
    """The conditions an export should have (pure): `Valid` from the Service, `Ready` and `Conflict` from the
    hub's merge of this export's record (`record` as written, `merged` the ClusterSetService)."""
    ok, reason, message = valid
    out = [{"type": VALID, "status": str(ok), "reason": reason, "message": message}]
    if not ok:
        return [*out, {"type": READY, "status": "False", "reason": PENDING,
                       "message": "not exported while the export is not valid"}]
    status = objects.status(merged or {})
    entry = next((c for c in status.get("clusters") or [] if isinstance(c, dict) and c.get("cluster") == cluster_id),
                 None)
    if record is None or entry is None:  # once merged it stays Ready while later changes are merged
        return [*out, {"type": READY, "status": "False", "reason": PENDING,
                       "message": "waiting for the hub to merge this export"}]
    out.append({"type": READY, "status": "True", "reason": "Ready",
                "message": f"merged on the hub with the exports of {status.get('clusterNames') or cluster_id}"})
    conflict = status.get("conflict")
    if isinstance(conflict, dict) and conflict.get("reason"):
        out.append({"type": CONFLICT, "status": "True", "reason": conflict["reason"],
                    "message": str(conflict.get("message") or "")})
    else:
        out.append({"type": CONFLICT, "status": "False", "reason": NO_CONFLICTS,
                    "message": "every exporting cluster agrees on the service's fields"})
    return out


def with_conditions(current: list[Obj] | None, wanted: list[Obj], now: str) -> list[Obj]:
    """`current` with each wanted condition set (transition times kept when the status holds), and the types not
    wanted removed. A valid export waiting for the hub to merge its change keeps its `Conflict` as it was: the
    merge decides it, and dropping it meanwhile would lose the conflict's clearing (and its Event)."""
    types = {w["type"] for w in wanted}
    by_type = {w["type"]: w for w in wanted}
    if by_type.get(VALID, {}).get("status") == "True" and by_type.get(READY, {}).get("reason") == PENDING:
        types.add(CONFLICT)
    out = [c for c in current or [] if c.get("type") in types]
    for condition in wanted:
        out = set_condition(out, condition, now)
    return out


def _transitions(old: list[Obj], new: list[Obj]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events a change of conditions deserves: an invalid export, a conflict
    appearing or changing, a conflict clearing, an export merged."""
    before = {c["type"]: c for c in old}
    events = []
    for c in new:
        was = before.get(c["type"]) or {}
        if (c["status"], c["reason"]) == (was.get("status"), was.get("reason")):
            continue
        if (c["type"], c["status"]) in ((VALID, "False"), (CONFLICT, "True")):
            events.append(("Warning", c["reason"], c["message"]))
        elif c["type"] == CONFLICT and was.get("status") == "True":
            events.append(("Normal", NO_CONFLICTS, "the conflict cleared: " + c["message"]))
        elif c["type"] == READY and c["status"] == "True":
            events.append(("Normal", "Exported", c["message"]))
    return events


class ExportReconciler:
    """Reconciles one ServiceExport (key: namespace, name) of a member."""

    def __init__(self, views: HubViews) -> None:
        self.views = views

    async def reconcile(self, req: Request) -> Result | None:
        view = await ready_view(self.views, req.cluster)
        if view is None:
            return Result(requeue_after=NO_VIEW_RETRY)
        member, hub = req.cluster, view.cluster
        namespace, name = req.namespace, req.name
        export = member.cache(SERVICE_EXPORTS).get((namespace, name))
        have = hub.cache(EXPORTED_SERVICES, view.namespace).get((view.namespace, record_name(namespace, name)))
        have_endpoints = hub.cache(EXPORTED_ENDPOINTS, view.namespace).list(view.namespace,
                                                                            service_labels(namespace, name))
        if export is None or objects.meta(export).get("deletionTimestamp"):
            await self._withdraw(view, have, have_endpoints)
            return None
        service = member.cache(SERVICES).get((namespace, name))
        valid = validity(service)
        record = None
        if service is None or not valid[0]:
            await self._withdraw(view, have, have_endpoints)
        else:
            record = await self._publish(member, view, export, service, have_endpoints)
        merged = hub.cache(CLUSTERSET_SERVICES, view.clusterset).get((view.clusterset, record_name(namespace, name)))
        await self._set_conditions(member, export, export_conditions(member.name, valid, record, merged))
        return None

    async def _withdraw(self, view: HubView, have: Obj | None, have_endpoints: list[Obj]) -> None:
        hub = view.cluster
        endpoints = hub.cache(EXPORTED_ENDPOINTS, view.namespace)
        await converge(hub.client, EXPORTED_ENDPOINTS, endpoints, have_endpoints, [])
        if have is not None:
            await delete(hub.client, EXPORTED_SERVICES, hub.cache(EXPORTED_SERVICES, view.namespace), have)

    async def _publish(self, member: Cluster, view: HubView, export: Obj, service: Obj,
                       have_endpoints: list[Obj]) -> Obj:
        namespace, name = export["metadata"]["namespace"], export["metadata"]["name"]
        want = exported_service(export, service)
        want["metadata"]["namespace"] = view.namespace
        hub = view.cluster
        record = await ensure(hub.client, EXPORTED_SERVICES, hub.cache(EXPORTED_SERVICES, view.namespace), want)
        slices = member.cache(ENDPOINT_SLICES, label_selector=SOURCE_SLICES).list(
            namespace, {KUBE_SERVICE_NAME_LABEL: name})
        wanted = []
        for slice_ in slices:
            if is_source_slice(slice_):
                endpoints = exported_endpoints(namespace, name, slice_)
                endpoints["metadata"]["namespace"] = view.namespace
                wanted.append(endpoints)
        await converge(hub.client, EXPORTED_ENDPOINTS, hub.cache(EXPORTED_ENDPOINTS, view.namespace), have_endpoints,
                       wanted)
        return record

    async def _set_conditions(self, member: Cluster, export: Obj, wanted: list[Obj]) -> None:
        current = [c for c in objects.status(export).get("conditions") or [] if isinstance(c, dict)]
        conditions = with_conditions(current, wanted, now_rfc3339())
        if conditions == current:
            return
        await update_status(member.client, SERVICE_EXPORTS, member.cache(SERVICE_EXPORTS), export,
                            {**objects.status(export), "conditions": conditions})
        for type_, reason, message in _transitions(current, conditions):
            await record_event(member.client, SERVICE_EXPORTS, export, type_, reason, message, EVENT_SOURCE)


async def withdraw_exports(hub: ClusterClient, namespace: str) -> int:
    """A member gone for good (its cluster no longer exists) exports nothing: its records leave its hub namespace,
    so the merge drops it from every import's clusters and a service only it exported stops being imported. An
    agent that merely stops (a restart, a silent member) keeps them: its endpoints are withdrawn by their Lease
    instead, and come back with it. Endpoints first, so no import is left pointing at a service's last slices."""
    withdrawn = 0
    for resource in (EXPORTED_ENDPOINTS, EXPORTED_SERVICES):
        listed = await hub.list(resource, namespace)
        for record in listed.get("items") or []:
            try:
                await hub.delete(resource, objects.meta(record)["name"], namespace)
                withdrawn += 1
            except NotFound:
                pass
    return withdrawn
