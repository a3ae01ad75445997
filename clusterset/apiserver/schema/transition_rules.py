"""The one CEL transition rule the SIG-MC CRDs use, `self == oldSelf`, evaluated without a CEL engine.

CEL is otherwise not evaluated (ARCHITECTURE.md). ClusterProfile's `spec.clusterManager` carries
`self == oldSelf` ("ClusterManager is immutable"), and immutability is part of the standard, so we honour
that exact rule wherever it appears under object properties. Like CEL transition rules, it runs only on
update and only where both the new and the old value exist.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.meta.errors import FieldError

IMMUTABLE_RULE = "self == oldSelf"


def immutability_errors(schema: dict[str, Any] | None, new: Any, old: Any, path: str = "") -> list[FieldError]:
    if not isinstance(schema, dict):
        return []
    problems: list[FieldError] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if isinstance(rule, dict) and (rule.get("rule") or "").strip() == IMMUTABLE_RULE and new != old:
            message = rule.get("message") or f"failed rule: {IMMUTABLE_RULE}"
            kind = "object" if isinstance(new, dict) else "array" if isinstance(new, list) else "string"
            problems.append(FieldError(path, "FieldValueInvalid", f'Invalid value: "{kind}": {message}'))
    if isinstance(new, dict) and isinstance(old, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in new and name in old:
                problems += immutability_errors(sub, new[name], old[name], f"{path}.{name}" if path else name)
    return problems
