"""RFC 6902 JSON Patch on plain JSON values, for WorkSet overrides.

Features may not import the API server's implementation, and the six operations on an in-memory document are
smaller than a dependency. Errors are `PatchError`s naming the operation and the path, worded for a user who
must fix the patch.
"""

from __future__ import annotations

import copy
from typing import Any

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


class PatchError(ValueError):
    """A patch that does not apply: the message says which operation and why."""


def pointer(path: Any) -> list[str]:
    """The reference tokens of a JSON Pointer (RFC 6901): `/a/b~1c` → ["a", "b/c"]."""
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"path {path!r} is not a JSON Pointer (it must be empty or start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _index(container: list[Any], token: str, path: str, *, append: bool) -> int:
    if append and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"path {path!r}: {token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not append):
        raise PatchError(f"path {path!r}: index {index} is out of range (the array has {len(container)} items)")
    return index


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    """The container holding the target of `path`, and the last token."""
    tokens = pointer(path)
    if not tokens:
        raise PatchError("the operation needs a path inside the document, not the whole document")
    node = doc
    for depth, token in enumerate(tokens[:-1]):
        here = "/" + "/".join(tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {path!r}: {here!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, append=False)]
        else:
            raise PatchError(f"path {path!r}: {here!r} is inside a value that is not an object or array")
    if not isinstance(node, dict | list):
        raise PatchError(f"path {path!r}: the parent is not an object or array")
    return node, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    if not pointer(path):
        return doc
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent[token]
    return parent[_index(parent, token, path, append=False)]


def _add(doc: Any, path: str, value: Any) -> Any:
    if not pointer(path):
        return value
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        parent[token] = value
    else:
        parent.insert(_index(parent, token, path, append=True), value)
    return doc


def _remove(doc: Any, path: str) -> Any:
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent.pop(token)
    return parent.pop(_index(parent, token, path, append=False))


def _replace(doc: Any, path: str, value: Any) -> Any:
    if not pointer(path):
        return value
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {path!r} does not exist")
        parent[token] = value
    else:
        parent[_index(parent, token, path, append=False)] = value
    return doc


def apply_patch(doc: Any, operations: Any) -> Any:
    """`doc` with `operations` applied (a new value; `doc` is not changed). Raises PatchError."""
    if not isinstance(operations, list):
        raise PatchError("patches must be a list of operations")
    doc = copy.deepcopy(doc)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in OPERATIONS:
            raise PatchError(f"patch {number}: op must be one of {', '.join(OPERATIONS)}")
        kind, path = op["op"], op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"patch {number} ({kind}): path is missing")
        try:
            if kind in ("add", "replace", "test") and "value" not in op:
                raise PatchError(f"{kind} needs a value")
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, path)
            elif kind == "replace":
                doc = _replace(doc, path, copy.deepcopy(op["value"]))
            elif kind == "test":
                if _get(doc, path) != op["value"]:
                    raise PatchError(f"the value at {path!r} is not {op['value']!r}")
            else:
                source = op.get("from")
                if not isinstance(source, str):
                    raise PatchError(f"{kind} needs from")
                if kind == "move" and (path + "/").startswith(source + "/") and path != source:
                    raise PatchError(f"cannot move {source!r} into itself")
                value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
                doc = _add(doc, path, value)
        except PatchError as err:
            raise PatchError(f"patch {number} ({kind} {path}): {err}") from None
    return doc

