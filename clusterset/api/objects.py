"""Reading Kubernetes objects held as plain dicts, tolerant of what a malformed object may hold instead.

(`annotations_of`, not `annotations`: modules with `from __future__ import annotations` have that name taken.)
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def meta(obj: Obj) -> dict[str, Any]:
    return _dict(obj.get("metadata"))


def spec(obj: Obj) -> dict[str, Any]:
    return _dict(obj.get("spec"))


def status(obj: Obj) -> dict[str, Any]:
    return _dict(obj.get("status"))


def labels(obj: Obj) -> dict[str, str]:
    return _dict(meta(obj).get("labels"))


def annotations_of(obj: Obj) -> dict[str, str]:
    return _dict(meta(obj).get("annotations"))


def condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """The condition of `type_` in a `status.conditions` list, or None."""
    for c in conditions or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None
