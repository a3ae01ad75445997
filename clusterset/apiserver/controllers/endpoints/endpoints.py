"""kube-controller-manager's legacy Endpoints controller: one core/v1 Endpoints per selector Service.

Deprecated upstream (1.33) but still run by every cluster, and `kubectl get endpoints` users expect it.
The object is computed by `endpoint_state.plan_endpoints`; this module only maps events and writes.
"""

from __future__ import annotations

import logging

from clusterset.api import objects
from clusterset.apiserver.controllers.endpoints.endpointslices import (
    FIELD_MANAGER,
    ServiceIndexed,
    apply_writes,
    namespace_closed,
)
from clusterset.apiserver.controllers.endpoints.state import (
    ENDPOINTS_CONTROLLER_NAME,
    ENDPOINTS_MANAGED_BY_LABEL,
    controls,
    plan_endpoints,
    select_pods,
    target_pods,
)
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event

log = logging.getLogger(__name__)

ENDPOINTS = "/endpoints"


class EndpointsController(ServiceIndexed):
    """Endpoints named like the Service: ready pods in `addresses`, the others in `notReadyAddresses`
    (terminating pods only with publishNotReadyAddresses), subsets repacked by port set."""

    name: str = "endpoint-controller"
    watches: tuple[str, ...] = ("/services", "/pods", ENDPOINTS)
    batch_setting: str = "endpointBatchPeriod"  # upstream's --endpoint-updates-batch-period (default 0)

    def _keys_for(self, cluster: Cluster, event: Event) -> set[Key]:
        keys = self.service_or_pod_keys(cluster, event, track_nodes=False)
        if keys is not None:
            return keys
        obj = event.entry.obj
        meta = objects.meta(obj)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        index = self.index(cluster)
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
            return self.urgent(cluster, {(ns, name)})  # changed or deleted by someone else: put it back
        return set()

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        wait = self.wait(api, key)
        if wait is not None:
            return wait  # a batch window is open: the requeue syncs once it closes
        namespace, name = key
        api = api.as_manager(FIELD_MANAGER)
        index = self.index(api.cluster)
        existing = api.get(ENDPOINTS, namespace, name)
        service = api.get("/services", namespace, name)
        if service is None:
            self._tracker(api.cluster).forget(namespace, name)
            index.memos.pop(key, None)
            # upstream deletes the Endpoints of a deleted Service; only ours, so hand-made ones survive
            managed_by = objects.labels(existing).get(ENDPOINTS_MANAGED_BY_LABEL) if existing is not None else None
            if existing is not None and managed_by == ENDPOINTS_CONTROLLER_NAME:
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
