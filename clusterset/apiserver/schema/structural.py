"""Structural OpenAPI v3 schemas, applied to objects the way kube-apiserver applies a CRD's schema.

`Schema` wraps one openAPIV3Schema (a CRD version's, or a built-in kind's generated one) and runs the
steps apiextensions-apiserver runs on a write, in the same order:

1. `prune` drops what the schema does not declare (structural pruning, then ObjectMeta coercion of
   `metadata`) and returns the dropped paths, sorted, as upstream words them in
   `unknown field "spec.foo"`;
2. `apply_defaults` removes non-nullable nulls, then fills `default`s where the parent exists;
3. `validate` runs kube-openapi's schema validation, then the embedded-resource checks, then the
   `x-kubernetes-list-type` set/map checks, with kube-apiserver's field paths and messages.

Known gaps, on purpose:
- `x-kubernetes-validations` (CEL rules, GA since 1.29) are ignored: no rule is compiled or run.
- Validation ratcheting on update (CRDValidationRatcheting) is not done: `validate` sees only the
  new object, so an unchanged invalid field still fails.
- Like upstream, integer `format`s (int32/int64) are not range-checked and unknown formats are
  ignored; the string formats are the ones 1.27-1.33 validate (no `quantity`, no `k8s-*-name`).
- Patterns are Go RE2 syntax run on Python's `re`: a pattern Python cannot compile is not checked.

CRD-object defaulting and validation live in `crd_validation`.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import orjson

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_duplicate,
    field_invalid,
    field_not_supported,
    field_required,
    field_too_long,
    field_too_many,
    field_type_invalid,
)
from clusterset.apiserver.meta.validation import (
    dns1035_label_problems,
    path_segment_problems,
    validate_annotations,
    validate_labels,
)
from clusterset.apiserver.storage.encoding import kept

Node = dict[str, Any]

TYPE_META_KEYS = frozenset({"apiVersion", "kind", "metadata"})
OBJECT_META_KEYS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})
# ObjectMeta's lists of structs: their unknown keys are dropped too (`metadata.ownerReferences[0].x`)
OBJECT_META_ENTRY_KEYS = {
    "ownerReferences": frozenset({"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}),
    "managedFields": frozenset({
        "manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource",
    }),
}


class Schema:
    """A compiled openAPIV3Schema (a CRD version's schema, or a built-in kind's generated schema).

    Each step's outcome for an object's body (everything but `metadata`) is remembered by the body's digest:
    a fleet writes the same body again and again (an import, a Work, an EndpointSlice in every member), and
    the three walks over it cost most of a custom resource's write. `metadata` is never remembered: a body
    pruned clean before only has its ObjectMeta coerced; defaults and validation, which read `metadata` only
    through the schema's own `metadata` node, are remembered only when that node says nothing about it
    (validation: nothing but about the name, which is then part of the key).
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root: Node = schema
        self._defaults_meta_blind = _metadata_schema_is_trivial(schema, names=False)
        self._validation_meta_blind = _metadata_schema_is_trivial(schema, names=True) and not schema.get(
            "x-kubernetes-embedded-resource")  # which would validate the labels and annotations
        self._pruned_clean: dict[bytes, None] = {}
        self._defaulted: dict[bytes, bytes | None] = {}  # body digest → the defaulted body (None: unchanged)
        self._valid: dict[bytes, None] = {}
        # a root that checks nothing of its own but its fields' presence is valid when each of its fields is: a
        # status write then walks only what changed (a Work's manifests, an import's spec are remembered valid)
        self._parts = _plain_root_properties(schema)
        required = schema.get("required")
        self._parts_required: list[str] = [r for r in required if isinstance(r, str)] if isinstance(required, list) \
            else []
        self._valid_parts: dict[bytes, None] = {}

    def prune(self, obj: dict[str, Any], *, remember: bool = True) -> list[str]:
        """Removes undeclared fields in place; returns their paths (`spec.foo`, `spec.items[0].bar`). `remember`
        False for a large object: digesting its bytes twice would cost more than the walk (a wide ConfigMap is
        a few nodes of long strings)."""
        pruner = Pruner(coerce_object_meta=True)
        key = _body_digest(obj) if remember else None
        if key is not None and key in self._pruned_clean:
            pruner.coerce_root_meta(obj)
            return sorted(pruner.removed)
        pruner.prune(obj, self.root, resource_root=True)
        if key is not None and _body_digest(obj) == key:  # only metadata may have lost fields
            _remember(self._pruned_clean, key, None)
        return sorted(pruner.removed)

    def apply_defaults(self, obj: dict[str, Any]) -> None:
        """Upstream order: non-nullable nulls without a default go first, then defaults fill gaps."""
        key = _body_digest(obj) if self._defaults_meta_blind else None
        if key is not None and key in self._defaulted:
            defaulted = self._defaulted[key]
            if defaulted is not None:
                body = orjson.loads(defaulted)
                for field in [f for f in obj if f != "metadata" and f not in body]:
                    del obj[field]
                obj.update(body)
            return
        drop_non_nullable_nulls(obj, self.root)
        fill_defaults(obj, self.root)
        if key is not None:
            defaulted = None if _body_digest(obj) == key else kept(orjson.dumps(_body(obj)))
            if defaulted is None or len(defaulted) <= _REMEMBERED_BODY_BYTES:
                _remember(self._defaulted, key, defaulted)

    def validate(self, obj: dict[str, Any]) -> list[FieldError]:
        key = _body_digest(obj, _meta_name(obj)) if self._validation_meta_blind else None
        if key is not None and key in self._valid:
            return []
        if self._parts is not None and isinstance(obj, dict) and all(r in obj for r in self._parts_required) \
                and all(self._part_valid(name, value) for name, value in obj.items()):
            if key is not None:
                _remember(self._valid, key, None)
            return []
        errors = OpenAPIValidator().validate(obj, self.root, "")
        errors += embedded_resource_errors(obj, self.root, "")
        errors += list_type_errors(obj, self.root, "")
        if key is not None and not errors:
            _remember(self._valid, key, None)
        return errors

    def _part_valid(self, name: str, value: Any) -> bool:
        """Whether a root field validates (remembered by its digest, metadata aside: it differs per object)."""
        assert self._parts is not None
        node = self._parts.get(name)
        if not isinstance(node, dict):
            return True  # undeclared: the root allows it (no additionalProperties), nothing to walk
        key = _part_digest(name, value) if name != "metadata" else None
        if key is not None and key in self._valid_parts:
            return True
        valid = not (OpenAPIValidator().validate(value, node, name) or embedded_resource_errors(value, node, name)
                     or list_type_errors(value, node, name))
        if valid and key is not None:
            _remember(self._valid_parts, key, None)
        return valid


