"""kube-controller-manager's legacy Endpoints controller: one core/v1 Endpoints per selector Service.

Deprecated upstream (1.33) but still run by every cluster, and `kubectl get endpoints` users expect it.
The object is computed by `endpoint_state.plan_endpoints`; this module only maps events and writes.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from clusterset.apiserver.controllers.endpoint_state import (
    ENDPOINTS_CONTROLLER_NAME,
    ENDPOINTS_MANAGED_BY_LABEL,
    ServiceIndex,
    TriggerTimeTracker,
    controls,
    plan_endpoints,
    select_pods,
    target_pods,
)
from clusterset.apiserver.controllers.endpointslices import (
    FIELD_MANAGER,
    _labels,
    _meta,
    apply_writes,
    namespace_closed,
)
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.store import ClusterStore, Event

if TYPE_CHECKING:
    from clusterset.apiserver.cluster import Cluster

log = logging.getLogger(__name__)

ENDPOINTS = "/endpoints"


class EndpointsController:
    """Endpoints named like the Service: ready pods in `addresses`, the others in `notReadyAddresses`
    (terminating pods only with publishNotReadyAddresses), subsets repacked by port set."""

    name: str = "endpoint-controller"
    watches: tuple[str, ...] = ("/services", "/pods", ENDPOINTS)

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[ClusterStore, ServiceIndex] = weakref.WeakKeyDictionary()
        self._triggers: weakref.WeakKeyDictionary[ClusterStore, TriggerTimeTracker] = weakref.WeakKeyDictionary()

    def index(self, cluster: Cluster) -> ServiceIndex:
        index = self._indexes.get(cluster.store)
        if index is None:
            index = self._indexes[cluster.store] = ServiceIndex()
        return index

    def _tracker(self, cluster: Cluster) -> TriggerTimeTracker:
        tracker = self._triggers.get(cluster.store)
        if tracker is None:
            tracker = self._triggers[cluster.store] = TriggerTimeTracker()
        return tracker

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        # runs inside the store write that produced the event: it must never raise
        try:
            return self._keys_for(cluster, event)
        except Exception:
            log.exception("%s: cannot map %s event in %s", self.name, event.resource, cluster.name)
            return ()

    def _keys_for(self, cluster: Cluster, event: Event) -> set[Key]:
        obj = event.entry.obj
        meta = _meta(obj)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        index = self.index(cluster)
        if event.resource == "/services":
            index.service_event(event.type, obj)
            return {(ns, name)}
        if event.resource == "/pods":
            return {(ns, svc) for svc in index.pod_event(event.type, obj, track_nodes=False)}
        if event.resource == ENDPOINTS:
            pods: list[str] = []
            for subset in obj.get("subsets") or []:
                if isinstance(subset, dict):
                    pods += target_pods(ns, subset.get("addresses") or [])
                    pods += target_pods(ns, subset.get("notReadyAddresses") or [])
            index.set_members(ns, name, name if event.type != "DELETED" else None, pods)
            if (ns, name) in index.expected:
                index.expected.discard((ns, name))
                return set()
            return {(ns, name)}  # changed or deleted by someone else: put it back
        return set()

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        api = ClusterAPI(api.server, api.cluster, FIELD_MANAGER)
        index = self.index(api.cluster)
        existing = api.get(ENDPOINTS, namespace, name)
        service = api.get("/services", namespace, name)
        if service is None:
            self._tracker(api.cluster).forget(namespace, name)
            index.memos.pop(key, None)
            # upstream deletes the Endpoints of a deleted Service; only ours, so hand-made ones survive
            if existing is not None and _labels(existing).get(ENDPOINTS_MANAGED_BY_LABEL) == ENDPOINTS_CONTROLLER_NAME:
                await apply_writes(api, ENDPOINTS, index, [], [], [existing])
            return None
        if not controls(service):
            index.memos.pop(key, None)
            return None
        pods = select_pods(service, api.objects("/pods", namespace))
        trigger = self._tracker(api.cluster).compute(service, pods)
        desired = plan_endpoints(service, pods, existing, trigger, index.memo(*key))
        if desired is None:
            return None
        if existing is None:
            done = await apply_writes(api, ENDPOINTS, index, [desired], [], [])
        else:
            done = await apply_writes(api, ENDPOINTS, index, [], [desired], [])
        if not done and not namespace_closed(api, namespace):
            return 1.0
        return None
