"""What kube-controller-manager does with namespaces: a new one gets its `default` ServiceAccount and the
`kube-root-ca.crt` ConfigMap; a deleted one is emptied, then finalized (the namespace controller)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.storage.store import ANY_RESOURCE, Event

log = logging.getLogger(__name__)

NAMESPACES = "/namespaces"
SERVICE_ACCOUNTS = "/serviceaccounts"
CONFIG_MAPS = "/configmaps"
ROOT_CA = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters."
)
# a namespace whose content cannot all be deleted yet (finalizers, grace periods) is looked at again this often;
# the deletions of its objects wake it sooner
RETRY_SECONDS = 1.0


def _active(event: Event) -> Iterable[Key]:
    meta = event.entry.obj["metadata"]
    return [] if event.type == "DELETED" or meta.get("deletionTimestamp") else [("", meta["name"])]


class NamespaceDefaults:
    """The serviceaccounts controller's `default` ServiceAccount and the root-ca-cert-publisher's ConfigMap."""

    name = "namespace-defaults"
    watches: tuple[str, ...] = (NAMESPACES,)

    def __init__(self, ca_pem: str) -> None:
        self.ca_pem = ca_pem

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        store, name = cluster.store, event.entry.obj["metadata"]["name"]
        if store.get(SERVICE_ACCOUNTS, name, "default") and store.get(CONFIG_MAPS, name, ROOT_CA):
            return []  # nothing to add (a restart relists every namespace)
        return _active(event)

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace = key[1]
        ns = api.get(NAMESPACES, "", namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        writes = []
        if api.get(SERVICE_ACCOUNTS, namespace, "default") is None:
            writes.append(api.as_manager("kube-controller-manager").create(
                SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": namespace}}))
        if api.get(CONFIG_MAPS, namespace, ROOT_CA) is None:
            writes.append(api.as_manager("kube-root-ca-cert-publisher").create(CONFIG_MAPS, {
                "metadata": {"name": ROOT_CA, "namespace": namespace,
                             "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self.ca_pem},
            }))
        await asyncio.gather(*writes)  # one commit for both
        return None


class NamespaceController:
    """Deletes every object of a terminating namespace, then removes the `kubernetes` finalizer."""

    name = "namespace"
    watches: tuple[str, ...] = (NAMESPACES, ANY_RESOURCE)

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        meta = event.entry.obj["metadata"]
        if event.resource == NAMESPACES:
            return [("", meta["name"])] if meta.get("deletionTimestamp") and event.type != "DELETED" else []
        namespace = meta.get("namespace")
        if event.type != "DELETED" or not namespace:
            return []
        ns = cluster.store.get(NAMESPACES, "", namespace)
        return [("", namespace)] if ns is not None and ns.obj["metadata"].get("deletionTimestamp") else []

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        api = api.as_manager("kube-controller-manager")
        namespace = key[1]
        entry = api.cluster.store.get(NAMESPACES, "", namespace)
        if entry is None or not entry.obj["metadata"].get("deletionTimestamp"):
            return None
        remaining = await self._delete_content(api, namespace)
        if remaining:
            conditions = (entry.obj.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "NamespaceContentRemaining" for c in conditions):
                await self._report_remaining(api, namespace, remaining)
            return RETRY_SECONDS
        entry = api.cluster.store.get(NAMESPACES, "", namespace)
        if entry is None:
            return None
        final = entry.copy()
        final.setdefault("spec", {})["finalizers"] = [
            f for f in (final.get("spec") or {}).get("finalizers", []) if f != "kubernetes"
        ]
        await api.rest.write(api.ctx(NAMESPACES, None), entry, final, "finalize")
        return None

    async def _delete_content(self, api: ClusterAPI, namespace: str) -> dict[str, int]:
        """Deletes what is not yet being deleted; returns what remains, per resource."""
        remaining: dict[str, int] = {}
        for served in _namespaced_resources(api.cluster):
            for entry in api.cluster.store.entries(served.key, namespace):
                remaining[served.rt.qualified] = remaining.get(served.rt.qualified, 0) + 1
                if entry.obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await api.delete(served.key, namespace, entry.obj["metadata"]["name"],
                                     propagationPolicy="Background")
                except StatusError as err:
                    log.warning("namespace %s cleanup: %s", namespace, err)
        return remaining

    async def _report_remaining(self, api: ClusterAPI, namespace: str, remaining: dict[str, int]) -> None:
        entry = api.cluster.store.get(NAMESPACES, "", namespace)
        if entry is None:
            return
        ns = entry.copy()
        text = ", ".join(f"{res} has {n} resource instances" for res, n in sorted(remaining.items()))
        now = now_rfc3339()
        ns.setdefault("status", {})["conditions"] = [
            {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now}
            for type_, status, reason, message in (
                ("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                 "All resources successfully discovered"),
                ("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
                 "All legacy kube types successfully parsed"),
                ("NamespaceDeletionContentFailure", "False", "ContentDeleted",
                 "All content successfully deleted, may be waiting on finalization"),
                ("NamespaceContentRemaining", "True", "SomeResourcesRemain", f"Some resources are remaining: {text}"),
                ("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                 "All content-preserving finalizers finished"),
            )
        ]
        await api.rest.write(api.ctx(NAMESPACES, None), entry, ns, "status")


def _namespaced_resources(cluster: Cluster) -> list[Served]:
    seen: set[str] = set()
    out = []
    for served in cluster.registry.all():
        if served.rt.namespaced and served.key not in seen:
            seen.add(served.key)
            out.append(served)
    return out