_ROOT_CHECKS_NOTHING_ELSE = frozenset({"type", "properties", "required", "description", "title"})


def _plain_root_properties(root: Node) -> dict[str, Any] | None:
    """The root's properties when the root itself checks nothing but that it is an object and which fields it
    requires (every CRD of ours, most others), else None: then its validity is its fields' and their presence."""
    if not set(root) <= _ROOT_CHECKS_NOTHING_ELSE or root.get("type", "object") != "object":
        return None
    props = root.get("properties")
    return props if isinstance(props, dict) else None


def _part_digest(name: str, value: Any) -> bytes | None:
    label = name.encode()
    return _digest(value, label + len(label).to_bytes(4, "big"))  # the name's length last: the suffix reads back


_REMEMBERED = 1024  # bodies per step and schema
_REMEMBERED_BODY_BYTES = 16 * 1024  # a larger defaulted body is defaulted again each time (16 MiB per schema at most)


def _remember(memo: dict[bytes, Any], key: bytes, value: Any) -> None:
    if len(memo) >= _REMEMBERED:
        memo.clear()
    memo[key] = value


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "metadata"}


def _body_digest(obj: dict[str, Any], extra: bytes = b"") -> bytes | None:
    """A digest of everything but `metadata` (key order included: a differently ordered body is only a miss)."""
    return _digest(_body(obj), extra)


def _digest(value: Any, suffix: bytes) -> bytes | None:
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits: not remembered
        return None
    return hashlib.blake2b(raw + suffix, digest_size=16).digest()


def _meta_name(obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return b"\0!"
    return b"\0" + orjson.dumps([meta.get("name"), meta.get("generateName")])


def _metadata_schema_is_trivial(root: Node, *, names: bool) -> bool:
    """Whether the root's `metadata` node says nothing about an object's metadata (`names`: nothing but about
    `name` and `generateName`, as upstream allows a CRD): then the object's defaults (resp. validation) depend on
    its metadata not at all (resp. through those two only)."""
    meta = properties_of(root).get("metadata")
    if meta is None:
        return True
    if not isinstance(meta, dict) or not set(meta) <= {"type", "description", "properties"}:
        return False
    props = properties_of(meta)
    return not props or (names and set(props) <= {"name", "generateName"})


# ---------------------------------------------------------------- paths and schema nodes


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def key_path(path: str, key: str) -> str:
    """A map entry, as apimachinery's `Path.Key` prints it: `spec.labels[app]`."""
    return f"{path}[{key}]"


def properties_of(node: Node) -> dict[str, Any]:
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def declared_schema(node: Node, key: str) -> tuple[bool, Node | None]:
    """Whether `key` is declared (a property, or any key under additionalProperties) and its schema.

    `additionalProperties: true` declares every key without a schema, so what is under it is pruned.
    """
    props = properties_of(node)
    if key in props:
        child = props[key]
        return True, child if isinstance(child, dict) else None
    additional = node.get("additionalProperties")
    if additional is not None:
        return True, additional if isinstance(additional, dict) else None
    return False, None


def node_types(node: Node) -> list[str]:
    """The types kube-openapi checks: int-or-string is `integer,string`; no type checks nothing."""
    if node.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    declared = node.get("type")
    return [declared] if isinstance(declared, str) and declared else []


def effective_format(node: Node) -> str:
    """The format left after upstream strips the ones CRDs do not support for the node's type."""
    declared = node.get("format")
    if not isinstance(declared, str) or not declared:
        return ""
    types = node_types(node)
    single = types[0] if len(types) == 1 else ""
    if single in ("", "string"):
        return declared if declared.replace("-", "") in STRING_FORMATS else ""
    if single == "integer":
        return declared if declared in ("int32", "int64") else ""
    if single == "number":
        return declared if declared in ("float", "double") else ""
    return ""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numeric(node: Node, key: str) -> float | None:
    """A numeric keyword (`minimum`, `maxLength`...), or None when absent or not a number."""
    value = node.get(key)
    return value if is_number(value) else None


def json_type(value: Any) -> tuple[str, str]:
    """kube-openapi's (type, format) of a decoded JSON value: ints are int64, floats float64."""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, int):
        return "integer", "int64"
    if isinstance(value, float):
        return "number", "float64"
    if isinstance(value, list):
        return "array", ""
    if isinstance(value, dict):
        return "object", ""
    return "null", ""


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: unlike Python's `==`, `true` is not `1`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if is_number(left) and is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


