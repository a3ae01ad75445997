"""Objects as kube-apiserver's JSON encoder writes them, so that bodies match its bytes.

Built-in kinds are Go structs: `kind`, `apiVersion`, `metadata` (ObjectMeta's fields in struct order), the
kind's own fields, `status` last. Custom resources are unstructured maps, which Go writes with sorted keys at
every level. Both orders are given to an object once, when it is stored, never on a read; fields nested
deeper in a built-in kind keep the order the write pipeline built.
"""

from __future__ import annotations

from typing import Any

import orjson

Obj = dict[str, Any]

OBJECT_META_FIELDS = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
)
# encoding/json escapes these in every string (HTML-safe by default, and the two line separators of JavaScript);
# they occur only inside strings, so replacing the bytes is exact
_GO_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"),
               ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def kept(raw: bytes) -> bytes:
    """`raw` in an allocation of its own length, for bytes that stay (stored, remembered, cached): orjson's result
    holds on to the whole buffer it grew, 4 KiB at least even for a few bytes and 6-10 times a large result's
    length. The copy is a memcpy, far below the encoding's cost; what is sent and dropped is not copied."""
    return memoryview(raw).tobytes()


def go_json(value: Any, option: int = 0) -> bytes:
    """`value` encoded as Go's encoding/json writes it (`option`: orjson's, e.g. a trailing newline)."""
    raw = orjson.dumps(value, option=option)
    for char, escaped in _GO_ESCAPES:
        if char in raw:  # no copy of a body without one
            raw = raw.replace(char, escaped)
    return raw


def in_go_order(obj: Obj) -> Obj:
    """A built-in object with its envelope and ObjectMeta in Go struct order (a new dict; `obj` is not changed)."""
    ordered: Obj = {key: obj[key] for key in ("kind", "apiVersion") if key in obj}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        ordered["metadata"] = {key: meta[key] for key in OBJECT_META_FIELDS if key in meta}
        ordered["metadata"].update(meta)  # anything else after (the fields above keep their place)
    ordered.update((key, value) for key, value in obj.items() if key not in ordered and key != "status")
    if "status" in obj:
        ordered["status"] = obj["status"]
    return ordered


def sorted_object(obj: Obj) -> tuple[Obj, bytes]:
    """A custom resource with its keys sorted at every level, and its encoding."""
    raw = kept(go_json(obj, orjson.OPT_SORT_KEYS))
    return orjson.loads(raw), raw
