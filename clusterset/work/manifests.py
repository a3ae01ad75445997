"""A Work's manifests as the agent applies them: what each names, its identifier in the Work's status, and the
object sent with server-side apply (stamped with the Work's label and annotation, and owned by the AppliedWork).
Pure."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from clusterset.api.placement import APPLIED_WORKS
from clusterset.api.resources import Resource

Obj = dict[str, Any]

FIELD_MANAGER = "clusterset-work"
WORK_LABEL = "clusterset.io/work"  # on every applied object: its Work, `<namespace>.<name>` (hashed past 63)
WORK_ANNOTATION = "clusterset.io/work"  # its Work exactly, `<namespace>/<name>`: how events find their Work
LABEL_LIMIT = 63
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "managedFields", "selfLink")


class ManifestError(ValueError):
    """A manifest the agent cannot apply as written; the message names the field."""


@dataclass(frozen=True)
class Target:
    """The object a manifest names (namespace as written; discovery decides whether it is used)."""

    ordinal: int
    group: str
    version: str
    kind: str
    namespace: str
    name: str


def parse(ordinal: int, manifest: Any) -> Target:
    """What manifest `ordinal` names; ManifestError if it is not an object with apiVersion, kind and a name."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"manifest {ordinal} is not an object")
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not api_version or api_version.count("/") > 1:
        raise ManifestError(f"manifest {ordinal}: apiVersion {api_version!r} is not <group>/<version> or <version>")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"manifest {ordinal}: kind is required")
    meta = manifest.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name, namespace = meta.get("name"), meta.get("namespace") or ""
    if not isinstance(name, str) or not name:
        raise ManifestError(f"manifest {ordinal}: metadata.name is required (generateName cannot be applied: the "
                            "agent must find the object again)")
    if not isinstance(namespace, str):
        raise ManifestError(f"manifest {ordinal}: metadata.namespace must be a string")
    group, _, version = api_version.rpartition("/")
    return Target(ordinal, group, version, kind, namespace, name)


def identifier(ordinal: int, target: Target | None = None, resource: Resource | None = None) -> Obj:
    """A manifest's `identifier` in the Work's status (as much as is known of it)."""
    out: Obj = {"ordinal": ordinal}
    if target is not None:
        out.update(group=target.group, version=target.version, kind=target.kind, name=target.name,
                   namespace=target.namespace)
    if resource is not None:
        out["resource"] = resource.plural
        out["namespace"] = (target.namespace or "default") if target is not None and resource.namespaced else ""
    return out


def work_label(namespace: str, name: str) -> str:
    """The WORK_LABEL value of a Work's objects: `<namespace>.<name>`, or a prefix of it and a hash past 63."""
    joined = f"{namespace}.{name}"
    if len(joined) <= LABEL_LIMIT:
        return joined
    return f"{joined[:LABEL_LIMIT - 11]}-{hashlib.sha256(joined.encode()).hexdigest()[:10]}"


def work_of(obj: Obj) -> tuple[str, str] | None:
    """The (namespace, name) of the Work an applied object belongs to, from its annotation."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(WORK_ANNOTATION) or ""
    namespace, _, name = value.partition("/")
    return (namespace, name) if namespace and name else None


def owner_reference(applied_work: Obj) -> Obj:
    meta = applied_work["metadata"]
    return {"apiVersion": APPLIED_WORKS.api_version, "kind": APPLIED_WORKS.kind, "name": meta["name"],
            "uid": meta["uid"]}


def desired(manifest: Obj, target: Target, resource: Resource, work: tuple[str, str], applied_work: Obj) -> Obj:
    """The object to apply: the manifest without server-set metadata and status (the status subresource's, which
    an apply of the object ignores), in its namespace (`default` when a namespaced manifest names none, as
    kubectl's default context does), stamped with its Work, and, if namespaced, owned by the AppliedWork (so that
    deleting the AppliedWork removes it)."""
    out = copy.deepcopy(manifest)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for field in SERVER_FIELDS:
        meta.pop(field, None)
    if resource.namespaced:
        meta["namespace"] = target.namespace or "default"
    else:
        meta.pop("namespace", None)
    meta["labels"] = {**(meta.get("labels") or {}), WORK_LABEL: work_label(*work)}
    meta["annotations"] = {**(meta.get("annotations") or {}), WORK_ANNOTATION: "/".join(work)}
    if resource.namespaced:
        owner = owner_reference(applied_work)
        others = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict) and o.get("uid") != owner["uid"]]
        meta["ownerReferences"] = [*others, owner]
    return out


def names(outcome_identifier: Obj, entry: Obj) -> bool:
    """Whether a manifest (its identifier) still names a tracked object (an appliedResources entry). A manifest whose
    resource is not known this pass (its kind not served, discovery failing) still names the object of the same
    group, kind and name; one that cannot be read names what its ordinal named: neither is removed meanwhile."""
    if outcome_identifier.get("resource"):
        return same_object(entry, outcome_identifier)
    if outcome_identifier.get("kind"):
        return all((entry.get(f) or "") == (outcome_identifier.get(f) or "") for f in ("group", "kind", "name"))
    return bool(entry.get("ordinal") == outcome_identifier["ordinal"])


def same_object(entry: Obj, other: Obj) -> bool:
    """Two identifiers (appliedResources entries, orphaning rules, manifestConfigs' resourceIdentifiers) name the
    same object; an empty namespace means cluster-scoped, as OCM's rules."""
    return all((entry.get(f) or "") == (other.get(f) or "") for f in ("group", "resource", "namespace", "name"))