# ---------------------------------------------------------------- pruning


class Pruner:
    """apiextensions' structural pruning, recording the paths it drops.

    With `coerce_object_meta`, `metadata` of the resource root and of embedded resources keeps only
    ObjectMeta's fields, as upstream's ObjectMeta decoding does.
    """

    def __init__(self, *, coerce_object_meta: bool) -> None:
        self.coerce_object_meta = coerce_object_meta
        self.removed: list[str] = []

    def prune(self, value: Any, node: Node | None, path: str = "", *, resource_root: bool = False) -> None:
        if node is not None and node.get("x-kubernetes-preserve-unknown-fields"):
            self._prune_known_only(value, node, path, resource_root)
        elif isinstance(value, dict):
            self._prune_object(value, node, path, resource_root)
        elif isinstance(value, list):
            items = node.get("items") if node is not None else None
            for i, item in enumerate(value):
                self.prune(item, items if isinstance(items, dict) else None, index_path(path, i))

    def _prune_object(self, obj: dict[str, Any], node: Node | None, path: str, resource_root: bool) -> None:
        if node is None:
            for key in list(obj):
                self._drop(obj, key, path)
            return
        keeps_type_meta = resource_root or bool(node.get("x-kubernetes-embedded-resource"))
        for key in list(obj):
            if keeps_type_meta and key in TYPE_META_KEYS:
                continue
            declared, child = declared_schema(node, key)
            if not declared:
                self._drop(obj, key, path)
            elif isinstance(value := obj[key], dict | list):  # a scalar holds nothing to prune
                self.prune(value, child, child_path(path, key))
        if keeps_type_meta:
            self._coerce_meta(obj, path)

    def _prune_known_only(self, value: Any, node: Node, path: str, resource_root: bool) -> None:
        """Under x-kubernetes-preserve-unknown-fields unknown keys stay; declared ones are still pruned."""
        if isinstance(value, dict):
            keeps_type_meta = resource_root or bool(node.get("x-kubernetes-embedded-resource"))
            for key, item in value.items():
                if keeps_type_meta and key in TYPE_META_KEYS:
                    continue
                declared, child = declared_schema(node, key)
                if declared:
                    self.prune(item, child, child_path(path, key))
            if keeps_type_meta:
                self._coerce_meta(value, path)
        elif isinstance(value, list):
            items = node.get("items")
            if isinstance(items, dict):
                for i, item in enumerate(value):
                    self._prune_known_only(item, items, index_path(path, i), False)

    def coerce_root_meta(self, obj: dict[str, Any]) -> None:
        """What pruning does to a resource's own `metadata`: the schema never reaches it, ObjectMeta's fields stay."""
        self._coerce_meta(obj, "")

    def _coerce_meta(self, obj: dict[str, Any], path: str) -> None:
        meta = obj.get("metadata")
        if not self.coerce_object_meta or not isinstance(meta, dict):
            return
        meta_path = child_path(path, "metadata")
        for key in list(meta):
            if key not in OBJECT_META_KEYS:
                self._drop(meta, key, meta_path)
        for list_key, known in OBJECT_META_ENTRY_KEYS.items():
            entries = meta.get(list_key)
            if not isinstance(entries, list):
                continue
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    for key in [k for k in entry if k not in known]:
                        self._drop(entry, key, index_path(child_path(meta_path, list_key), i))

    def _drop(self, obj: dict[str, Any], key: str, path: str) -> None:
        del obj[key]
        self.removed.append(child_path(path, key))


# ---------------------------------------------------------------- defaulting


def drop_non_nullable_nulls(value: Any, node: Node | None) -> None:
    """Deletes `null` properties that are neither nullable nor defaulted (they read as absent)."""
    if not isinstance(node, dict):
        return
    if isinstance(value, dict):
        props = properties_of(node)
        for key in list(value):
            child = props.get(key)
            if not isinstance(child, dict):
                continue
            if value[key] is None and child.get("default") is None and not child.get("nullable"):
                del value[key]
            else:
                drop_non_nullable_nulls(value[key], child)
    elif isinstance(value, list):
        items = node.get("items")
        for item in value:
            drop_non_nullable_nulls(item, items if isinstance(items, dict) else None)


