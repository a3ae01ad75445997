"""kube-controller-manager's garbage collector: ownerReferences with Background, Foreground and Orphan
propagation. Keys are owner uids; the store's dependents index says who points at them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import ANY_RESOURCE, Entry, Event

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# an owner waiting for its dependents (Foreground) is looked at again this often; their deletions wake it sooner
RETRY_SECONDS = 1.0


class GarbageCollector:
    name = "garbagecollector"
    watches: tuple[str, ...] = (ANY_RESOURCE,)

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        meta = event.entry.obj["metadata"]
        store = cluster.store
        if event.type == "DELETED":
            keys = [("", meta["uid"])] if store.has_dependents(meta["uid"]) else []
            for ref in meta.get("ownerReferences") or []:  # an owner deleting in the foreground waits for this
                owner = store.by_uid(str(ref.get("uid", "")))
                if owner is not None and FOREGROUND in (owner[1].obj["metadata"].get("finalizers") or []):
                    keys.append(("", owner[1].obj["metadata"]["uid"]))
            return keys
        finalizers = meta.get("finalizers") or ()
        if meta.get("deletionTimestamp") and (ORPHAN in finalizers or FOREGROUND in finalizers):
            return [("", meta["uid"])]
        return []

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        api = api.as_manager("kube-controller-manager")
        uid = key[1]
        found = api.cluster.store.by_uid(uid)
        if found is None:
            await self._collect_dependents(api, uid)
            return None
        resource, owner = found
        meta = owner.obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if not meta.get("deletionTimestamp") or not (ORPHAN in finalizers or FOREGROUND in finalizers):
            return None
        dependents = api.cluster.store.dependents(uid)
        if ORPHAN in finalizers:
            for dep_resource, dep in dependents:
                await self._drop_owner(api, dep_resource, dep, uid, keep_empty=False)
            await self._finish(api, resource, owner, ORPHAN)
            return None
        if dependents:
            for dep_resource, dep in dependents:
                if not dep.obj["metadata"].get("deletionTimestamp"):
                    await self._delete(api, dep_resource, dep, "Foreground")
            return RETRY_SECONDS
        await self._finish(api, resource, owner, FOREGROUND)
        return None

    async def _collect_dependents(self, api: ClusterAPI, owner_uid: str) -> None:
        """Background propagation: delete objects whose owners are all gone, drop the reference elsewhere."""
        store = api.cluster.store
        for resource, dep in store.dependents(owner_uid):
            refs = dep.obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and store.uid_exists(r.get("uid", ""))]
            if alive:
                await self._drop_owner(api, resource, dep, owner_uid, keep_empty=True)
            elif not dep.obj["metadata"].get("deletionTimestamp"):
                await self._delete(api, resource, dep, "Background")

    async def _drop_owner(self, api: ClusterAPI, resource: str, dep: Entry, owner_uid: str, *,
                          keep_empty: bool) -> None:
        new = dep.copy()
        refs = [r for r in new["metadata"].get("ownerReferences", []) if r.get("uid") != owner_uid]
        new["metadata"]["ownerReferences"] = refs
        if not refs and not keep_empty:
            del new["metadata"]["ownerReferences"]
        await self._write(api, resource, dep, new)

    async def _delete(self, api: ClusterAPI, resource: str, dep: Entry, policy: str) -> None:
        meta = dep.obj["metadata"]
        try:
            await api.delete(resource, meta.get("namespace", ""), meta["name"], propagationPolicy=policy)
        except StatusError as err:
            log.warning("garbage collection in %s: %s", api.cluster.name, err)

    async def _finish(self, api: ClusterAPI, resource: str, owner: Entry, finalizer: str) -> None:
        new = owner.copy()
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers", []) if f != finalizer]
        await self._write(api, resource, owner, new)

    async def _write(self, api: ClusterAPI, resource: str, old: Entry, new: dict[str, object]) -> None:
        ctx = api.ctx(resource, old.obj["metadata"].get("namespace"))
        try:
            await api.rest.write(ctx, old, new, None)
        except StatusError as err:
            if err.code not in (404, 409):
                log.warning("garbage collection in %s: %s", api.cluster.name, err)
