"""The member's objects the zone answers from, through the runtime's shared informers (watch + relist).

Three views, as coredns/multicluster watches: ServiceImports, EndpointSlices carrying the
`multicluster.kubernetes.io/service-name` label, and Namespaces. Each event tells the zone which service (or
namespace) to forget, and schedules packing that service's answers again on the next loop turn, so a burst of
events (a relist, a slice per cluster) costs one rebuild per service. A relist keeps the old objects in the
cache until the new list replaces them, so the zone answers throughout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from clusterset.api.mcs import SERVICE_IMPORTS, SERVICE_NAME_LABEL
from clusterset.api.resources import ENDPOINT_SLICES, NAMESPACES
from clusterset.dns.zone import ServiceKey, Zone
from clusterset.runtime import Cluster, Event
from clusterset.runtime.informer import ADDED, DELETED

log = logging.getLogger(__name__)


class ClusterSource:
    """A Zone's Source on a runtime Cluster; `attach(zone)` starts the informers (shared with anything else
    reading the same views of that cluster)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.imports = cluster.cache(SERVICE_IMPORTS)
        self.slices_cache = cluster.cache(ENDPOINT_SLICES, label_selector=SERVICE_NAME_LABEL)
        self.namespaces = cluster.cache(NAMESPACES)
        self._zone: Zone | None = None
        self._pending: set[ServiceKey] = set()
        self._flush: asyncio.Handle | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def synced(self) -> bool:
        return all(c.synced.is_set() for c in (self.imports, self.slices_cache, self.namespaces))

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(asyncio.gather(
            *(c.synced.wait() for c in (self.imports, self.slices_cache, self.namespaces))), timeout)

    def namespace_exists(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def service_import(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.imports.get((namespace, name))

    def slices(self, namespace: str, name: str) -> list[Mapping[str, Any]]:
        return list(self.slices_cache.list(namespace, {SERVICE_NAME_LABEL: name}))

    # ------------------------------------------------------------------ events
    def attach(self, zone: Zone) -> None:
        self._zone = zone
        self.cluster.informer(SERVICE_IMPORTS).add_handler(self._on_import)
        self.cluster.informer(ENDPOINT_SLICES, label_selector=SERVICE_NAME_LABEL).add_handler(self._on_slice)
        self.cluster.informer(NAMESPACES).add_handler(self._on_namespace)
        self._tasks = [asyncio.create_task(self._on_synced(c.synced), name="dns source synced")
                       for c in (self.imports, self.slices_cache, self.namespaces)]

    def detach(self) -> None:
        self.cluster.informer(SERVICE_IMPORTS).remove_handler(self._on_import)
        self.cluster.informer(ENDPOINT_SLICES, label_selector=SERVICE_NAME_LABEL).remove_handler(self._on_slice)
        self.cluster.informer(NAMESPACES).remove_handler(self._on_namespace)
        if self._flush is not None:
            self._flush.cancel()
        for task in self._tasks:
            task.cancel()
        self._zone = None

    async def _on_synced(self, synced: asyncio.Event) -> None:
        await synced.wait()
        if self.synced and self._zone is not None:
            self._zone.clear()  # start afresh: nothing packed before every view was loaded is kept
            self._pending.update(_key(o) for o in self.imports.list())
            self._schedule()

    def _on_import(self, event: Event) -> None:
        self._changed(_key(event.obj))

    def _on_slice(self, event: Event) -> None:
        namespace = _key(event.obj)[0]
        for obj in (event.obj, event.old):
            name = ((obj or {}).get("metadata") or {}).get("labels", {}).get(SERVICE_NAME_LABEL)
            if obj is not None and name:
                self._changed((namespace, str(name)))

    def _on_namespace(self, event: Event) -> None:
        if self._zone is not None and event.type in (ADDED, DELETED):  # a terminating namespace still exists
            name = _key(event.obj)[1]
            self._zone.namespace_changed(name)
            self._pending.update(_key(o) for o in self.imports.list(name))
            self._schedule()

    def _changed(self, key: ServiceKey) -> None:
        if self._zone is not None and self._zone.service_changed(*key):
            self._pending.add(key)
            self._schedule()

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_soon(self._warm)

    def _warm(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, set()
        if self._zone is None or not self.synced:
            return
        for namespace, name in sorted(pending):
            try:
                self._zone.warm(namespace, name)
            except Exception:  # one bad object must not stop the others' answers
                log.exception("packing the answers of service=%s/%s failed", namespace, name)


def _key(obj: Mapping[str, Any]) -> ServiceKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