def fill_defaults(value: Any, node: Node | None) -> None:
    """Sets `default` for absent (or non-nullable null) fields of objects that exist, recursively."""
    if not isinstance(node, dict):
        return
    if isinstance(value, dict):
        for key, child in properties_of(node).items():
            if isinstance(child, dict) and _wants_default(value, key, child):
                value[key] = copy.deepcopy(child["default"])
        for key, item in value.items():
            declared, child_schema = declared_schema(node, key)
            if declared:
                fill_defaults(item, child_schema)
    elif isinstance(value, list):
        items = node.get("items")
        if not isinstance(items, dict):
            return
        for i, item in enumerate(value):
            if item is None and items.get("default") is not None and not items.get("nullable"):
                value[i] = copy.deepcopy(items["default"])
            fill_defaults(value[i], items)


def _wants_default(obj: dict[str, Any], key: str, child: Node) -> bool:
    if child.get("default") is None:
        return False
    return key not in obj or (obj[key] is None and not child.get("nullable"))


# ---------------------------------------------------------------- kube-openapi validation


COMBINATOR_KEYWORDS = frozenset({"anyOf", "oneOf", "allOf", "not"})
STRING_KEYWORDS = frozenset({"maxLength", "minLength", "pattern"})
NUMBER_KEYWORDS = frozenset({"multipleOf", "minimum", "maximum"})
# a declared type and the Python type of a decoded JSON value that has it for sure (int-or-string nodes declare no
# `type`; a bool is not an integer, and `type(True) is int` is False)
PLAIN_TYPES: dict[str, type] = {"string": str, "object": dict, "array": list, "boolean": bool, "integer": int}


