"""JSON merge patch (RFC 7386) as kube-apiserver applies it, via evanphx/json-patch's MergePatch.

Also holds the small JSON-value helpers (deep copy, type-aware equality, Go-style
formatting) that the JSON patch and strategic merge patch modules share.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from clusterset.apiserver.meta.errors import bad_request

__all__ = [
    "apply_merge_patch",
    "clone",
    "create_merge_patch",
    "go_format",
    "go_json_type",
    "json_equal",
    "require_object_patch",
]


def clone(value: Any) -> Any:
    """Deep copy of a JSON value; much cheaper than copy.deepcopy for decoded JSON."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def json_key(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value: two keys are equal exactly when `json_equal` says so."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("map", frozenset((k, json_key(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(json_key(v) for v in value))
    if isinstance(value, int | float):
        return ("number", value)  # 1 and 1.0 hash and compare equal, as JSON numbers do
    return (type(value).__name__, value)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike `==`, `true` is not `1` (Python's bool is an int)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    return type(a) is type(b) and bool(a == b)


def go_json_type(value: Any) -> str:
    """The JSON type name encoding/json uses in `cannot unmarshal X into ...` errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null"


def go_format(value: Any) -> str:
    """Formats a decoded JSON value like Go's `%v`, which upstream error messages embed."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def require_object_patch(patch: Any) -> dict[str, Any]:
    """The body check kube-apiserver makes before a merge patch (default fieldValidation).

    A merge patch body must be a JSON object: `null` is evanphx's ErrBadJSONPatch and
    anything else fails the strict decode into map[string]interface{}; both are 400.
    """
    if isinstance(patch, dict):
        return patch
    if patch is None:
        raise bad_request("Invalid JSON Patch")
    raise bad_request(
        f"error decoding patch: json: cannot unmarshal {go_json_type(patch)} "
        "into Go value of type map[string]interface {}"
    )


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: returns the patched value; neither argument is modified.

    Follows evanphx's MergePatch, which also drops nulls from objects nested in arrays
    that are set whole (plain RFC 7386 would keep them). A non-object patch replaces the
    document; an HTTP handler should call `require_object_patch` on the body first.
    """
    if isinstance(patch, dict):
        target = clone(doc) if isinstance(doc, dict) else {}
        _merge_docs(target, patch)
        return target
    return _pruned(patch)


def create_merge_patch(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    """Two-way diff: the merge patch that turns `original` into `modified` (removals as null)."""
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, new in modified.items():
        if key not in original:
            patch[key] = clone(new)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(new, dict):
            sub = create_merge_patch(old, new)
            if sub:
                patch[key] = sub
        elif not json_equal(old, new):
            patch[key] = clone(new)
    return patch


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if not isinstance(current, dict):
            doc[key] = _pruned(value)
        elif not isinstance(value, dict):
            # evanphx returns a non-object patch value as-is when the target is an object.
            doc[key] = clone(value)
        else:
            _merge_docs(current, value)


def _pruned(value: Any) -> Any:
    """A copy without null object members, at any depth (null array elements stay)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value
