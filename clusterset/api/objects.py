"""Reading Kubernetes objects held as plain dicts, tolerant of what a malformed object may hold instead.

(`annotations_of`, not `annotations`: modules with `from __future__ import annotations` have that name taken.)
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# on the bookmark that ends a watch's initial events (`sendInitialEvents`), as apimachinery's InitialEventsAnnotationKey
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


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


def condition_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    """Whether the condition of `type_` says `True`."""
    found = condition(conditions, type_)
    return found is not None and found.get("status") == "True"


def contains(have: Any, want: Any) -> bool:
    """`want` is in `have`: objects by their keys (the server may have defaulted more), lists item by item, values
    equal. What a controller would write is already there when it is contained in what is stored."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(contains, have, want))
    return bool(have == want)