class OpenAPIValidator:
    """kube-openapi's SchemaValidator, with apiextensions' conversion of its errors to field errors.

    `name` is kube-openapi's error name (`spec.n`, `spec.items[0]`), which messages embed; the field
    path is `root` plus that name, as upstream builds it (`root` is set for `default` values).
    """

    def __init__(self, root: str = "") -> None:
        self.root = root

    def validate(self, value: Any, node: Node, name: str) -> list[FieldError]:
        # Each group of checks runs only when the node has one of its keywords: most nodes have a type and
        # nothing else, and this walk runs over every node of every custom resource written.
        keys = node.keys()
        if value is None:
            return self._type_errors(value, node, name) + self._enum_errors(value, node, name)
        errors = self._type_errors(value, node, name)
        if not keys.isdisjoint(COMBINATOR_KEYWORDS):
            errors += self._combinator_errors(value, node, name)
        if isinstance(value, str):
            if not keys.isdisjoint(STRING_KEYWORDS):
                errors += self._string_errors(value, node, name)
            if "format" in keys:
                errors += self._format_errors(value, node, name)
        elif isinstance(value, list):
            errors += self._array_errors(value, node, name)
        elif isinstance(value, dict):
            if "enum" in keys:
                errors += self._enum_errors(value, node, name)
            return errors + self._object_errors(value, node, name)
        elif is_number(value) and not keys.isdisjoint(NUMBER_KEYWORDS):
            errors += self._number_errors(value, node, name)
        if "enum" in keys:
            errors += self._enum_errors(value, node, name)
        return errors

    def path(self, name: str) -> str:
        trimmed = name.removeprefix(".")
        if not trimmed:
            return self.root
        return f"{self.root}.{trimmed}" if self.root else trimmed

    # -- type and format

    def _type_errors(self, value: Any, node: Node, name: str) -> list[FieldError]:
        declared = node.get("type")
        if isinstance(declared, str) and type(value) is PLAIN_TYPES.get(declared) and "format" not in node:
            return []  # the common case, settled without the general rules below
        types, fmt = node_types(node), effective_format(node)
        if not types and not fmt:
            return []
        if value is None:
            if types and not node.get("nullable"):
                return [self._wrong_type(name, ",".join(types), "null")]
            return []
        actual, actual_format = json_type(value)
        float_as_int = actual == "number" and float(value).is_integer() and "integer" in types
        int_as_float = actual == "integer" and "number" in types
        string_or_array = isinstance(value, str | list)
        compatible = actual in types or float_as_int or int_as_float
        if fmt and not string_or_array and not (compatible or actual_format == fmt):
            return [self._wrong_type(name, fmt, actual_format)]
        if fmt and string_or_array and not ("number" in types or "integer" in types):
            return []
        return [] if compatible else [self._wrong_type(name, ",".join(types), actual)]

    def _wrong_type(self, name: str, expected: str, actual: str) -> FieldError:
        detail = f"{name} in body must be of type {expected}: {go_quote(actual)}"
        return field_type_invalid(self.path(name), actual, detail)

    def _format_errors(self, value: str, node: Node, name: str) -> list[FieldError]:
        fmt = effective_format(node)
        check = STRING_FORMATS.get(fmt.replace("-", "")) if fmt else None
        if check is None or check(value):
            return []
        return [field_type_invalid(self.path(name), value, f"{name} in body must be of type {fmt}: {go_quote(value)}")]

    # -- scalars

    def _string_errors(self, value: str, node: Node, name: str) -> list[FieldError]:
        max_length, min_length, pattern = numeric(node, "maxLength"), numeric(node, "minLength"), node.get("pattern")
        if max_length is not None and len(value) > max_length:
            return [field_too_long(self.path(name), value, int(max_length))]
        if min_length is not None and len(value) < min_length:
            detail = f"{name} in body should be at least {int(min_length)} chars long"
            return [field_invalid(self.path(name), value, detail)]
        if isinstance(pattern, str) and pattern:
            compiled = compile_go_regex(pattern)
            if compiled is not None and not compiled.search(value):
                return [field_invalid(self.path(name), value, f"{name} in body should match '{pattern}'")]
        return []

    def _number_errors(self, value: float, node: Node, name: str) -> list[FieldError]:
        errors = self._multiple_of_errors(value, node, name)
        errors += self._bound_errors(value, node, name, "minimum")
        errors += self._bound_errors(value, node, name, "maximum")
        return errors

    def _multiple_of_errors(self, value: float, node: Node, name: str) -> list[FieldError]:
        factor = numeric(node, "multipleOf")
        if factor is None:
            return []
        if factor < 0:
            detail = f"factor MultipleOf declared for {name} must be positive: {go_number(factor)}"
            return [field_invalid(self.path(name), factor, detail)]
        if isinstance(value, int) and int(factor) != 0:
            # integers are checked natively, against the factor truncated to an integer
            whole = int(factor)
            ok, shown = value % whole == 0, str(whole)
        elif factor == 0:
            ok, shown = False, "0"
        else:
            ok, shown = _is_json_integer(value / factor if factor >= 1 else (1 / factor) * value), go_number(factor)
        if ok:
            return []
        return [field_invalid(self.path(name), value, f"{name} in body should be a multiple of {shown}")]

    def _bound_errors(self, value: float, node: Node, name: str, keyword: str) -> list[FieldError]:
        """minimum/maximum; an integer is compared with the bound truncated to an integer, like Go."""
        bound = numeric(node, keyword)
        if bound is None:
            return []
        exclusive = bool(node.get("exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum"))
        side = "greater" if keyword == "minimum" else "less"
        limit: float = int(bound) if isinstance(value, int) else float(bound)
        if side == "greater":
            failed = value <= limit if exclusive else value < limit
        else:
            failed = value >= limit if exclusive else value > limit
        if not failed:
            return []
        relation = f"should be {side} than" if exclusive else f"should be {side} than or equal to"
        return [field_invalid(self.path(name), value, f"{name} in body {relation} {go_number(limit)}")]

    def _enum_errors(self, value: Any, node: Node, name: str) -> list[FieldError]:
        enum = node.get("enum")
        if not isinstance(enum, list) or not enum:
            return []
        if value is None and node.get("nullable"):
            return []
        if any(json_equal(value, allowed) for allowed in enum):
            return []
        supported = [allowed if isinstance(allowed, str) else go_json(allowed) for allowed in enum]
        return [field_not_supported(self.path(name), value, supported)]

    # -- containers

    def _array_errors(self, value: list[Any], node: Node, name: str) -> list[FieldError]:
        errors: list[FieldError] = []
        items = node.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                errors += self.validate(item, items, f"{name}[{i}]")
        min_items, max_items = numeric(node, "minItems"), numeric(node, "maxItems")
        if min_items is not None and len(value) < min_items:
            detail = f"{name} in body should have at least {int(min_items)} items"
            errors.append(field_invalid(self.path(name), len(value), detail))
        if max_items is not None and len(value) > max_items:
            errors.append(field_too_many(self.path(name), len(value), int(max_items)))
        if node.get("uniqueItems") is True and _has_duplicates(value):
            errors.append(field_invalid(self.path(name), "", f"{name} in body shouldn't contain duplicates"))
        return errors

    def _object_errors(self, value: dict[str, Any], node: Node, name: str) -> list[FieldError]:
        count, min_props, max_props = len(value), numeric(node, "minProperties"), numeric(node, "maxProperties")
        if min_props is not None and count < min_props:
            detail = f"{name} in body should have at least {int(min_props)} properties"
            return [field_invalid(self.path(name), count, detail)]
        if max_props is not None and count > max_props:
            return [field_too_many(self.path(name), count, int(max_props))]
        props = properties_of(node)
        errors: list[FieldError] = []
        additional = node.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                continue
            if additional is False:
                detail = f"{name}.{key} in body is a forbidden property"
                errors.append(field_invalid(self.path(name), key, detail))
            elif isinstance(additional, dict):
                errors += self.validate(item, additional, f"{name}.{key}")
        for key, child in props.items():
            if key in value and isinstance(child, dict):
                errors += self.validate(value[key], child, f"{name}.{key}" if name else key)
        for key in node.get("required") or []:
            if isinstance(key, str) and key not in value:
                errors.append(field_required(self.path(f"{name}.{key}")))
        return errors

    # -- allOf / anyOf / oneOf / not

    def _combinator_errors(self, value: Any, node: Node, name: str) -> list[FieldError]:
        errors = self._any_of_errors(value, node.get("anyOf"), name)
        errors += self._one_of_errors(value, node.get("oneOf"), name)
        errors += self._all_of_errors(value, node.get("allOf"), name)
        negated = node.get("not")
        if isinstance(negated, dict) and not self.validate(value, negated, name):
            errors.append(self._composite(f"{go_quote(name)} must not validate the schema (not)"))
        return errors

    def _results(self, value: Any, schemas: Any, name: str) -> list[list[FieldError]]:
        if not isinstance(schemas, list):
            return []
        return [self.validate(value, sub, name) for sub in schemas if isinstance(sub, dict)]

    def _any_of_errors(self, value: Any, schemas: Any, name: str) -> list[FieldError]:
        results = self._results(value, schemas, name)
        if not results or any(not result for result in results):
            return []
        best = min(results, key=len)
        return [self._composite(f"{go_quote(name)} must validate at least one schema (anyOf)"), *best]

    def _one_of_errors(self, value: Any, schemas: Any, name: str) -> list[FieldError]:
        results = self._results(value, schemas, name)
        valid = sum(1 for result in results if not result)
        if not results or valid == 1:
            return []
        found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
        errors = [self._composite(f"{go_quote(name)} must validate one and only one schema (oneOf). {found}")]
        return errors + (min(results, key=len) if valid == 0 else [])

    def _all_of_errors(self, value: Any, schemas: Any, name: str) -> list[FieldError]:
        results = self._results(value, schemas, name)
        valid = sum(1 for result in results if not result)
        if valid == len(results):
            return []
        errors = [error for result in results for error in result]
        suffix = ". None validated" if valid == 0 else ""
        return [*errors, self._composite(f"{go_quote(name)} must validate all the schemas (allOf){suffix}")]

    def _composite(self, detail: str) -> FieldError:
        """kube-openapi's composite errors carry no name: upstream reports them on the root path."""
        return field_invalid(self.root, "", detail)


