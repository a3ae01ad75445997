"""Duplicate fields of a JSON body, as kube-apiserver's decoder (sigs.k8s.io/json) reports them: `spec.a`,
`items[0].b`, each once, at most 100. fieldValidation=Strict refuses them, Warn (the default) warns.

orjson keeps the last of repeated keys without a word, and a second parse that watches every object costs
four times as much; so the body is re-parsed only when a cheap count says a key went missing. Outside
strings a JSON text has `:` only after keys, and inside strings `:` is never escaped except as `\\u003a`:
without `\\u` escapes, the body has exactly as many `:` as the value re-encoded unless keys were dropped.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_MAX_REPORTED = 100


def duplicate_fields(raw: bytes, value: Any) -> list[str]:
    """The paths of repeated keys in the JSON text `raw`, which decoded (last key winning) to `value`."""
    if b"\\u" not in raw and raw.count(b":") == orjson.dumps(value).count(b":"):
        return []
    repeated: dict[int, tuple[dict[str, Any], list[str]]] = {}  # id → (object, its repeated keys)

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            keys: list[str] = []
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in keys:
                    keys.append(key)
                seen.add(key)
            repeated[id(obj)] = (obj, keys)  # holding the object keeps its id unique
        return obj

    root = json.loads(raw, object_pairs_hook=pairs_hook)
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack and len(found) < _MAX_REPORTED:
        node, path = stack.pop()
        if isinstance(node, dict):
            if id(node) in repeated:
                found += [_join(path, key) for key in repeated[id(node)][1]]
            stack += [(child, _join(path, key)) for key, child in reversed(node.items())]
        elif isinstance(node, list):
            stack += [(child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node)))]
    return found[:_MAX_REPORTED]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
