"""kube-controller-manager's EndpointSlice controller for embedded clusters (and, via endpoints.py, the
legacy Endpoints controller).

Multi-Cluster Services exports what a cluster's own controllers produce, so the slices must be the ones
a real cluster would hold: `endpoint_state.plan_slices` decides them (a pure port of the upstream
reconciler); this module maps store events to Services and applies the plan through the REST pipeline.
Writes happen only when the plan says something differs, and the events of our own writes do not
requeue the Service, so a steady cluster costs no writes and no reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any

from clusterset.api import objects
from clusterset.apiserver.controllers.endpoints.state import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    ServiceIndex,
    TriggerTimeTracker,
    controls,
    plan_slices,
    select_pods,
    target_pods,
)
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.meta.names import generate_suffix
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import ClusterStore, Event, Obj

log = logging.getLogger(__name__)

SLICES = "discovery.k8s.io/endpointslices"
FIELD_MANAGER = "kube-controller-manager"  # what upstream's writes show in managedFields


def namespace_closed(api: ClusterAPI, namespace: str) -> bool:
    """True when creates in the namespace cannot succeed (gone or terminating): nothing to retry."""
    ns = api.get("/namespaces", "", namespace)
    return ns is None or bool(objects.meta(ns).get("deletionTimestamp"))


async def apply_writes(
    api: ClusterAPI, resource: str, index: ServiceIndex, creates: list[Obj], updates: list[Obj], deletes: list[Obj]
) -> bool:
    """Creates, updates and deletes concurrently (one commit group); True if all went through.

    Each object's key goes into `index.expected` first, so the store event of our own write is
    recognised (and consumed) by `keys_for` instead of requeueing the Service.
    """
    marks: list[tuple[str, str]] = []
    for obj in creates:
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = str(meta.get("generateName", ""))[:58] + generate_suffix()
    for obj in [*creates, *updates, *deletes]:
        meta = objects.meta(obj)
        marks.append((str(meta.get("namespace", "")), str(meta.get("name", ""))))
    index.expected.update(marks)
    calls: list[Any] = [api.create(resource, obj) for obj in creates]
    calls += [api.update(resource, obj) for obj in updates]
    calls += [
        api.delete(resource, objects.meta(obj).get("namespace", ""), objects.meta(obj).get("name", ""),
                   preconditions={"uid": objects.meta(obj).get("uid", "")})
        for obj in deletes
    ]
    try:
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        index.expected.difference_update(marks)  # writes that produced no event (no-op, conflict)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return all(r is not None for r in results[: len(creates) + len(updates)])


class ServiceIndexed:
    """Per-cluster state shared by the Service-driven controllers (slices and legacy Endpoints).

    Pod (and node) changes are batched per Service as upstream's `--endpointslice-updates-batch-period`
    and `--endpoint-updates-batch-period` do: the cluster setting `batch_setting` (seconds, default 0 as
    upstream) delays the sync a pod change triggers, and the changes of that window share one sync.
    Service changes sync at once, as upstream's; so do writes by others to our objects (upstream waits
    at least 1 s for those, for its informer cache to catch up; reads here are never stale).
    """

    name: str = ""
    batch_setting: str = ""  # the cluster setting holding the batch period
    batch_default: float = 0.0  # upstream's default: every pod change syncs at once

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[ClusterStore, ServiceIndex] = weakref.WeakKeyDictionary()
        self._triggers: weakref.WeakKeyDictionary[ClusterStore, TriggerTimeTracker] = weakref.WeakKeyDictionary()

    def index(self, cluster: Cluster) -> ServiceIndex:
        index = self._indexes.get(cluster.store)
        if index is None:
            index = self._indexes[cluster.store] = ServiceIndex()
        return index

    def batch_period(self, cluster: Cluster) -> float:
        """The cluster's batch period in seconds (the default when unset or not a number)."""
        value = cluster.settings.get(self.batch_setting, self.batch_default)
        try:
            return max(0.0, float(value))
        except (TypeError, ValueError):
            return self.batch_default

    def batched(self, cluster: Cluster, keys: Iterable[Key]) -> set[Key]:
        """The keys to queue for a pod-triggered change (see `ServiceIndex.batch`)."""
        return self.index(cluster).batch(keys, time.monotonic(), self.batch_period(cluster))

    def urgent(self, cluster: Cluster, keys: set[Key]) -> set[Key]:
        """Keys whose sync must not wait for a batch window."""
        self.index(cluster).urgent.update(keys)
        return keys

    def service_or_pod_keys(self, cluster: Cluster, event: Event, track_nodes: bool) -> set[Key] | None:
        """The Services a Service or pod event touches (None for other resources): a Service syncs at
        once, a pod's Services in its batch window."""
        obj = event.entry.obj
        if event.resource == "/services":
            self.index(cluster).service_event(event.type, obj)
            meta = objects.meta(obj)
            return self.urgent(cluster, {(str(meta.get("namespace", "")), str(meta.get("name", "")))})
        if event.resource == "/pods":
            ns = str(objects.meta(obj).get("namespace", ""))
            services = self.index(cluster).pod_event(event.type, obj, track_nodes=track_nodes)
            return self.batched(cluster, [(ns, svc) for svc in services])
        return None

    def wait(self, api: ClusterAPI, key: Key) -> float | None:
        """At the start of a reconcile: None to sync now, or the seconds until the batch window closes."""
        return self.index(api.cluster).sync_due(key, time.monotonic())

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
        raise NotImplementedError