def _has_duplicates(values: list[Any]) -> bool:
    return any(json_equal(values[i], values[j]) for i in range(len(values)) for j in range(i))


def _is_json_integer(value: float) -> bool:
    """go-openapi's IsFloat64AJSONInteger, with its relative epsilon of 1e-9."""
    if math.isnan(value) or math.isinf(value):
        return False
    nearest = round(value)
    if value == nearest:
        return True
    return abs(value - nearest) / (abs(value) + abs(nearest)) < 1e-9


# ---------------------------------------------------------------- embedded resources and list types


def embedded_resource_errors(value: Any, node: Node | None, path: str) -> list[FieldError]:
    """x-kubernetes-embedded-resource objects need apiVersion and kind, and a valid metadata."""
    if not isinstance(node, dict):
        return []
    errors: list[FieldError] = []
    if isinstance(value, dict):
        if node.get("x-kubernetes-embedded-resource"):
            errors += _type_meta_errors(value, path)
        props = properties_of(node)
        additional = node.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += embedded_resource_errors(item, props[key], child_path(path, key))
            elif isinstance(additional, dict):
                errors += embedded_resource_errors(item, additional, key_path(path, key))
    elif isinstance(value, list):
        items = node.get("items")
        for i, item in enumerate(value):
            errors += embedded_resource_errors(item, items if isinstance(items, dict) else None, index_path(path, i))
    return errors


def _type_meta_errors(obj: dict[str, Any], path: str) -> list[FieldError]:
    errors = [field_required(child_path(path, key)) for key in ("apiVersion", "kind") if key not in obj]
    for key, value in obj.items():
        if key == "apiVersion":
            errors += _api_version_errors(value, child_path(path, key))
        elif key == "kind":
            errors += _kind_errors(value, child_path(path, key))
        elif key == "metadata":
            errors += _embedded_meta_errors(value, child_path(path, key))
    return errors


