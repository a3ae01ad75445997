"""Status feedback (OCM's feedback rules): values read from an applied resource's `.status` onto the Work.

`JSONPaths` rules name a path under `.status` in a small JSONPath subset: `.a.b`, `.a[0].b`,
`.conditions[?(@.type=="Ready")].status` (a filter compares one field with a string; the first match is taken),
optionally in braces (`{.a.b}`). `WellKnownStatus` reads fixed fields of Deployments, StatefulSets and Jobs. Pure.
"""

from __future__ import annotations

import json
import re
from typing import Any

Obj = dict[str, Any]
JSON_RAW_LIMIT = 1024  # OCM's (and the CRD's) bound of a jsonRaw value

WELL_KNOWN: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "observedGeneration"),
    ("apps", "StatefulSet"): ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas",
                              "observedGeneration"),
    ("batch", "Job"): ("active", "succeeded", "failed"),
}

_TOKEN = re.compile(r"""\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_-]+)\s*==\s*(?:"([^"]*)"|'([^']*)')\)\]""")


class PathError(ValueError):
    """A path outside the supported subset; the message says what is supported."""


Step = str | int | tuple[str, str]


def parse_path(path: str) -> list[Step]:
    """The steps of `path`: field names, list indexes and (field, value) filters."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith((".", "[")):
        raise PathError(f"path {path!r} must start with '.' (a field under .status, e.g. .readyReplicas)")
    steps: list[Step] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise PathError(f"path {path!r}: cannot read {text[at:]!r}; supported: .field, [index], "
                            '[?(@.field=="value")]')
        field, index, key, double, single = match.groups()
        if field is not None:
            steps.append(field)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append((key, double if double is not None else single))
        at = match.end()
    return steps


def read_path(status: Any, steps: list[Step]) -> Any:
    """The value at `steps` in `status`, or None where the path leads nowhere."""
    value = status
    for step in steps:
        if isinstance(step, str):
            value = value.get(step) if isinstance(value, dict) else None
        elif isinstance(step, int):
            value = value[step] if isinstance(value, list) and step < len(value) else None
        else:
            key, wanted = step
            value = next((item for item in value if isinstance(item, dict) and str(item.get(key)) == wanted),
                         None) if isinstance(value, list) else None
        if value is None:
            return None
    return value


def field_value(value: Any) -> Obj:
    """OCM's `fieldValue`: Integer, String, Boolean, or anything else as JSON text (JsonRaw)."""
    if isinstance(value, bool):
        return {"type": "Boolean", "boolean": value}
    if isinstance(value, int):
        return {"type": "Integer", "integer": value}
    if isinstance(value, str):
        return {"type": "String", "string": value}
    return {"type": "JsonRaw", "jsonRaw": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def feedback(rules: list[Obj], group: str, kind: str, live: Obj | None) -> tuple[list[Obj], list[str]]:
    """The feedback values `rules` read from `live` (a missing field gives no value, as OCM), and the problems of
    rules that cannot be read (each names the rule and what to do)."""
    values: list[Obj] = []
    problems: list[str] = []
    status = (live or {}).get("status")
    status = status if isinstance(status, dict) else {}
    for rule in rules:
        kind_of_rule = rule.get("type")
        if kind_of_rule == "WellKnownStatus":
            fields = WELL_KNOWN.get((group, kind))
            if fields is None:
                problems.append(f"WellKnownStatus has no fields for {kind}.{group or 'core'}; use JSONPaths")
                continue
            values.extend({"name": f, "fieldValue": field_value(status[f])}
                          for f in fields if status.get(f) is not None)
        elif kind_of_rule == "JSONPaths":
            for entry in rule.get("jsonPaths") or []:
                name, path = entry.get("name"), entry.get("path")
                try:
                    value = read_path(status, parse_path(str(path or "")))
                except PathError as exc:
                    problems.append(f"jsonPaths {name!r}: {exc}")
                    continue
                if value is None:
                    continue
                out = field_value(value)
                if out["type"] == "JsonRaw" and len(out["jsonRaw"]) > JSON_RAW_LIMIT:
                    problems.append(f"jsonPaths {name!r}: the value at {path!r} is longer than {JSON_RAW_LIMIT} "
                                    "characters as JSON; name a smaller part of it")
                    continue
                values.append({"name": str(name), "fieldValue": out})
        else:
            problems.append(f"feedback rule type {kind_of_rule!r}: use WellKnownStatus or JSONPaths")
    return values, problems
