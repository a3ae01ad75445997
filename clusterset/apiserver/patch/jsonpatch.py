"""JSON Patch (RFC 6902) with the exact semantics of gopkg.in/evanphx/json-patch.v4.

kube-apiserver applies JSON patches with that library, and clients depend on its quirks
as much as on the RFC: `add` never creates parents, negative indices count from the end,
`replace` of a missing object member adds it, and `test` treats a missing member as null.
Every failed operation becomes the same 422 the apiserver sends (handlers/patch.go).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from clusterset.apiserver.meta.errors import StatusError, bad_request
from clusterset.apiserver.patch.merge import clone, go_json_type, json_equal

__all__ = ["MAX_COPY_BYTES", "MAX_OPERATIONS", "apply_json_patch"]

MAX_OPERATIONS = 10000
MAX_COPY_BYTES = 3 * 1024 * 1024  # kube-apiserver's JSONPatchMaxCopyBytes: its request body limit
_MISSING: Any = object()
_INDEX = re.compile(r"[+-]?[0-9]+")
_POINTER_ESCAPE = re.compile(r"~[01]")
_INT64_MAX = 2**63 - 1


class JsonPatchOpError(ValueError):
    """Why an operation failed, in evanphx's words; chained as the 422's __cause__."""


def apply_json_patch(doc: dict[str, Any], ops: Any, max_copy_bytes: int = MAX_COPY_BYTES) -> dict[str, Any]:
    """Applies a decoded JSON Patch body to `doc` and returns a new document.

    All-or-nothing: `doc` is never modified. Errors: a body that does not decode into a
    list of operations → 400, more than 10000 operations → 413, any failed operation → 422,
    `copy` operations adding more than `max_copy_bytes` of JSON in all → 422 (evanphx's
    AccumulatedCopySizeLimit, which kube-apiserver sets to its request limit: without it a few
    copies that each double the document exhaust the memory).
    """
    patch = _decode(ops)
    if len(patch) > MAX_OPERATIONS:
        raise StatusError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_OPERATIONS}, got {len(patch)}",
            {},
        )
    result: Any = clone(doc)
    copies = _CopyBudget(max_copy_bytes)
    try:
        for op in patch:
            result = _apply(result, op, copies)
    except JsonPatchOpError as err:
        raise _failed() from err
    if not isinstance(result, dict):
        raise _failed() from JsonPatchOpError("the patched document is not a JSON object")
    return result


def _failed() -> StatusError:
    return StatusError(422, "Invalid", "the server rejected our request due to an error in our request", {})


def _decode(ops: Any) -> list[dict[str, Any]]:
    """Mirrors the strict decode into []jsonPatchOp the apiserver runs first (400s)."""
    if ops is None:
        return []  # `null` decodes to an empty patch upstream
    if not isinstance(ops, list):
        raise _decode_error(f"{go_json_type(ops)} into Go value of type []handlers.jsonPatchOp")
    decoded: list[dict[str, Any]] = []
    for op in ops:
        if op is None:
            decoded.append({})
            continue
        if not isinstance(op, dict):
            raise _decode_error(f"{go_json_type(op)} into Go value of type handlers.jsonPatchOp")
        for name in ("op", "path", "from"):
            value = op.get(name)
            if value is not None and not isinstance(value, str):
                raise _decode_error(f"{go_json_type(value)} into Go struct field jsonPatchOp.{name} of type string")
        decoded.append(op)
    return decoded


def _decode_error(what: str) -> StatusError:
    return bad_request(f"error decoding patch: json: cannot unmarshal {what}")


class _CopyBudget:
    """The JSON size that `copy` operations have added so far, against the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, value: Any) -> None:
        self.used += len(orjson.dumps(value))
        if self.used > self.limit:
            raise JsonPatchOpError(
                "Unable to complete the copy, the accumulated size increase of copy is "
                f"{self.used}, exceeding the limit {self.limit}"
            )


def _apply(doc: Any, op: dict[str, Any], copies: _CopyBudget) -> Any:
    kind = op.get("op")
    kind = kind if isinstance(kind, str) else "unknown"
    if kind == "add":
        _add(doc, op)
    elif kind == "remove":
        _remove(doc, op)
    elif kind == "replace":
        return _replace(doc, op)
    elif kind == "move":
        _move(doc, op)
    elif kind == "copy":
        _copy(doc, op, copies)
    elif kind == "test":
        _test(doc, op)
    else:
        raise JsonPatchOpError(f"Unexpected kind: {kind}")
    return doc


def _member(op: dict[str, Any], name: str, kind: str) -> str:
    value = op.get(name)
    if value is None:
        raise JsonPatchOpError(f"{kind} operation missing {name} field")
    return str(value)


def _value(op: dict[str, Any]) -> Any:
    """The op's value, copied so the result never aliases the request; a missing value is null."""
    return clone(op.get("value"))


