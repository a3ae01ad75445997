"""Custom resources: none is created while its CRD is being deleted (kube-apiserver's CR handler refuses it)."""

from __future__ import annotations

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.admission import AdmissionPlugin
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.storage.store import Obj

CRD_RESOURCE = "apiextensions.k8s.io/customresourcedefinitions"


class TerminatingCRD(AdmissionPlugin):
    def handles(self, rt: ResourceType) -> bool:
        return rt.is_crd

    def admit_create(self, ctx: Ctx, obj: Obj) -> None:
        crd = ctx.cluster.store.get(CRD_RESOURCE, "", f"{ctx.rt.plural}.{ctx.rt.group}")
        if crd is not None and crd.obj["metadata"].get("deletionTimestamp"):
            raise StatusError(
                405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating", {}
            )
