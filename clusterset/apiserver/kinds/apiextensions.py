"""CustomResourceDefinitions: the CRD kind itself and the resources a CRD makes the server serve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.strategy import Obj, Strategy
from clusterset.apiserver.schema.crd_validation import default_crd, validate_crd

if TYPE_CHECKING:
    from clusterset.apiserver.registry.cluster import Cluster, Served

CRD_RESOURCE = "apiextensions.k8s.io/customresourcedefinitions"


class CRDStrategy(Strategy):
    def default(self, cluster: Cluster, obj: Obj) -> None:
        default_crd(obj)

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        return errors + validate_crd(obj, old=old)


CRD_TYPE = ResourceType(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
    "CustomResourceDefinition", False, ("crd", "crds"), (), subresources=("status",),
)


class CRStrategy(Strategy):
    """A custom resource: generation counts everything outside metadata (and status, if a subresource)."""

    def __init__(self, has_status: bool) -> None:
        self.non_spec_keys = frozenset({"apiVersion", "kind", "metadata", "status"} if has_status
                                       else {"apiVersion", "kind", "metadata"})


def crd_served(crd: Obj) -> list[Served]:
    """One Served per served version of the CRD, storage-agnostic (conversion None)."""
    from clusterset.apiserver.registry.cluster import Served

    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    versions = sorted(spec.get("versions") or [], key=lambda v: _version_priority(v.get("name", "")))
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
            deprecated=bool(version.get("deprecated")),
            deprecation_warning=version.get("deprecationWarning"),
        )
        out.append(Served(rt, CRStrategy("status" in subs)))
    return out


def _version_priority(name: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first, others last."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", name)
    if not m:
        return (3, 0, 0, name)
    major = int(m.group(1))
    stage = {"": 0, None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, name)


def established_status(crd: Obj) -> dict[str, Any]:
    from clusterset.apiserver.registry.rest import now_rfc3339

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
    from clusterset.apiserver.registry.rest import now_rfc3339

    return {"type": "Terminating", "status": "True", "lastTransitionTime": now_rfc3339(),
            "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress"}
