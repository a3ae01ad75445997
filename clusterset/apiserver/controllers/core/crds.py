"""CustomResourceDefinitions, as kube-apiserver's apiextensions controllers handle them: an established CRD's
versions are served (and unserved once the CRD is gone); a deleted CRD's objects are deleted before the
CRD's `customresourcecleanup` finalizer is removed."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.kinds.apiextensions import (
    CRD_FINALIZER,
    CRD_RESOURCE,
    crd_served,
    established_status,
    terminating_condition,
)
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.names import new_uid
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.encoding import kept
from clusterset.apiserver.storage.store import ANY_RESOURCE, Born, Entry, Event, Obj, created_at

log = logging.getLogger(__name__)

MANAGER = "kube-apiserver"
# a terminating CRD whose objects cannot all go yet (finalizers) is looked at again this often; their deletions
# wake it sooner
RETRY_SECONDS = 1.0


def _group_resource(crd_name: str) -> tuple[str, str]:
    plural, _, group = crd_name.partition(".")
    return group, plural


class CRDEstablishing:
    """Serves each version of a CRD as its spec says and marks it NamesAccepted and Established; forgets the
    resource (its watches, its objects) once the CRD is gone."""

    name = "crd-establishing"
    watches: tuple[str, ...] = (CRD_RESOURCE,)

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        return [("", event.entry.obj["metadata"]["name"])]

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        cluster = api.cluster
        entry = cluster.store.get(CRD_RESOURCE, "", key[1])
        group, plural = _group_resource(key[1])
        if entry is None:
            if cluster.registry.of_group_resource(group, plural):
                storage = f"{group}/{plural}"
                cluster.store.close_watchers(storage)
                cluster.store.drop_resource(storage)
                cluster.registry.remove_group_resource(group, plural)
            return None
        crd = entry.obj
        if crd["metadata"].get("deletionTimestamp"):
            return None
        want = crd_served(crd)
        if [s.rt for s in cluster.registry.of_group_resource(group, plural)] != [s.rt for s in want]:
            cluster.registry.remove_group_resource(group, plural)
            for served in want:
                cluster.registry.add(served)
        status = established_status(crd)
        if status != crd.get("status"):
            new = entry.copy()
            new["status"] = status
            try:
                await api.rest.write(api.as_manager(MANAGER).ctx(CRD_RESOURCE, None), entry, new, "status")
            except StatusError as err:
                if err.code != 409:
                    raise
                return 0.0  # written meanwhile: look again
        return None


class CRDFinalizer:
    """Deletes every object of a terminating CRD (honouring their finalizers), then releases the CRD."""

    name = "crd-finalizer"
    watches: tuple[str, ...] = (CRD_RESOURCE, ANY_RESOURCE)

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        if event.resource == CRD_RESOURCE:
            meta = event.entry.obj["metadata"]
            return [("", meta["name"])] if meta.get("deletionTimestamp") and event.type != "DELETED" else []
        if event.type != "DELETED":
            return []
        group, _, plural = event.resource.partition("/")
        crd = cluster.store.get(CRD_RESOURCE, "", f"{plural}.{group}") if group else None
        return [("", f"{plural}.{group}")] if crd is not None and crd.obj["metadata"].get("deletionTimestamp") else []

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        api = api.as_manager(MANAGER)
        store = api.cluster.store
        entry = store.get(CRD_RESOURCE, "", key[1])
        if entry is None or not entry.obj["metadata"].get("deletionTimestamp") \
                or CRD_FINALIZER not in (entry.obj["metadata"].get("finalizers") or []):
            return None
        conditions = (entry.obj.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Terminating" and c.get("status") == "True" for c in conditions):
            new = entry.copy()
            kept = [c for c in conditions if c.get("type") != "Terminating"]
            new.setdefault("status", {})["conditions"] = [*kept, terminating_condition()]
            await api.rest.write(api.ctx(CRD_RESOURCE, None), entry, new, "status")
        group, plural = _group_resource(key[1])
        storage = f"{group}/{plural}"
        remaining = store.entries(storage)
        if remaining and api.cluster.registry.by_key(storage) is not None:
            for obj_entry in remaining:
                meta = obj_entry.obj["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                try:
                    await api.delete(storage, meta.get("namespace", ""), meta["name"])
                except StatusError as err:
                    log.warning("CRD %s cleanup: %s", key[1], err)
            return RETRY_SECONDS
        current = store.get(CRD_RESOURCE, "", key[1])
        if current is None:
            return None
        final = current.copy()
        final["metadata"]["finalizers"] = [f for f in final["metadata"].get("finalizers", []) if f != CRD_FINALIZER]
        await api.rest.write(api.ctx(CRD_RESOURCE, None), current, final, None)
        return None


@dataclass(eq=False)
class ClusterCRDs:
    """CRDs a new cluster is born with (`Apiserver.add_cluster(crds=...)`): stored with its other bootstrap objects,
    Established and served from its first request, exactly as if `field_manager` had created them and this
    controller had accepted them (the same spec, status, conditions and managedFields), each cluster's its own
    objects (uids, resourceVersions, times). Normal objects from then on: updated, watched, deleted as any CRD.

    Validated once: the first cluster that needs them runs each through the create pipeline and then this controller's
    status write, both as dry runs; every cluster after copies the result, with no history rows and no reconcile
    (the embedded fleet's members: their join finds them installed and writes nothing). One instance per set of
    CRDs, made once and shared: it holds the prepared copies and the served resources, which every cluster shares
    (their compiled schemas with them)."""

    manifests: Sequence[Obj]
    field_manager: str
    _prepared: list[tuple[bytes, list[Served]]] | None = field(default=None, init=False, repr=False)
    _born_at: tuple[str, list[Born]] | None = field(default=None, init=False, repr=False)

    @property
    def prepared(self) -> bool:
        return self._prepared is not None

    async def prepare(self, rest: Rest, ctx: Ctx) -> None:
        """Builds the objects (`ctx`: the CRD resource in a new cluster, as `field_manager`); a manifest the server
        would refuse raises its StatusError, as its create would."""
        prepared = []
        for manifest in self.manifests:
            created = await rest.create(dataclasses.replace(ctx, dry_run=True), copy.deepcopy(manifest))
            created["metadata"]["resourceVersion"] = "1"  # as stored (each cluster's own is set when it is)
            established = {**created, "status": established_status(created)}
            status_ctx = dataclasses.replace(ctx, manager=MANAGER, manager_explicit=True, dry_run=True)
            written = await rest.write(status_ctx, Entry(created), established, "status")
            prepared.append((kept(orjson.dumps(written)), crd_served(written)))
        self._prepared = prepared

    def install(self, cluster: Cluster, now: str) -> None:
        """Stores the prepared CRDs in a new cluster (no history rows: nobody watches it yet) and serves their
        versions: what this controller would have done, so it has nothing to reconcile."""
        assert self._prepared is not None, "prepare() first"
        for born, (_, served) in zip(self._born(now), self._prepared, strict=True):
            cluster.store.put_born(born, new_uid())
            for version in served:
                cluster.registry.add(version)

    def _born(self, now: str) -> list[Born]:
        """The CRDs of the clusters born at `now` (those of the last such second are kept)."""
        assert self._prepared is not None
        if self._born_at is None or self._born_at[0] != now:
            born = []
            for raw, _ in self._prepared:
                obj = created_at(raw, now)
                for cond in obj["status"]["conditions"]:
                    cond["lastTransitionTime"] = now
                born.append(Born(CRD_RESOURCE, obj))
            self._born_at = now, born
        return self._born_at[1]

    def served_versions(self) -> list[tuple[str, str]]:
        """(group, version) of every version the CRDs serve."""
        assert self._prepared is not None, "prepare() first"
        return list(dict.fromkeys((s.rt.group, s.rt.version) for _, served in self._prepared for s in served))
