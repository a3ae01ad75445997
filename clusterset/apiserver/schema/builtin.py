"""OpenAPI v3 schemas of the built-in kinds, read from the generated builtin_schemas.json.

The JSON (written by tools/gen_builtin_schemas.py from the official client's models) holds
upstream-named definitions that refer to each other with `allOf: [{$ref}]`, as kube-apiserver's
/openapi/v3 does; the OpenAPI documents embed them as they are. Pruning and validation want one
self-contained schema per kind instead, so `builtin_schema` inlines the references on demand.
The file is read once, lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

REF_PREFIX = "#/components/schemas/"
_PATH = Path(__file__).with_name("builtin_schemas.json")
# JSONSchemaProps refers to itself: below the first level it is any JSON object.
_CYCLE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@cache
def _data() -> dict[str, Any]:
    with _PATH.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def definitions() -> dict[str, dict[str, Any]]:
    """All definitions by upstream name (shared: callers must not mutate them)."""
    defs: dict[str, dict[str, Any]] = _data()["definitions"]
    return defs


def definition_name(group: str, version: str, kind: str) -> str | None:
    """Upstream schema name of a built-in kind, e.g. `io.k8s.api.apps.v1.Deployment`."""
    name = _data()["kinds"].get(f"{group}/{version}/{kind}")
    return str(name) if name is not None else None


def ref_name(node: dict[str, Any]) -> str | None:
    """The definition an `allOf: [{$ref}]` (or bare `$ref`) node points to."""
    ref = node.get("$ref")
    if ref is None:
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            ref = all_of[0].get("$ref")
    return ref.removeprefix(REF_PREFIX) if isinstance(ref, str) else None


@cache
def closure(name: str) -> frozenset[str]:
    """The definition and every definition it refers to, transitively."""
    defs = definitions()
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen.add(current)
        todo.extend(_refs(defs[current]))
    return frozenset(seen)


def _refs(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.append(value.removeprefix(REF_PREFIX))
            else:
                out.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_refs(item))
    return out


def builtin_schema(group: str, version: str, kind: str) -> dict[str, Any] | None:
    """The kind's schema with every reference inlined (a fresh copy), or None if unknown."""
    name = definition_name(group, version, kind)
    if name is None:
        return None
    return copy.deepcopy(_inlined(name))


@cache
def _inlined(name: str) -> dict[str, Any]:
    return _resolve_definition(name, ())


def _resolve_definition(name: str, stack: tuple[str, ...]) -> dict[str, Any]:
    defs = definitions()
    if name in stack or name not in defs:
        return dict(_CYCLE)
    return _resolve(defs[name], (*stack, name))


def _resolve(node: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
    target = ref_name(node)
    if target is not None:
        if target in stack:
            resolved = dict(_CYCLE)
        elif _cacheable(target):
            resolved = _inlined(target)
        else:
            resolved = _resolve_definition(target, stack)
        siblings = {k: v for k, v in node.items() if k not in ("allOf", "$ref")}
        return {**resolved, **siblings} if siblings else resolved
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {pname: _resolve(pschema, stack) for pname, pschema in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _resolve(value, stack)
        else:
            out[key] = value
    return out


@cache
def _cacheable(name: str) -> bool:
    """Whether the inlined form is the same wherever the definition is reached from.

    True unless the definition sits on a cycle through another definition (only
    self-reference, JSONSchemaProps, occurs among the built-ins, and cutting it is uniform).
    """
    return not any(dep != name and name in closure(dep) for dep in closure(name))
