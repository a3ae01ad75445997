"""kube-apiserver shaped errors: every failure a client sees is a `kind: Status` body.

Messages follow kube-apiserver's wording because clients (kubectl, client-go, the Python
client) parse some of them (`too old resource version`, `conflict with "mgr"`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One `causes[]` entry of a 422: `field` is the dotted path, `message` the text after it."""

    field: str
    reason: str
    message: str

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def go_value(value: Any) -> str:
    """Formats a value the way apimachinery's field errors print it (`"str"`, `-1`, `true`)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")


def field_required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def field_not_supported(path: str, value: Any, supported: list[Any]) -> FieldError:
    options = ", ".join(go_value(s) for s in supported)
    return FieldError(
        path, "FieldValueNotSupported", f"Unsupported value: {go_value(value)}: supported values: {options}"
    )


def field_forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, "FieldValueForbidden", f"Forbidden: {detail}")


def field_duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")


def field_too_long(path: str, value: Any, limit: int) -> FieldError:
    return FieldError(path, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")


def field_too_many(path: str, count: int, limit: int) -> FieldError:
    return FieldError(path, "FieldValueTooMany", f"Too many: {count}: must have at most {limit} items")


def field_type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueTypeInvalid", f"Invalid value: {go_value(value)}: {detail}")


@dataclass
class StatusError(Exception):
    """An API failure; `to_status()` is the body, `code` the HTTP status."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def to_status(self) -> dict[str, Any]:
        """The `metav1.Status` body, its fields in Go's struct order and empty ones omitted, as
        kube-apiserver's encoder writes them (clients quote the body text in their errors)."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
        }
        if self.message:
            status["message"] = self.message
        if self.reason:
            status["reason"] = self.reason
        details = self.status_details()
        if details is not None:
            status["details"] = details
        status["code"] = self.code
        return status

    def status_details(self) -> dict[str, Any] | None:
        """`StatusDetails` in Go's field order, or None (omitted) when every field is empty."""
        given = {**self.details, "retryAfterSeconds": self.retry_after}
        if given.get("causes"):
            given["causes"] = [_in_order(cause, _CAUSE_FIELDS) for cause in given["causes"]]
        return _in_order(given, _DETAILS_FIELDS) or None


_DETAILS_FIELDS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_FIELDS = ("reason", "message", "field")


def _in_order(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The non-empty `fields` of `values`, in that order (Go's `omitempty` struct encoding)."""
    return {f: values[f] for f in fields if values.get(f) not in (None, 0, "", [], {})}


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or `pods` for the core group: how messages name a resource."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str | None) -> dict[str, Any]:
    return {"name": name, "group": group, "kind": resource}


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(resource, group, name)
    )


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        _details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str, why: str | None = None) -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(resource, group, name),
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """422; `kind` is the Kind (not the resource), as kube-apiserver does for Invalid."""
    rendered = [e.render() for e in errors]
    text = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    qualified_kind = f"{kind}.{group}" if group else kind
    return StatusError(
        422,
        "Invalid",
        f'{qualified_kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors],
        },
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message, {})


def forbidden(resource: str, group: str, name: str | None, text: str) -> StatusError:
    subject = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    return StatusError(403, "Forbidden", f"{subject} is forbidden: {text}", _details(resource, group, name))


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized", {})


def method_not_allowed() -> StatusError:
    return StatusError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
    )


def unsupported_media_type(accepted: list[str]) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
        {},
    )


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message, {})


def too_large(limit: int) -> StatusError:
    return StatusError(
        413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}", {}
    )


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message, {})


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})