class EndpointSliceController(ServiceIndexed):
    """For every Service with a selector: EndpointSlices of its ready and not-ready pods (per IP family,
    at most `max_endpoints_per_slice` endpoints each), exactly as kube-controller-manager writes them."""

    name: str = "endpointslice-controller"
    watches: tuple[str, ...] = ("/services", "/pods", SLICES, "/nodes")
    batch_setting: str = "endpointSliceBatchPeriod"  # upstream's --endpointslice-updates-batch-period

    def __init__(self, max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        self.max_endpoints_per_slice = max_endpoints_per_slice
        super().__init__()

    # ------------------------------------------------------------------ events → Services

    def _keys_for(self, cluster: Cluster, event: Event) -> set[Key]:
        keys = self.service_or_pod_keys(cluster, event, track_nodes=True)
        if keys is not None:
            return keys
        obj = event.entry.obj
        meta = objects.meta(obj)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        index = self.index(cluster)
        if event.resource == SLICES:
            labels = objects.labels(obj)
            service = labels.get(SERVICE_NAME_LABEL)
            managed = labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and isinstance(service, str) and service
            pods = target_pods(ns, obj.get("endpoints") or []) if managed else []
            before = index.set_members(ns, name, str(service) if managed and event.type != "DELETED" else None, pods)
            if (ns, name) in index.expected:
                index.expected.discard((ns, name))
                return set()
            keys = {(ns, str(service))} if managed else set()
            if before and before != service:
                keys.add((ns, before))  # relabelled or no longer ours: the old Service must resync
            return self.urgent(cluster, keys)
        if event.resource == "/nodes":
            on_node = index.node_event(event.type, obj)
            keys = set()
            for pod_ns, pod_name in on_node or ():
                entry = cluster.store.get("/pods", pod_ns, pod_name)
                pod_labels = objects.labels(entry.obj) if entry else {}
                keys.update((pod_ns, svc) for svc in index.services_for_pod(pod_ns, pod_name, pod_labels))
            return self.batched(cluster, keys)  # what changed is the node of some pods: a pod change
        return set()

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        wait = self.wait(api, key)
        if wait is not None:
            return wait  # a batch window is open: the requeue syncs once it closes
        namespace, name = key
        api = api.as_manager(FIELD_MANAGER)
        index = self.index(api.cluster)
        service = api.get("/services", namespace, name)
        if service is not None and not controls(service):
            index.memos.pop(key, None)
            return None  # ExternalName or no selector: the user's slices, never touched (as upstream)
        slices = [
            s for s in api.objects(SLICES, namespace)
            if objects.labels(s).get(SERVICE_NAME_LABEL) == name
            and objects.labels(s).get(MANAGED_BY_LABEL) == CONTROLLER_NAME
        ]
        if service is None:
            self._tracker(api.cluster).forget(namespace, name)
            index.memos.pop(key, None)
            # the GC removes owned slices; this catches those created in a race with the deletion
            orphans = [s for s in slices if not objects.meta(s).get("deletionTimestamp") and self._orphaned(api, s)]
            if orphans:
                await apply_writes(api, SLICES, index, [], [], orphans)
            return None
        pods = select_pods(service, api.objects("/pods", namespace))
        node_names = {str((p.get("spec") or {}).get("nodeName") or "") for p in pods}
        nodes = {n: node for n in node_names if n and (node := api.get("/nodes", "", n)) is not None}
        trigger = self._tracker(api.cluster).compute(service, pods)
        plan = plan_slices(service, pods, nodes, slices, trigger, self.max_endpoints_per_slice, index.memo(*key))
        if plan.missing_nodes:
            # upstream skips such pods and retries; here the node's arrival requeues the Service
            log.debug("%s: %s/%s has pods on unknown nodes %s", self.name, namespace, name, plan.missing_nodes)
        if not plan:
            return None
        done = await apply_writes(api, SLICES, index, plan.creates, plan.updates, plan.deletes)
        if not done and not namespace_closed(api, namespace):
            return 1.0  # a conflict or a taken name: look again (upstream's base backoff)
        return None

    @staticmethod
    def _orphaned(api: ClusterAPI, slice_: Obj) -> bool:
        refs = [r for r in objects.meta(slice_).get("ownerReferences") or []
                if isinstance(r, dict) and r.get("kind") == "Service"]
        return bool(refs) and not any(api.cluster.store.uid_exists(str(r.get("uid", ""))) for r in refs)

