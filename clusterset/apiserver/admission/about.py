"""Admission for the About API's well-known ClusterProperties (KEP-2149's MUSTs), in embedded clusters.

The CRD can only say `minLength: 1`; the standard says the id (`cluster.clusterset.k8s.io`) is a DNS
label that exists and does not change while the cluster is in a ClusterSet, and that
`clusterset.k8s.io` exists exactly while the cluster is a member. A violation is refused with a
message that says what to do instead (leave the set first), as Antrea's webhook does for real clusters.
"""

from __future__ import annotations

from typing import Any

from clusterset.api.inventory import CLUSTER_ID_PROPERTY, CLUSTERSET_PROPERTY, cluster_id_problem
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.registry.admission import AdmissionPlugin
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.storage.store import ClusterStore

GROUP = "about.k8s.io"
PLURAL = "clusterproperties"
STORAGE_KEY = f"{GROUP}/{PLURAL}"
LEAVE_FIRST = "leave the ClusterSet first (`clusterset leave`), then change it and join again"


class AboutAPI(AdmissionPlugin):
    """KEP-2149's rules for the well-known ClusterProperties."""

    def handles(self, rt: ResourceType) -> bool:
        return rt.group == GROUP and rt.plural == PLURAL

    def validate(self, ctx: Ctx, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        return _validate(ctx.cluster.store, obj, old)

    def admit_delete(self, ctx: Ctx, obj: dict[str, Any]) -> None:
        _admit_delete(ctx.cluster.store, obj)


def _value(obj: dict[str, Any] | None) -> Any:
    return ((obj or {}).get("spec") or {}).get("value")


def _membership(store: ClusterStore) -> str | None:
    entry = store.get(STORAGE_KEY, "", CLUSTERSET_PROPERTY)
    return None if entry is None else str(_value(entry.obj))


def _validate(store: ClusterStore, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    name = obj.get("metadata", {}).get("name")
    value = _value(obj)
    if name == CLUSTER_ID_PROPERTY:
        problem = cluster_id_problem(value)
        if problem is not None and isinstance(value, str) and value:
            return [errors.field_invalid("spec.value", value, problem)]
        clusterset = _membership(store)
        if old is not None and value != _value(old) and clusterset is not None:
            return [errors.field_forbidden(
                "spec.value",
                f"the cluster id may not change while this cluster is a member of ClusterSet {clusterset!r} "
                f"({CLUSTERSET_PROPERTY} exists); {LEAVE_FIRST}",
            )]
    elif name == CLUSTERSET_PROPERTY:
        if old is None and store.get(STORAGE_KEY, "", CLUSTER_ID_PROPERTY) is None:
            return [errors.field_forbidden(
                "metadata.name",
                f"a cluster can join a ClusterSet only once it has an id: create the ClusterProperty "
                f"{CLUSTER_ID_PROPERTY} (a DNS label, e.g. 'member-1') first",
            )]
        if old is not None and value != _value(old):
            return [errors.field_forbidden(
                "spec.value", f"the ClusterSet of a member may not change; {LEAVE_FIRST}"
            )]
    return []


def _admit_delete(store: ClusterStore, obj: dict[str, Any]) -> None:
    if obj.get("metadata", {}).get("name") != CLUSTER_ID_PROPERTY:
        return
    clusterset = _membership(store)
    if clusterset is not None:
        raise errors.forbidden(
            PLURAL, GROUP, CLUSTER_ID_PROPERTY,
            f"the cluster id may not be deleted while this cluster is a member of ClusterSet {clusterset!r} "
            f"({CLUSTERSET_PROPERTY} exists); leave the ClusterSet first (`clusterset leave`)",
        )

