"""Validation shared by every kind: names and ObjectMeta, with apimachinery's messages."""

from __future__ import annotations

import re
from typing import Any

from clusterset.api.labels import key_problem as label_key_problem
from clusterset.api.labels import value_problem as label_value_problem
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_forbidden,
    field_invalid,
    field_required,
    field_too_long,
)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def dns1123_label_problems(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        out.append(LABEL_MSG)
    return out


def dns1123_subdomain_problems(value: str) -> list[str]:
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        out.append(SUBDOMAIN_MSG)
    return out


def dns1035_label_problems(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        out.append(DNS1035_MSG)
    return out


def path_segment_problems(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    for bad in ("/", "%"):
        if bad in value:
            return [f"may not contain '{bad}'"]
    return []


NAME_RULES = {
    "label": dns1123_label_problems,
    "subdomain": dns1123_subdomain_problems,
    "dns1035": dns1035_label_problems,
    "path": path_segment_problems,
}


def validate_object_meta(obj: dict[str, Any], *, namespaced: bool, name_rule: str) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name:
        errors.append(field_required("metadata.name", "name or generateName is required"))
    else:
        for problem in NAME_RULES[name_rule](name):
            errors.append(field_invalid("metadata.name", name, problem))
    if namespaced:
        if not meta.get("namespace"):
            errors.append(field_required("metadata.namespace"))
    elif meta.get("namespace"):
        errors.append(field_forbidden("metadata.namespace", "not allowed on this type"))
    errors += validate_labels(meta.get("labels"), "metadata.labels")
    errors += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errors += _validate_owner_references(meta.get("ownerReferences"))
    for i, fin in enumerate(meta.get("finalizers") or []):
        if not isinstance(fin, str) or label_key_problem(fin):
            errors.append(
                field_invalid(
                    f"metadata.finalizers[{i}]",
                    fin,
                    "name part must consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    return errors


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if labels is None:
        return errors
    if not isinstance(labels, dict):
        return [field_invalid(path, labels, "must be a map of string keys to string values")]
    for key, value in labels.items():
        problem = label_key_problem(str(key))
        if problem:
            errors.append(field_invalid(path, key, problem))
        if not isinstance(value, str):
            errors.append(field_invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        vproblem = label_value_problem(value)
        if vproblem:
            errors.append(field_invalid(path, value, vproblem))
    return errors


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if annotations is None:
        return errors
    if not isinstance(annotations, dict):
        return [field_invalid(path, annotations, "must be a map of string keys to string values")]
    total = 0
    for key, value in annotations.items():
        problem = label_key_problem(str(key).lower())
        if problem:
            errors.append(field_invalid(path, key, problem))
        if not isinstance(value, str):
            errors.append(field_invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        total += len(key) + len(value)
    if total > 256 * 1024:
        errors.append(field_too_long(path, "", 256 * 1024))
    return errors


def _validate_owner_references(refs: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not refs:
        return errors
    controllers = 0
    for i, ref in enumerate(refs):
        base = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            errors.append(field_invalid(base, ref, "must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errors.append(field_invalid(f"{base}.{key}", ref.get(key, ""), f"{key} must not be empty"))
        if ref.get("controller"):
            controllers += 1
    if controllers > 1:
        errors.append(
            field_invalid("metadata.ownerReferences", refs, "Only one reference can have Controller set to true")
        )
    return errors


def validate_label_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    """metav1 ValidateLabelSelector of a typed selector: its labels, operators, keys and values."""
    errors = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, requirement in enumerate(selector.get("matchExpressions") or []):
        base = f"{path}.matchExpressions[{i}]"
        operator, values = requirement.get("operator") or "", requirement.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                errors.append(field_required(f"{base}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errors.append(field_forbidden(
                    f"{base}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errors.append(field_invalid(f"{base}.operator", operator, "not a valid selector operator"))
        key = requirement.get("key") or ""
        problem = label_key_problem(key)
        if problem:
            errors.append(field_invalid(f"{base}.key", key, problem))
        for j, value in enumerate(values):
            problem = label_value_problem(value)
            if problem:
                errors.append(field_invalid(f"{base}.values[{j}]", value, problem))
    return errors
