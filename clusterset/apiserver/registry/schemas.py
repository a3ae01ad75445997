"""The structural schema of a served resource: a CRD version's, or a built-in kind's generated one."""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import orjson

from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.schema.builtin import builtin_schema
from clusterset.apiserver.schema.structural import Schema

# One compiled schema per distinct schema, whichever clusters serve it: every member of a fleet serves the same
# CRDs, and a schema's memory (walks remembered by body) and the managedFields a create owns are then shared.
_BY_DIGEST: weakref.WeakValueDictionary[bytes, Schema] = weakref.WeakValueDictionary()


def compiled_schema(rt: ResourceType) -> Schema | None:
    """Compiled once per distinct schema and looked up once per served resource (None: the kind has no schema,
    nothing is pruned)."""
    if "compiled_schema" not in rt.extra:
        raw = rt.schema if rt.is_crd else builtin_schema(rt.group, rt.version, rt.kind)
        rt.extra["compiled_schema"] = _shared(raw) if raw else None
    compiled: Schema | None = rt.extra["compiled_schema"]
    return compiled


def _shared(raw: dict[str, Any]) -> Schema:
    try:
        key = hashlib.blake2b(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
    except (TypeError, orjson.JSONEncodeError):  # not JSON (integers beyond 64 bits): compiled for this one alone
        return Schema(raw)
    schema = _BY_DIGEST.get(key)
    if schema is None:
        schema = _BY_DIGEST[key] = Schema(raw)
    return schema
