"""What kube-apiserver's admission and kube-controller-manager do around writes, in-process.

- namespaces: a new one gets its `default` ServiceAccount and `kube-root-ca.crt`; a deleted
  one is emptied, then finalized (the namespace controller);
- ownerReferences garbage collection with Background, Foreground and Orphan propagation;
- CRDs: validated, established (their resources served), and on deletion their objects are
  removed before the CRD goes;
- custom resources: schema pruning, defaulting and validation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from clusterset.apiserver.admission import about
from clusterset.apiserver.kinds.apiextensions import CRD_RESOURCE, crd_served, established_status, terminating_condition
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError, StatusError
from clusterset.apiserver.registry.cluster import Cluster, Served
from clusterset.apiserver.schema.builtin import builtin_schema
from clusterset.apiserver.schema.structural import Schema
from clusterset.apiserver.schema.transition_rules import immutability_errors
from clusterset.apiserver.storage.store import Obj

if TYPE_CHECKING:
    from clusterset.apiserver.registry.rest import Ctx, Rest

log = logging.getLogger(__name__)

PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class Lifecycle:
    def __init__(self, rest: Rest, ca_pem: str) -> None:
        self.rest = rest
        self.ca_pem = ca_pem
        rest.lifecycle = self

    # ---------------------------------------------------------------- schemas
    def schema_for(self, served: Served) -> Schema | None:
        """The pruning/validation schema of a resource (CR: its CRD version; built-in: generated)."""
        rt = served.rt
        if "compiled_schema" not in rt.extra:
            raw = rt.schema if rt.is_crd else builtin_schema(rt.group, rt.version, rt.kind)
            rt.extra["compiled_schema"] = Schema(raw) if raw else None
        compiled: Schema | None = rt.extra["compiled_schema"]
        return compiled

    def default(self, ctx: Ctx, obj: Obj) -> None:
        if ctx.rt.is_crd:
            schema = self.schema_for(ctx.served)
            if schema is not None:
                schema.apply_defaults(obj)

    def validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> list[FieldError]:
        rt = ctx.rt
        if not rt.is_crd:
            return []
        schema = self.schema_for(ctx.served)
        problems = schema.validate(obj) if schema is not None else []
        if old is not None:
            problems += immutability_errors(rt.schema, obj, old)
        if about.is_cluster_property(rt.group, rt.plural) and not problems:
            problems += about.validate(ctx.cluster.store, obj, old)
        return problems

    # ---------------------------------------------------------------- admission
    def admit_create(self, ctx: Ctx, obj: Obj) -> None:
        rt = ctx.rt
        if rt.is_crd:
            crd = self._crd_of(ctx.cluster, rt.group, rt.plural)
            if crd is not None and crd.get("metadata", {}).get("deletionTimestamp"):
                raise StatusError(
                    405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating", {}
                )

    def admit_delete(self, ctx: Ctx, obj: Obj) -> None:
        rt = ctx.rt
        name = obj["metadata"]["name"]
        if rt.group == "" and rt.plural == "namespaces" and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        if about.is_cluster_property(rt.group, rt.plural):
            about.admit_delete(ctx.cluster.store, obj)

    def deletion_finalizers(self, ctx: Ctx, obj: Obj) -> list[str]:
        """Finalizers the server itself adds on DELETE (namespaces and CRDs wait for cleanup)."""
        rt = ctx.rt
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            return [] if CRD_FINALIZER in (obj["metadata"].get("finalizers") or []) else [CRD_FINALIZER]
        return []

    # ---------------------------------------------------------------- after writes
    def after_create(self, ctx: Ctx, obj: Obj) -> None:
        rt = ctx.rt
        if rt.group == "" and rt.plural == "namespaces":
            self.rest.spawn(ctx.cluster.name, self._populate_namespace(ctx.cluster, obj["metadata"]["name"]))
        elif rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self.rest.spawn(ctx.cluster.name, self._establish(ctx.cluster, obj["metadata"]["name"]))

    def after_update(self, ctx: Ctx, obj: Obj, old: Obj) -> None:
        rt = ctx.rt
        is_crd = rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions"
        if is_crd and obj.get("spec") != old.get("spec") and not obj["metadata"].get("deletionTimestamp"):
            self.rest.spawn(ctx.cluster.name, self._establish(ctx.cluster, obj["metadata"]["name"]))

    def after_deleting(self, ctx: Ctx, obj: Obj) -> None:
        """The object got a deletionTimestamp and waits for finalizers that we may own."""
        rt = ctx.rt
        name = obj["metadata"]["name"]
        if rt.group == "" and rt.plural == "namespaces":
            self.rest.spawn(ctx.cluster.name, self._terminate_namespace(ctx.cluster, name))
        elif rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self.rest.spawn(ctx.cluster.name, self._cleanup_crd(ctx.cluster, name))
        finalizers = obj["metadata"].get("finalizers") or []
        if "orphan" in finalizers or "foregroundDeletion" in finalizers:
            self.rest.spawn(ctx.cluster.name, self._collect_owner(ctx, obj))

    def after_delete(self, ctx: Ctx, obj: Obj, policy: str) -> None:
        self.rest.spawn(ctx.cluster.name, self._collect_dependents(ctx.cluster, obj["metadata"]["uid"]))
        rt = ctx.rt
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            self._unserve_crd(ctx.cluster, obj)

    # ---------------------------------------------------------------- namespaces
    async def _populate_namespace(self, cluster: Cluster, namespace: str) -> None:
        from clusterset.apiserver.registry.rest import Ctx

        sa = Ctx(cluster, _served(cluster, "", "serviceaccounts"), namespace, manager="kube-controller-manager")
        cm = Ctx(cluster, _served(cluster, "", "configmaps"), namespace, manager="kube-root-ca-cert-publisher")
        for ctx, body in (
            (sa, {"metadata": {"name": "default"}}),
            (
                cm,
                {
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "annotations": {
                            "kubernetes.io/description": "Contains a CA bundle that can be used "
                            "to verify the kube-apiserver when using internal endpoints such as "
                            "the internal service IP or kubernetes.default.svc. No other usage "
                            "is guaranteed across distributions of Kubernetes clusters."
                        },
                    },
                    "data": {"ca.crt": self.ca_pem},
                },
            ),
        ):
            try:
                await self.rest.create(ctx, body)
            except StatusError as err:
                if err.code not in (403, 404, 409):
                    log.warning("populating namespace %s/%s: %s", cluster.name, namespace, err)

    async def _terminate_namespace(self, cluster: Cluster, namespace: str) -> None:
        """The namespace controller: delete every namespaced object, wait, then finalize."""
        from clusterset.apiserver.registry.rest import Ctx

        ns_served = _served(cluster, "", "namespaces")
        ns_ctx = Ctx(cluster, ns_served, None, manager="kube-controller-manager")
        attempt = 0
        while cluster.store.get("/namespaces", "", namespace) is not None:
            remaining = await self._delete_namespace_content(cluster, namespace)
            if not remaining:
                break
            if attempt == 0:
                await self._namespace_conditions(ns_ctx, namespace, remaining)
            attempt += 1
            await asyncio.sleep(min(1.0, 0.01 * 2 ** min(attempt, 7)))
        entry = cluster.store.get("/namespaces", "", namespace)
        if entry is None:
            return
        final = entry.copy()
        final.setdefault("spec", {})["finalizers"] = [
            f for f in (final.get("spec") or {}).get("finalizers", []) if f != "kubernetes"
        ]
        await self.rest._write(ns_ctx, entry, final, "finalize")

    async def _delete_namespace_content(self, cluster: Cluster, namespace: str) -> dict[str, int]:
        """Deletes what is not yet being deleted; returns what remains, per resource."""
        from clusterset.apiserver.registry.rest import Ctx

        remaining: dict[str, int] = {}
        for served in _namespaced_resources(cluster):
            ctx = Ctx(cluster, served, namespace, manager="kube-controller-manager")
            for obj_entry in cluster.store.entries(served.key, namespace):
                remaining[served.rt.qualified] = remaining.get(served.rt.qualified, 0) + 1
                if obj_entry.obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.rest.delete(ctx, obj_entry.obj["metadata"]["name"], {"propagationPolicy": "Background"})
                except StatusError as err:
                    if err.code != 404:
                        log.warning("namespace %s cleanup: %s", namespace, err)
        return remaining

    async def _namespace_conditions(self, ctx: Ctx, namespace: str, remaining: dict[str, int]) -> None:
        entry = ctx.cluster.store.get("/namespaces", "", namespace)
        if entry is None:
            return
        ns = entry.copy()
        from clusterset.apiserver.registry.rest import now_rfc3339

        text = ", ".join(f"{res} has {n} resource instances" for res, n in sorted(remaining.items()))
        now = now_rfc3339()
        ns["status"]["conditions"] = [
            {
                "type": "NamespaceDeletionDiscoveryFailure",
                "status": "False",
                "reason": "ResourcesDiscovered",
                "message": "All resources successfully discovered",
                "lastTransitionTime": now,
            },
            {
                "type": "NamespaceDeletionGroupVersionParsingFailure",
                "status": "False",
                "reason": "ParsedGroupVersions",
                "message": "All legacy kube types successfully parsed",
                "lastTransitionTime": now,
            },
            {
                "type": "NamespaceDeletionContentFailure",
                "status": "False",
                "reason": "ContentDeleted",
                "message": "All content successfully deleted, may be waiting on finalization",
                "lastTransitionTime": now,
            },
            {
                "type": "NamespaceContentRemaining",
                "status": "True",
                "reason": "SomeResourcesRemain",
                "message": f"Some resources are remaining: {text}",
                "lastTransitionTime": now,
            },
            {
                "type": "NamespaceFinalizersRemaining",
                "status": "False",
                "reason": "ContentHasNoFinalizers",
                "message": "All content-preserving finalizers finished",
                "lastTransitionTime": now,
            },
        ]
        await self.rest._write(ctx, entry, ns, "status")

    # ---------------------------------------------------------------- garbage collection
    async def _collect_dependents(self, cluster: Cluster, owner_uid: str) -> None:
        """Background propagation: delete objects whose owners are all gone."""
        from clusterset.apiserver.registry.rest import Ctx

        for served, entry in _dependents(cluster, owner_uid):
            refs = entry.obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and _uid_exists(cluster, r.get("uid", ""))]
            ns = entry.obj["metadata"].get("namespace")
            ctx = Ctx(cluster, served, ns, manager="kube-controller-manager")
            try:
                if alive:
                    new = entry.copy()
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                    await self.rest._write(ctx, entry, new, None)
                elif not entry.obj["metadata"].get("deletionTimestamp"):
                    await self.rest.delete(ctx, entry.obj["metadata"]["name"], {"propagationPolicy": "Background"})
            except StatusError as err:
                if err.code not in (404, 409):
                    log.warning("garbage collection in %s: %s", cluster.name, err)

    async def _collect_owner(self, ctx: Ctx, owner: Obj) -> None:
        """Orphan: strip ownerRefs from dependents; Foreground: delete dependents, then the owner."""
        from clusterset.apiserver.registry.rest import Ctx as RestCtx

        cluster = ctx.cluster
        uid = owner["metadata"]["uid"]
        orphan = "orphan" in (owner["metadata"].get("finalizers") or [])
        finalizer = "orphan" if orphan else "foregroundDeletion"
        for attempt in range(1200):
            deps = _dependents(cluster, uid)
            if orphan or not deps:
                for served, entry in deps:
                    dctx = RestCtx(
                        cluster, served, entry.obj["metadata"].get("namespace"), manager="kube-controller-manager"
                    )
                    new = entry.copy()
                    new["metadata"]["ownerReferences"] = [
                        r for r in new["metadata"].get("ownerReferences", []) if r.get("uid") != uid
                    ]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    try:
                        await self.rest._write(dctx, entry, new, None)
                    except StatusError as err:
                        log.warning("orphaning in %s: %s", cluster.name, err)
                break
            if attempt == 0:
                for served, entry in deps:
                    dctx = RestCtx(
                        cluster, served, entry.obj["metadata"].get("namespace"), manager="kube-controller-manager"
                    )
                    try:
                        await self.rest.delete(dctx, entry.obj["metadata"]["name"], {"propagationPolicy": "Foreground"})
                    except StatusError as err:
                        if err.code != 404:
                            log.warning("foreground deletion in %s: %s", cluster.name, err)
            await asyncio.sleep(0.05 if attempt < 40 else 0.5)
        current = cluster.store.get(ctx.served.key, ctx.namespace or "", owner["metadata"]["name"])
        if current is None or current.obj["metadata"]["uid"] != uid:
            return
        new = current.copy()
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers", []) if f != finalizer]
        try:
            await self.rest._write(ctx, current, new, None)
        except StatusError as err:
            log.warning("finishing %s deletion in %s: %s", finalizer, cluster.name, err)

    # ---------------------------------------------------------------- CRDs
    def _crd_of(self, cluster: Cluster, group: str, plural: str) -> Obj | None:
        entry = cluster.store.get(CRD_RESOURCE, "", f"{plural}.{group}")
        return entry.obj if entry else None

    async def _establish(self, cluster: Cluster, name: str) -> None:
        """Serves the CRD's versions and marks it NamesAccepted and Established."""
        from clusterset.apiserver.registry.rest import Ctx

        entry = cluster.store.get(CRD_RESOURCE, "", name)
        if entry is None:
            return
        crd = entry.obj
        spec = crd.get("spec") or {}
        cluster.registry.remove_group_resource(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        for served in crd_served(crd):
            cluster.registry.add(served)
        new = entry.copy()
        new["status"] = established_status(crd)
        ctx = Ctx(
            cluster,
            _served(cluster, "apiextensions.k8s.io", "customresourcedefinitions"),
            None,
            manager="kube-apiserver",
        )
        try:
            await self.rest._write(ctx, entry, new, "status")
        except StatusError as err:
            log.warning("establishing %s in %s: %s", name, cluster.name, err)

    async def _cleanup_crd(self, cluster: Cluster, name: str) -> None:
        """Deletes every object of a terminating CRD (honouring their finalizers), then releases it."""
        from clusterset.apiserver.registry.rest import Ctx

        crd_ctx = Ctx(
            cluster,
            _served(cluster, "apiextensions.k8s.io", "customresourcedefinitions"),
            None,
            manager="kube-apiserver",
        )
        entry = cluster.store.get(CRD_RESOURCE, "", name)
        if entry is None:
            return
        new = entry.copy()
        new.setdefault("status", {}).setdefault("conditions", [])
        new["status"]["conditions"] = [c for c in new["status"]["conditions"] if c.get("type") != "Terminating"]
        new["status"]["conditions"].append(terminating_condition())
        await self.rest._write(crd_ctx, entry, new, "status")
        spec = entry.obj.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        key = f"{group}/{plural}"
        for attempt in range(1200):
            entries = cluster.store.entries(key)
            if not entries:
                break
            served = next((s for s in cluster.registry.all() if s.key == key), None)
            if served is None:
                break
            for obj_entry in entries:
                if obj_entry.obj["metadata"].get("deletionTimestamp"):
                    continue
                ctx = Ctx(cluster, served, obj_entry.obj["metadata"].get("namespace"), manager="kube-apiserver")
                try:
                    await self.rest.delete(ctx, obj_entry.obj["metadata"]["name"], {})
                except StatusError as err:
                    if err.code != 404:
                        log.warning("CRD %s cleanup: %s", name, err)
            await asyncio.sleep(0.02 if attempt < 50 else 0.5)
        current = cluster.store.get(CRD_RESOURCE, "", name)
        if current is None:
            return
        final = current.copy()
        final["metadata"]["finalizers"] = [f for f in final["metadata"].get("finalizers", []) if f != CRD_FINALIZER]
        await self.rest._write(crd_ctx, current, final, None)

    def _unserve_crd(self, cluster: Cluster, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        key = f"{group}/{plural}"
        cluster.store.close_watchers(key)
        cluster.store.drop_resource(key)
        cluster.registry.remove_group_resource(group, plural)

    def restore_crds(self, cluster: Cluster) -> None:
        """After a restart: serve every established CRD again before taking requests."""
        for entry in cluster.store.entries(CRD_RESOURCE):
            for served in crd_served(entry.obj):
                cluster.registry.add(served)

    def resume(self, cluster: Cluster) -> None:
        """After a restart: pick up namespace and CRD deletions and GC that were in flight."""
        from clusterset.apiserver.registry.rest import Ctx

        for entry in cluster.store.entries("/namespaces"):
            if entry.obj["metadata"].get("deletionTimestamp"):
                self.rest.spawn(cluster.name, self._terminate_namespace(cluster, entry.obj["metadata"]["name"]))
        for entry in cluster.store.entries(CRD_RESOURCE):
            if entry.obj["metadata"].get("deletionTimestamp"):
                self.rest.spawn(cluster.name, self._cleanup_crd(cluster, entry.obj["metadata"]["name"]))
        for served in cluster.registry.all():
            for entry in cluster.store.entries(served.key):
                fins = entry.obj["metadata"].get("finalizers") or []
                if entry.obj["metadata"].get("deletionTimestamp") and (
                    "orphan" in fins or "foregroundDeletion" in fins
                ):
                    ctx = Ctx(
                        cluster, served, entry.obj["metadata"].get("namespace"), manager="kube-controller-manager"
                    )
                    self.rest.spawn(cluster.name, self._collect_owner(ctx, entry.obj))


def _served(cluster: Cluster, group: str, plural: str) -> Served:
    for served in cluster.registry.all():
        if served.rt.group == group and served.rt.plural == plural:
            return served
    raise KeyError(f"{group}/{plural}")


def _namespaced_resources(cluster: Cluster) -> list[Served]:
    seen: set[str] = set()
    out = []
    for served in cluster.registry.all():
        if served.rt.namespaced and served.key not in seen:
            seen.add(served.key)
            out.append(served)
    return out


def _dependents(cluster: Cluster, owner_uid: str) -> list[tuple[Served, Any]]:
    by_key = {served.key: served for served in cluster.registry.all()}
    return [(by_key[res], entry) for res, entry in cluster.store.dependents(owner_uid) if res in by_key]


def _uid_exists(cluster: Cluster, uid: str) -> bool:
    return cluster.store.uid_exists(uid)