def _api_version_errors(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [field_invalid(path, value, "must be a string")]
    if not value:
        return [field_required(path)]
    if value.count("/") > 1:
        return [field_invalid(path, value, f"unexpected GroupVersion string: {value}")]
    return []


def _kind_errors(value: Any, path: str) -> list[FieldError]:
    if not isinstance(value, str):
        return [field_invalid(path, value, "must be a string")]
    if not value:
        return [field_required(path)]
    problems = dns1035_label_problems(value.lower())
    if problems:
        return [field_invalid(path, value, "may have mixed case, but should otherwise match: " + ",".join(problems))]
    return []


def _embedded_meta_errors(meta: Any, path: str) -> list[FieldError]:
    if not isinstance(meta, dict):
        return [field_invalid(path, meta, "must be an object")]
    errors: list[FieldError] = []
    name = meta.get("name")
    if isinstance(name, str) and name:
        errors += [field_invalid(child_path(path, "name"), name, problem) for problem in path_segment_problems(name)]
    errors += validate_labels(meta.get("labels"), child_path(path, "labels"))
    errors += validate_annotations(meta.get("annotations"), child_path(path, "annotations"))
    return errors


def list_type_errors(value: Any, node: Node | None, path: str) -> list[FieldError]:
    """x-kubernetes-list-type set (unique items) and map (unique key tuples), recursively."""
    if not isinstance(node, dict):
        return []
    errors: list[FieldError] = []
    if isinstance(value, dict):
        props = properties_of(node)
        additional = node.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += list_type_errors(item, props[key], child_path(path, key))
            elif isinstance(additional, dict):
                errors += list_type_errors(item, additional, key_path(path, key))
    elif isinstance(value, list):
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            errors += _set_errors(value, path)
        elif list_type == "map":
            errors += _list_map_errors(value, node, path)
        items = node.get("items")
        for i, item in enumerate(value):
            errors += list_type_errors(item, items if isinstance(items, dict) else None, index_path(path, i))
    return errors


def _set_errors(values: list[Any], path: str) -> list[FieldError]:
    """Each repeated value is reported once, at its second occurrence."""
    seen: dict[str, int] = {}
    errors = []
    for i, item in enumerate(values):
        key = _identity(item)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            errors.append(field_duplicate(index_path(path, i), item))
    return errors


def _list_map_errors(values: list[Any], node: Node, path: str) -> list[FieldError]:
    for i, item in enumerate(values):
        if item is not None and not isinstance(item, dict):
            return [field_invalid(index_path(path, i), item, "must be an object for an array of list-type map")]
    keys = [k for k in node.get("x-kubernetes-list-map-keys") or [] if isinstance(k, str)]
    items = node.get("items")
    item_props = properties_of(items) if isinstance(items, dict) else {}
    seen: dict[str, int] = {}
    errors = []
    for i, item in enumerate(values):
        entry = _map_key_values(item or {}, keys, item_props)
        identity = _identity(entry)
        seen[identity] = seen.get(identity, 0) + 1
        if seen[identity] == 2:
            errors.append(field_duplicate(index_path(path, i), entry))
    return errors


def _map_key_values(item: dict[str, Any], keys: list[str], item_props: dict[str, Any]) -> dict[str, Any]:
    """The item's key fields; an absent key counts as its schema default, if it has one."""
    entry = {}
    for key in keys:
        if key in item:
            entry[key] = item[key]
        elif isinstance(item_props.get(key), dict) and item_props[key].get("default") is not None:
            entry[key] = item_props[key]["default"]
    return entry


def _identity(value: Any) -> str:
    return json.dumps(_normalize_numbers(value), sort_keys=True)


# ---------------------------------------------------------------- Go formatting


def go_quote(text: str) -> str:
    """Go's %q of a string."""
    return json.dumps(text, ensure_ascii=False)


def go_number(value: float) -> str:
    """Go's %v: integers as is; floats shortest, in %e form when the exponent is < -4 or >= 6."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    digits_tuple = Decimal(repr(number)).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits) or "0"
    exponent = int(digits_tuple.exponent) + len(digits) - 1
    sign = "-" if digits_tuple.sign else ""
    if number == 0:
        return sign + "0"
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + format(Decimal(repr(abs(number))).normalize(), "f")


def go_json(value: Any) -> str:
    """encoding/json of a decoded value: whole floats print as integers."""
    return json.dumps(_normalize_numbers(value), separators=(",", ":"), sort_keys=True)


def _normalize_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    return value


_PERL_ONLY = re.compile(r"\(\?(?:<[=!]|[=!>])|\\[1-9]")
_GO_TO_PYTHON = (
    (re.compile(r"\(\?<(?=[A-Za-z_])"), "(?P<"),
    (re.compile(r"\\z"), r"\\Z"),
    (re.compile(r"\\p\{L\}|\\pL"), r"[^\\W\\d_]"),
    (re.compile(r"\\p\{N\}|\\pN"), r"\\d"),
    (re.compile(r"\[:alpha:\]"), "a-zA-Z"),
    (re.compile(r"\[:digit:\]"), "0-9"),
    (re.compile(r"\[:alnum:\]"), "a-zA-Z0-9"),
    (re.compile(r"\[:upper:\]"), "A-Z"),
    (re.compile(r"\[:lower:\]"), "a-z"),
    (re.compile(r"\[:space:\]"), r"\\s"),
)


def go_regex_problem(pattern: str) -> str | None:
    """Why Go's regexp would refuse the pattern (in Go's wording where we know it), or None."""
    perl = _PERL_ONLY.search(pattern)
    if perl is not None:
        token = perl.group(0)
        if token.startswith("\\"):
            return f"error parsing regexp: invalid escape sequence: `{token}`"
        return f"error parsing regexp: invalid or unsupported Perl syntax: `{token}`"
    try:
        re.compile(_translate_go_regex(pattern))
    except re.error as err:
        return f"error parsing regexp: {err}"
    return None


@lru_cache(maxsize=1024)
def compile_go_regex(pattern: str) -> re.Pattern[str] | None:
    """The pattern compiled for Python's `re`, or None when it cannot be (it is then not checked)."""
    if go_regex_problem(pattern) is not None:
        return None
    return re.compile(_translate_go_regex(pattern))


def _translate_go_regex(pattern: str) -> str:
    for go_syntax, python_syntax in _GO_TO_PYTHON:
        pattern = go_syntax.sub(python_syntax, pattern)
    return pattern


