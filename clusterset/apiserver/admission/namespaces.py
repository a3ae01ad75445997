"""NamespaceLifecycle, as kube-apiserver's plugin: nothing new in a namespace that is missing or going away,
and the namespaces a cluster cannot work without are never deleted."""

from __future__ import annotations

from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.admission import AdmissionPlugin
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.storage.store import Obj

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


class NamespaceLifecycle(AdmissionPlugin):
    def admit_create(self, ctx: Ctx, obj: Obj) -> None:
        if not ctx.rt.namespaced:
            return
        namespace = ctx.namespace or ""
        ns = ctx.cluster.store.get("/namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if (ns.obj.get("status") or {}).get("phase") == "Terminating" or ns.obj["metadata"].get("deletionTimestamp"):
            err = errors.forbidden(
                ctx.rt.plural,
                ctx.rt.group,
                obj["metadata"]["name"],
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
            err.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise err

    def admit_delete(self, ctx: Ctx, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if ctx.rt.group == "" and ctx.rt.plural == "namespaces" and name in IMMORTAL_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
