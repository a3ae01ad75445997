"""CustomResourceDefinitions: the CRD kind, and the custom resources an established CRD serves."""

from __future__ import annotations

from typing import Any

from clusterset.api.times import now_rfc3339
from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.resources import ResourceType, version_priority
from clusterset.apiserver.registry.schemas import compiled_schema
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.schema.crd_validation import default_crd, validate_crd
from clusterset.apiserver.schema.transition_rules import immutability_errors
from clusterset.apiserver.storage.store import ClusterStore, Obj

CRD_RESOURCE = "apiextensions.k8s.io/customresourcedefinitions"
# held by a deleted CRD until its objects are gone (the CRD finalizer controller)
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class CRDStrategy(Strategy):
    def default(self, cluster: ClusterView, obj: Obj) -> None:
        default_crd(obj)

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        return errors + validate_crd(obj, old=old)

    def deletion_finalizers(self, obj: Obj) -> list[str]:
        return [] if CRD_FINALIZER in (obj["metadata"].get("finalizers") or []) else [CRD_FINALIZER]


CRD_TYPE = ResourceType(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
    "CustomResourceDefinition", False, ("crd", "crds"), (), subresources=("status",),
)


class CRStrategy(Strategy):
    """A custom resource: defaulted and validated by its version's schema; generation counts everything
    outside metadata (and status, if a subresource)."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.non_spec_keys = frozenset({"apiVersion", "kind", "metadata", "status"} if rt.has_status
                                       else {"apiVersion", "kind", "metadata"})

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        if self.rt.has_status:  # status is written through /status only
            obj.pop("status", None)

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        schema = compiled_schema(self.rt)
        if schema is not None:
            schema.apply_defaults(obj)

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        schema = compiled_schema(self.rt)
        if schema is not None:
            errors += schema.validate(obj)
        if old is not None:
            errors += immutability_errors(self.rt.schema, obj, old)
        return errors


# the last specs served, by identity (each held, so that no id is reused): the clusters born in the same second share
# their CRDs' specs (`storage.store.Born`), and a restart serves every cluster's, as does the establishing controller
_SERVED: dict[int, tuple[Obj, list[Served]]] = {}
REMEMBERED_SPECS = 256


def crd_served(crd: Obj) -> list[Served]:
    """One Served per served version of the CRD, storage-agnostic (conversion None); one set for a stored spec (stored
    values are never changed)."""
    spec = crd.get("spec") or {}
    known = _SERVED.get(id(spec))
    if known is not None and known[0] is spec:
        return list(known[1])
    out = _served(spec)
    if len(_SERVED) >= REMEMBERED_SPECS:
        _SERVED.clear()
    _SERVED[id(spec)] = (spec, out)
    return list(out)


def _served(spec: Obj) -> list[Served]:
    names = spec.get("names") or {}
    out = []
    versions = sorted(spec.get("versions") or [], key=lambda v: version_priority(v.get("name", "")))
    storage = next((str(v.get("name", "")) for v in versions if v.get("storage")), None)
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        subs = tuple(s for s in ("status", "scale") if s in subresources)
        scale = subresources.get("scale")
        rt = ResourceType(
            group=spec.get("group", ""),
            version=version.get("name", ""),
            plural=names.get("plural", ""),
            singular=names.get("singular") or str(names.get("kind", "")).lower(),
            kind=names.get("kind", ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=subs,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=list(version.get("additionalPrinterColumns") or []),
            scale_paths=dict(scale) if isinstance(scale, dict) else None,
            is_crd=True,
            storage_version=storage,
            deprecated=bool(version.get("deprecated")),
            deprecation_warning=version.get("deprecationWarning"),
        )
        out.append(Served(rt, CRStrategy(rt)))
    return out


def established_status(crd: Obj) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    now = now_rfc3339()
    status = dict(crd.get("status") or {})
    stored = list(status.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if version.get("storage") and version.get("name") not in stored:
            stored.append(version["name"])
    previous = {c.get("type"): c for c in status.get("conditions") or []}

    def condition(type_: str, reason: str, message: str) -> dict[str, Any]:
        old = previous.get(type_)
        ts = old["lastTransitionTime"] if old and old.get("status") == "True" else now
        return {"type": type_, "status": "True", "lastTransitionTime": ts, "reason": reason, "message": message}

    status["conditions"] = [
        condition("NamesAccepted", "NoConflicts", "no conflicts found"),
        condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    status["acceptedNames"] = names
    status["storedVersions"] = stored
    return status


def terminating_condition() -> dict[str, Any]:
    return {"type": "Terminating", "status": "True", "lastTransitionTime": now_rfc3339(),
            "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress"}


def stored_crds_served(store: ClusterStore) -> list[Served]:
    """After a restart: what the stored CRDs serve, registered before the server takes requests."""
    return [served for entry in store.entries(CRD_RESOURCE) for served in crd_served(entry.obj)]
