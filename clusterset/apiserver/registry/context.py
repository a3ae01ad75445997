"""One request's view of the registry: which cluster and served resource, who asks, and the write options."""

from __future__ import annotations

from dataclasses import dataclass, field

from clusterset.apiserver.meta.users import UserInfo
from clusterset.apiserver.patch.typeinfo import FieldTypes, SchemaFieldTypes, builtin_field_types
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.storage.store import Entry


@dataclass
class Ctx:
    cluster: Cluster
    served: Served
    namespace: str | None
    # the requester: admission judges some writes by what it holds (RBAC escalation); always given
    user: UserInfo = field(kw_only=True)
    manager: str = ""
    manager_explicit: bool = False
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    warnings: list[str] = field(default_factory=list)
    # the storage position (Database.written) just after this request's last write: its answer reflects nothing
    # later, so it needs nothing later committed; None for a request that wrote nothing (its answer is a read)
    stored_at: int | None = None
    stored: Entry | None = None  # what the last write stored: its answer reuses the encoded bytes

    @property
    def rt(self) -> ResourceType:
        return self.served.rt


def field_types(served: Served) -> FieldTypes:
    """Merge keys and list types of the resource's fields (strategic merge patch, managedFields)."""
    rt = served.rt
    if not rt.is_crd:
        return builtin_field_types(rt.group, rt.kind)
    types: SchemaFieldTypes | None = rt.extra.get("field_types")
    if types is None:  # one per served version, so that it remembers its lookups
        types = rt.extra["field_types"] = SchemaFieldTypes(rt.schema or {})
    return types