def _unescape(token: str) -> str:
    return _POINTER_ESCAPE.sub(lambda m: "/" if m.group(0) == "~1" else "~", token)


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the pointer's last token, and that token; None if a parent is missing.

    Like evanphx's findObject, the text before the first `/` is ignored and every parent
    must already exist as an object or array (a null parent counts as missing).
    """
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    container = doc
    for token in tokens[1:-1]:
        child = _get(container, _unescape(token))
        if not isinstance(child, dict | list):
            return None
        container = child
    return container, _unescape(tokens[-1])


def _get(container: Any, key: str) -> Any:
    """evanphx's get: None for a missing object member, _MISSING for a bad array index."""
    if isinstance(container, dict):
        return container.get(key)
    index = _index(key, len(container), allow_end=False)
    return _MISSING if index is None else container[index]


def _index(key: str, size: int, *, allow_end: bool) -> int | None:
    """strconv.Atoi plus evanphx's bounds rules; negative indices count from the end."""
    if not _INDEX.fullmatch(key):
        return None
    index = int(key)
    if abs(index) > _INT64_MAX:
        return None
    limit = size + 1 if allow_end else size
    if index >= limit or index < -limit:
        return None
    return index + limit if index < 0 else index


def _container_add(container: Any, key: str, value: Any, path: str) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    index = _index(key, len(container), allow_end=True)
    if index is None:
        raise JsonPatchOpError(f"error in add for path: '{path}': invalid index referenced: {key}")
    container.insert(index, value)


def _container_remove(container: Any, key: str, path: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise JsonPatchOpError(f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}")
        del container[key]
        return
    index = _index(key, len(container), allow_end=False)
    if index is None:
        raise JsonPatchOpError(f"error in remove for path: '{path}': invalid index referenced: {key}")
    del container[index]


def _locate(doc: Any, path: str, kind: str) -> tuple[Any, str]:
    found = _find(doc, path)
    if found is None:
        raise JsonPatchOpError(f'{kind} operation does not apply: doc is missing path: "{path}"')
    return found


def _add(doc: Any, op: dict[str, Any]) -> None:
    path = _member(op, "path", "add")
    container, key = _locate(doc, path, "add")
    _container_add(container, key, _value(op), path)


def _remove(doc: Any, op: dict[str, Any]) -> None:
    path = _member(op, "path", "remove")
    container, key = _locate(doc, path, "remove")
    _container_remove(container, key, path)


def _replace(doc: Any, op: dict[str, Any]) -> Any:
    path = _member(op, "path", "replace")
    value = _value(op)
    if path == "":
        if not isinstance(value, dict | list):
            raise JsonPatchOpError("replace operation value must be object or array")
        return value
    container, key = _locate(doc, path, "replace")
    if isinstance(container, dict):
        # evanphx v4 quirk kept on purpose: replacing a missing member adds it.
        container[key] = value
        return doc
    index = _index(key, len(container), allow_end=False)
    if index is None:
        raise JsonPatchOpError(f"replace operation does not apply: doc is missing key: {path}")
    container[index] = value
    return doc


def _move(doc: Any, op: dict[str, Any]) -> None:
    source = _member(op, "from", "move")
    container, key = _locate(doc, source, "move")
    value = _get(container, key)
    if value is _MISSING:
        raise JsonPatchOpError(f"error in move for path: '{key}': invalid index referenced")
    _container_remove(container, key, source)
    path = _member(op, "path", "move")
    container, key = _locate(doc, path, "move")
    _container_add(container, key, value, path)


def _copy(doc: Any, op: dict[str, Any], copies: _CopyBudget) -> None:
    source = _member(op, "from", "copy")
    container, key = _locate(doc, source, "copy")
    value = _get(container, key)
    if value is _MISSING:
        raise JsonPatchOpError(f"error in copy for from: '{source}': invalid index referenced")
    path = _member(op, "path", "copy")
    container, key = _locate(doc, path, "copy")
    copies.spend(value)
    # A missing source member copies as null, as in evanphx v4.
    _container_add(container, key, clone(value), path)


def _test(doc: Any, op: dict[str, Any]) -> None:
    path = _member(op, "path", "test")
    expected = op.get("value", _MISSING)
    if path == "":
        if expected is not _MISSING and json_equal(doc, expected):
            return
        raise JsonPatchOpError(f"testing value {path} failed: test failed")
    container, key = _locate(doc, path, "test")
    actual = _get(container, key)
    if actual is _MISSING:
        raise JsonPatchOpError(f"error in test for path: '{path}': invalid index referenced")
    if actual is None:
        # A missing member and a null member both equal null (or an absent value).
        if expected is _MISSING or expected is None:
            return
    elif expected is not _MISSING and json_equal(actual, expected):
        return
    raise JsonPatchOpError(f"testing value {path} failed: test failed")
