"""The structural schema of a served resource: a CRD version's, or a built-in kind's generated one."""

from __future__ import annotations

from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.schema.builtin import builtin_schema
from clusterset.apiserver.schema.structural import Schema


def compiled_schema(rt: ResourceType) -> Schema | None:
    """Compiled once per served resource (None: the kind has no schema, nothing is pruned)."""
    if "compiled_schema" not in rt.extra:
        raw = rt.schema if rt.is_crd else builtin_schema(rt.group, rt.version, rt.kind)
        rt.extra["compiled_schema"] = Schema(raw) if raw else None
    compiled: Schema | None = rt.extra["compiled_schema"]
    return compiled