# ---------------------------------------------------------------- string formats (strfmt.Default)


def _is_request_uri(text: str) -> bool:
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    return text.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) is not None


def _is_email(text: str) -> bool:
    _, address = parseaddr(text)
    local, _, domain = address.rpartition("@")
    return bool(local and domain) and not any(c.isspace() for c in address)


_HOSTNAME_CHAR = "[a-zA-Z0-9\u0080-\U0010ffff]"
_HOSTNAME = re.compile(
    rf"^({_HOSTNAME_CHAR}((-?{_HOSTNAME_CHAR}{{0,62}})?)|"
    rf"({_HOSTNAME_CHAR}(([a-zA-Z0-9\-\u0080-\U0010ffff]{{0,61}}{_HOSTNAME_CHAR})?)(\.)){{1,}}"
    rf"({_HOSTNAME_CHAR})(-?{_HOSTNAME_CHAR}){{1,62}})$"
)


def _is_hostname(text: str) -> bool:
    return bool(_HOSTNAME.match(text)) and len(text) <= 255 and all(len(p) <= 63 for p in text.split("."))


def _is_ip(text: str, marker: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return marker in text


def _is_cidr(text: str) -> bool:
    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


_MAC_COLON = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+$")
_MAC_DASH = re.compile(r"^[0-9a-fA-F]{2}(-[0-9a-fA-F]{2})+$")
_MAC_DOT = re.compile(r"^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4})+$")


def _is_mac(text: str) -> bool:
    """net.ParseMAC: 6, 8 or 20 octets, as `:`/`-` separated pairs or `.` separated quads."""
    if _MAC_COLON.match(text) or _MAC_DASH.match(text):
        return (len(text) + 1) // 3 in (6, 8, 20)
    if _MAC_DOT.match(text):
        return (len(text) + 1) // 5 * 2 in (6, 8, 20)
    return False


def _is_isbn10(text: str) -> bool:
    digits = re.sub(r"[\s-]", "", text)
    if not re.match(r"^(?:[0-9]{9}X|[0-9]{10})$", digits):
        return False
    total = sum((i + 1) * (10 if c == "X" else int(c)) for i, c in enumerate(digits))
    return total % 11 == 0


def _is_isbn13(text: str) -> bool:
    digits = re.sub(r"[\s-]", "", text)
    if not re.match(r"^[0-9]{13}$", digits):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


_CREDIT_CARD = re.compile(
    r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)"
    r"[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|"
    r"(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$"
)


def _is_credit_card(text: str) -> bool:
    digits = re.sub(r"[^0-9]", "", text)
    if not _CREDIT_CARD.match(digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_DATE_TIME_CLOCK = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")


def _is_date(text: str) -> bool:
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        return False
    year, month, day = (int(p) for p in text.split("-"))
    days_in_month = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
                     31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days_in_month[month - 1]


def _is_date_time(text: str) -> bool:
    """strfmt.IsDateTime: an RFC 3339 date, `T`, and a clock with fraction and zone."""
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    clock = _DATE_TIME_CLOCK.match(parts[1])
    return clock is not None and clock.group(1) <= "23" and clock.group(2) <= "59" and clock.group(3) <= "59"


_GO_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$")
_LOOSE_DURATION = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_DURATION_UNITS = frozenset({
    "ns", "nano", "nanos", "nanosecond", "nanoseconds", "us", "µs", "micro", "micros", "microsecond",
    "microseconds", "ms", "milli", "millis", "millisecond", "milliseconds", "s", "sec", "secs", "second",
    "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day",
    "days", "w", "wk", "wks", "week", "weeks",
})


def _is_duration(text: str) -> bool:
    """strfmt.ParseDuration: Go's syntax, or any `<n> <unit>` in it (`3 days`)."""
    if _GO_DURATION.match(text):
        return True
    return any(unit.lower() in _DURATION_UNITS for _, unit in _LOOSE_DURATION.findall(text))


def _matches(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda text: compiled.match(text) is not None


_RGB_PART = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"

# normalized name (no dashes) -> check, as registered in kube-openapi's strfmt.Default
STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": _matches(r"^[0-9a-fA-F]{24}$"),
    "uri": _is_request_uri,
    "email": _is_email,
    "hostname": _is_hostname,
    "ipv4": lambda text: _is_ip(text, "."),
    "ipv6": lambda text: _is_ip(text, ":"),
    "cidr": _is_cidr,
    "mac": _is_mac,
    "uuid": _matches(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "uuid3": _matches(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "uuid4": _matches(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I),
    "uuid5": _matches(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I),
    "isbn": lambda text: _is_isbn10(text) or _is_isbn13(text),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_credit_card,
    "ssn": lambda text: len(text) == 11 and re.match(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", text) is not None,
    "hexcolor": _matches(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
    "rgbcolor": _matches(rf"^rgb\({_RGB_PART},{_RGB_PART},{_RGB_PART}\)$"),
    "byte": _matches(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"),
    "password": lambda text: True,
    "date": _is_date,
    "datetime": _is_date_time,
    "duration": _is_duration,
}
