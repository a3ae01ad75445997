"""CustomResourceDefinition (apiextensions.k8s.io/v1) defaulting and validation, as kube-apiserver does it.

Upstream validates the *internal* CRD. Converting v1 to internal hoists a per-version field to the
top level when every version has the same value, so the field paths of errors depend on it:
identical schemas report under `spec.validation.openAPIV3Schema...`, identical subresources under
`spec.subresources...`, identical printer columns under `spec.additionalPrinterColumns[0]...`;
otherwise they report under `spec.versions[i]...`. One version is always "identical".

Not checked (deliberately): `x-kubernetes-validations` CEL rules and their cost, `selectableFields`,
webhook URL/service details, and the "don't tighten validation of what was already stored"
relaxations on update (everything stored here was validated by these rules).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import orjson

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.validation import dns1035_label_problems, dns1123_subdomain_problems
from clusterset.apiserver.schema.structural import (
    TYPE_META_KEYS,
    Node,
    OpenAPIValidator,
    Pruner,
    go_regex_problem,
    properties_of,
)
from clusterset.apiserver.storage.encoding import kept

OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
CONVERSION_REVIEW_VERSIONS = ("v1", "v1beta1")
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
API_APPROVAL_PR = "https://github.com/kubernetes/enhancements/pull/1111"
# JSONSchemaProps fields allowed at the schema root when the status subresource is enabled
ROOT_FIELDS_WITH_STATUS = {
    "description": "Description", "type": "Type", "format": "Format", "title": "Title",
    "maximum": "Maximum", "exclusiveMaximum": "ExclusiveMaximum", "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum", "maxLength": "MaxLength", "minLength": "MinLength",
    "pattern": "Pattern", "maxItems": "MaxItems", "minItems": "MinItems", "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf", "required": "Required", "items": "Items", "properties": "Properties",
    "externalDocs": "ExternalDocs", "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}
# JSONSchemaProps' Go field order, and its pointer fields (set as soon as present, even if zero)
JSON_SCHEMA_PROPS_ORDER = (
    "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
    "multipleOf", "enum", "maxProperties", "minProperties", "required", "items", "allOf", "oneOf", "anyOf",
    "not", "properties", "additionalProperties", "patternProperties", "dependencies", "additionalItems",
    "definitions", "externalDocs", "example", "nullable", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
)
POINTER_FIELDS = frozenset({
    "$ref", "default", "maximum", "minimum", "maxLength", "minLength", "maxItems", "minItems", "multipleOf",
    "maxProperties", "minProperties", "items", "not", "additionalProperties", "additionalItems",
    "externalDocs", "example", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
    "x-kubernetes-map-type",
})
# what a structural schema node holds besides `type` and `default` (upstream's Structural type)
STRUCTURAL_KEYS = frozenset({
    "description", "title", "nullable", "externalDocs", "properties", "additionalProperties", "items",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
    "x-kubernetes-validations", "format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum",
    "maxProperties", "minProperties", "required", "allOf", "oneOf", "anyOf", "not",
})
# keywords a structural schema cannot represent (upstream then only reports the OpenAPI errors)
UNSUPPORTED_KEYWORDS = ("$ref", "definitions", "dependencies", "patternProperties", "additionalItems", "id")


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_set(value: Any) -> bool:
    """Whether a Go field would be non-zero: absent, null, false, "", [] and {} are all unset."""
    return value not in (None, False, "", [], {})


# ---------------------------------------------------------------- defaulting


def default_crd(crd: dict[str, Any]) -> None:
    """v1 defaulting: singular, listKind, conversion None, webhook port 443; served/storage are
    non-omitempty booleans, so absent ones read back as false."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = text(names.get("kind"))
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    client_config = mapping(mapping(mapping(spec.get("conversion")).get("webhook")).get("clientConfig"))
    service = mapping(client_config.get("service"))
    if service and service.get("port") is None:
        service["port"] = 443
    for version in sequence(spec.get("versions")):
        if isinstance(version, dict):
            version.setdefault("served", False)
            version.setdefault("storage", False)


# ---------------------------------------------------------------- validation entry point


def validate_crd(crd: dict[str, Any], *, old: dict[str, Any] | None = None) -> list[FieldError]:
    spec = mapping(crd.get("spec"))
    versions = [mapping(v) for v in sequence(spec.get("versions"))]
    errors = _name_errors(crd, spec)
    errors += _checked_spec_errors(spec, versions)
    if old is not None:
        errors += _immutable_errors(spec, mapping(old.get("spec")), _is_established(old))
    errors += names_errors(mapping(mapping(crd.get("status")).get("acceptedNames")), "status.acceptedNames")
    errors += _stored_version_errors(versions, old)
    errors += _api_approval_errors(crd, spec, old)
    errors += _preserve_unknown_fields_errors(spec, old)
    return errors


def _name_errors(crd: dict[str, Any], spec: dict[str, Any]) -> list[FieldError]:
    """Only the CRD-specific rule: the generic name checks run in the strategy."""
    name = text(mapping(crd.get("metadata")).get("name"))
    required = f"{text(mapping(spec.get('names')).get('plural'))}.{text(spec.get('group'))}"
    if name and name != required:
        return [field_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')]
    return []


@dataclass(frozen=True)
class Layout:
    """Which per-version fields the v1->internal conversion hoists (see the module docstring)."""

    schema: bool
    subresources: bool
    columns: bool

    @staticmethod
    def of(versions: list[dict[str, Any]]) -> Layout:
        def identical(key: str) -> bool:
            first = versions[0].get(key) if versions else None
            return bool(versions) and all(_same(v.get(key), first) for v in versions)

        return Layout(identical("schema"), identical("subresources"), identical("additionalPrinterColumns"))


def _same(left: Any, right: Any) -> bool:
    """Go's semantic equality treats nil and empty slices and maps alike."""
    return (left if is_set(left) else None) == (right if is_set(right) else None)


SPEC_MEMO_SIZE = 64
_spec_memo: OrderedDict[bytes, tuple[FieldError, ...]] = OrderedDict()


def _checked_spec_errors(spec: dict[str, Any], versions: list[dict[str, Any]]) -> list[FieldError]:
    """`_spec_errors`, remembered for the last few specs: a pure function of the spec, and the same CRDs are
    installed in every cluster of a fleet and validated again at each status write (2-3 ms each)."""
    try:
        key = kept(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not plain JSON: not remembered
        return _spec_errors(spec, versions)
    errors = _spec_memo.get(key)
    if errors is None:
        errors = tuple(_spec_errors(spec, versions))
        _spec_memo[key] = errors
        if len(_spec_memo) > SPEC_MEMO_SIZE:
            _spec_memo.popitem(last=False)
    else:
        _spec_memo.move_to_end(key)
    return list(errors)


def _spec_errors(spec: dict[str, Any], versions: list[dict[str, Any]]) -> list[FieldError]:
    layout = Layout.of(versions)
    errors = _group_errors(spec.get("group"))
    errors += _enum_errors("spec.scope", text(spec.get("scope")), ["Cluster", "Namespaced"])
    errors += _missing_schema_errors(versions, layout)
    if spec.get("preserveUnknownFields") is True and any(_has_defaults(v.get("schema")) for v in versions):
        detail = "must be false in order to use defaults in the schema"
        errors.append(field_invalid("spec.preserveUnknownFields", True, detail))
    for i, version in enumerate(versions):
        errors += _version_errors(version, f"spec.versions[{i}]", layout)
    errors += _version_set_errors(versions)
    errors += _required_names_errors(mapping(spec.get("names")))
    errors += names_errors(mapping(spec.get("names")), "spec.names")
    if layout.schema:
        any_status = any(_status_enabled(v) for v in versions)
        errors += _validation_errors(versions[0].get("schema"), any_status, "spec.validation")
    if layout.subresources:
        errors += subresource_errors(versions[0].get("subresources"), "spec.subresources")
    if layout.columns:
        errors += _column_list_errors(versions[0].get("additionalPrinterColumns"), "spec.additionalPrinterColumns")
    errors += conversion_errors(spec.get("conversion"), spec.get("preserveUnknownFields") is True)
    return errors


def _group_errors(group: Any) -> list[FieldError]:
    group = text(group)
    if not group:
        return [field_required("spec.group")]
    problems = dns1123_subdomain_problems(group)
    if problems:
        return [field_invalid("spec.group", group, ",".join(problems))]
    if "." not in group:
        return [field_invalid("spec.group", group, "should be a domain with at least one dot")]
    return []


def _enum_errors(path: str, value: str, accepted: list[str]) -> list[FieldError]:
    if not value:
        return [field_required(path)]
    return [] if value in accepted else [field_not_supported(path, value, accepted)]


def _missing_schema_errors(versions: list[dict[str, Any]], layout: Layout) -> list[FieldError]:
    """Every version needs a schema (v1 requires one: without it everything would be pruned)."""
    if layout.schema and _openapi_schema(versions[0].get("schema")) is not None:
        return []
    return [
        field_required(f"spec.versions[{i}].schema.openAPIV3Schema")
        for i, version in enumerate(versions)
        if _openapi_schema(version.get("schema")) is None
    ]


def _openapi_schema(validation: Any) -> Node | None:
    schema = mapping(validation).get("openAPIV3Schema")
    return schema if isinstance(schema, dict) else None


def _version_errors(version: dict[str, Any], path: str, layout: Layout) -> list[FieldError]:
    name = text(version.get("name"))
    problems = dns1035_label_problems(name)
    errors = [field_invalid(f"{path}.name", name, ",".join(problems))] if problems else []
    errors += [
        field_invalid(f"{path}.deprecationWarning", version.get("deprecationWarning"), problem)
        for problem in _deprecation_warning_problems(version)
    ]
    if not layout.schema:
        errors += _validation_errors(version.get("schema"), _status_enabled(version), f"{path}.schema")
    if not layout.subresources:
        errors += subresource_errors(version.get("subresources"), f"{path}.subresources")
    if not layout.columns:
        errors += _column_list_errors(version.get("additionalPrinterColumns"), f"{path}.additionalPrinterColumns")
    return errors


def _status_enabled(version: dict[str, Any]) -> bool:
    return mapping(version.get("subresources")).get("status") is not None


def _deprecation_warning_problems(version: dict[str, Any]) -> list[str]:
    warning = version.get("deprecationWarning")
    if not version.get("deprecated") and warning is not None:
        return ["can only be set for deprecated versions"]
    if not isinstance(warning, str):
        return []
    problems = []
    if len(warning) > 256:
        problems.append("must be <= 256 characters long")
    if not warning:
        problems.append("must not be an empty string")
    unprintable = next((i for i, char in enumerate(warning) if not char.isprintable()), None)
    if unprintable is not None:
        offset = len(warning[:unprintable].encode())  # Go reports a byte offset
        problems.append(
            f"must only contain printable UTF-8 characters; non-printable character found at index {offset}"
        )
    return problems


def _version_set_errors(versions: list[dict[str, Any]]) -> list[FieldError]:
    names = [text(v.get("name")) for v in versions]
    errors = []
    if len(set(names)) != len(names):
        errors.append(field_invalid("spec.versions", versions, "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage") is True) != 1:
        detail = "must have exactly one version marked as storage version"
        errors.append(field_invalid("spec.versions", versions, detail))
    # the internal `spec.version` is versions[0].name, validated once more under that path
    problems = dns1035_label_problems(names[0]) if names and names[0] else []
    if problems:
        errors.append(field_invalid("spec.version", names[0], ",".join(problems)))
    return errors


def _required_names_errors(names: dict[str, Any]) -> list[FieldError]:
    keys = ("plural", "singular", "kind", "listKind")
    return [field_required(f"spec.names.{key}") for key in keys if not text(names.get(key))]


def names_errors(names: dict[str, Any], path: str) -> list[FieldError]:
    """Plural, singular, short names and categories are DNS-1035 labels; kinds may have capitals."""
    errors = []
    for key in ("plural", "singular"):
        value = text(names.get(key))
        problems = dns1035_label_problems(value) if value else []
        if problems:
            errors.append(field_invalid(f"{path}.{key}", value, ",".join(problems)))
    for key in ("kind", "listKind"):
        value = text(names.get(key))
        problems = dns1035_label_problems(value.lower()) if value else []
        if problems:
            detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
            errors.append(field_invalid(f"{path}.{key}", value, detail))
    errors += _label_list_errors(names.get("shortNames"), f"{path}.shortNames")
    kind = text(names.get("kind"))
    if kind and kind == names.get("listKind"):
        errors.append(field_invalid(f"{path}.listKind", kind, "kind and listKind may not be the same"))
    errors += _label_list_errors(names.get("categories"), f"{path}.categories")
    return errors


def _label_list_errors(values: Any, path: str) -> list[FieldError]:
    errors = []
    for i, value in enumerate(sequence(values)):
        problems = dns1035_label_problems(text(value))
        if problems:
            errors.append(field_invalid(f"{path}[{i}]", value, ",".join(problems)))
    return errors


def _immutable_errors(spec: dict[str, Any], old_spec: dict[str, Any], established: bool) -> list[FieldError]:
    """group and plural name the resource; scope and kind shape storage once Established."""
    names, old_names = mapping(spec.get("names")), mapping(old_spec.get("names"))
    pairs = []
    if established:
        pairs += [("spec.scope", spec.get("scope"), old_spec.get("scope")),
                  ("spec.names.kind", names.get("kind"), old_names.get("kind"))]
    pairs += [("spec.group", spec.get("group"), old_spec.get("group")),
              ("spec.names.plural", names.get("plural"), old_names.get("plural"))]
    return [field_invalid(path, new, "field is immutable") for path, new, old in pairs if new != old]


def _is_established(crd: dict[str, Any]) -> bool:
    conditions = sequence(mapping(crd.get("status")).get("conditions"))
    return any(mapping(c).get("type") == "Established" and mapping(c).get("status") == "True" for c in conditions)


def _stored_version_errors(versions: list[dict[str, Any]], old: dict[str, Any] | None) -> list[FieldError]:
    """Versions ever used for storage (the old status, plus today's storage version) must stay listed.

    The status a client sends is ignored: upstream resets it on create and keeps the old one on update.
    """
    old_status = mapping(old.get("status")) if old is not None else {}
    stored = [v for v in sequence(old_status.get("storedVersions")) if isinstance(v, str)]
    storage = next((text(v.get("name")) for v in versions if v.get("storage") is True), None)
    if storage is not None and storage not in stored:
        stored.append(storage)
    if not stored:
        return [field_invalid("status.storedVersions", stored, "must have at least one stored version")]
    served_names = {text(v.get("name")) for v in versions}
    return [
        field_invalid(
            f"status.storedVersions[{i}]",
            name,
            f"missing from spec.versions; {name} was previously a storage version, and must remain in "
            f"spec.versions until a storage migration ensures no data remains persisted in {name} and "
            f"removes {name} from status.storedVersions",
        )
        for i, name in enumerate(stored)
        if name not in served_names
    ]


def _api_approval_errors(crd: dict[str, Any], spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """Groups under k8s.io and kubernetes.io need the api-approved.kubernetes.io annotation."""
    group = text(spec.get("group"))
    if not any(group == d or group.endswith("." + d) for d in ("k8s.io", "kubernetes.io")):
        return []
    state, reason = _approval_state(crd)
    if old is not None and _approval_state(old)[0] == state:
        return []
    path = f"metadata.annotations[{API_APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [field_required(path, reason)]
    if state == "invalid":
        value = mapping(mapping(crd.get("metadata")).get("annotations")).get(API_APPROVAL_ANNOTATION)
        return [field_invalid(path, value, reason)]
    return []


def _approval_state(crd: dict[str, Any]) -> tuple[str, str]:
    annotations = mapping(mapping(crd.get("metadata")).get("annotations"))
    if API_APPROVAL_ANNOTATION not in annotations:
        return "missing", (f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}", '
                           f"see {API_APPROVAL_PR}")
    value = text(annotations[API_APPROVAL_ANNOTATION])
    if value.startswith("unapproved"):
        return "bypassed", ""
    scheme, sep, rest = value.partition("://")
    if sep and scheme.isalpha() and rest.split("/")[0]:
        return "approved", ""
    return "invalid", (f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}" with either '
                       f'a URL or a reason starting with "unapproved", see {API_APPROVAL_PR}')


def _preserve_unknown_fields_errors(spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    if old is not None and mapping(old.get("spec")).get("preserveUnknownFields") is True:
        return []
    if spec.get("preserveUnknownFields") is True:
        return [field_invalid("spec.preserveUnknownFields", True,
                              "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
                              "spec.versions[*].schema instead")]
    return []


# ---------------------------------------------------------------- subresources, columns, conversion


def subresource_errors(subresources: Any, path: str) -> list[FieldError]:
    scale = mapping(subresources).get("scale")
    if not isinstance(scale, dict):
        return []
    errors = _scale_path_errors(scale.get("specReplicasPath"), f"{path}.scale.specReplicasPath", (".spec.",), ".spec")
    errors += _scale_path_errors(
        scale.get("statusReplicasPath"), f"{path}.scale.statusReplicasPath", (".status.",), ".status"
    )
    selector = text(scale.get("labelSelectorPath"))
    if selector:
        errors += _scale_path_errors(
            selector, f"{path}.scale.labelSelectorPath", (".spec.", ".status."), "either .spec or .status"
        )
    return errors


def _scale_path_errors(value: Any, path: str, prefixes: tuple[str, ...], under: str) -> list[FieldError]:
    value = text(value)
    if not value:
        return [field_required(path)]
    problems = simple_json_path_errors(value, path)
    if problems:
        return problems
    if not value.startswith(prefixes):
        return [field_invalid(path, value, f"should be a json path under {under}")]
    return []


def simple_json_path_errors(value: str, path: str) -> list[FieldError]:
    if not value:
        return [field_invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [field_invalid(path, value, "must be a simple json path starting with .")]
    return []


def _column_list_errors(columns: Any, path: str) -> list[FieldError]:
    errors = []
    for i, column in enumerate(sequence(columns)):
        errors += column_errors(mapping(column), f"{path}[{i}]")
    return errors


def column_errors(column: dict[str, Any], path: str) -> list[FieldError]:
    errors = [] if text(column.get("name")) else [field_required(f"{path}.name")]
    column_type, types = text(column.get("type")), ",".join(PRINTER_COLUMN_TYPES)
    if not column_type:
        errors.append(field_required(f"{path}.type", f"must be one of {types}"))
    elif column_type not in PRINTER_COLUMN_TYPES:
        errors.append(field_invalid(f"{path}.type", column_type, f"must be one of {types}"))
    column_format = text(column.get("format"))
    if column_format and column_format not in PRINTER_COLUMN_FORMATS:
        formats = ",".join(PRINTER_COLUMN_FORMATS)
        errors.append(field_invalid(f"{path}.format", column_format, f"must be one of {formats}"))
    json_path = text(column.get("jsonPath"))
    if not json_path:
        errors.append(field_required(f"{path}.JSONPath"))
    else:
        errors += simple_json_path_errors(json_path, f"{path}.JSONPath")
    return errors


def conversion_errors(conversion: Any, preserve_unknown_fields: bool) -> list[FieldError]:
    """Paths use the internal type's names: `webhookClientConfig`, `conversionReviewVersions`."""
    if not isinstance(conversion, dict):
        return []
    strategy = text(conversion.get("strategy"))
    errors = []
    if strategy and strategy != "None" and preserve_unknown_fields:
        detail = "must be None if spec.preserveUnknownFields is true"
        errors.append(field_invalid("spec.conversion.strategy", strategy, detail))
    errors += _enum_errors("spec.conversion.strategy", strategy, ["None", "Webhook"])
    webhook = mapping(conversion.get("webhook"))
    client_config, review_versions = webhook.get("clientConfig"), webhook.get("conversionReviewVersions")
    config_path = "spec.conversion.webhookClientConfig"
    if strategy == "Webhook":
        if not isinstance(client_config, dict):
            errors.append(field_required(config_path, "required when strategy is set to Webhook"))
        elif ("url" in client_config) == ("service" in client_config):
            errors.append(field_required(config_path, "exactly one of url or service is required"))
        errors += _review_version_errors(sequence(review_versions), "spec.conversion.conversionReviewVersions")
    else:
        not_webhook = "should not be set when strategy is not set to Webhook"
        if client_config is not None:
            errors.append(field_forbidden(config_path, not_webhook))
        if sequence(review_versions):
            errors.append(field_forbidden("spec.conversion.conversionReviewVersions", not_webhook))
    return errors


def _review_version_errors(versions: list[Any], path: str) -> list[FieldError]:
    if not versions:
        return [field_required(path)]
    errors, seen = [], set()
    for i, version in enumerate(versions):
        name = text(version)
        if name in seen:
            errors.append(field_invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(name)
        errors += [field_invalid(f"{path}[{i}]", version, problem) for problem in dns1035_label_problems(name)]
    if not seen.intersection(CONVERSION_REVIEW_VERSIONS):
        detail = "must include at least one of " + ", ".join(CONVERSION_REVIEW_VERSIONS)
        errors.append(field_invalid(path, versions, detail))
    return errors


# ---------------------------------------------------------------- the schema of a version


def _validation_errors(validation: Any, status_enabled: bool, path: str) -> list[FieldError]:
    """One CustomResourceValidation: root rules, structural rules, defaults, then OpenAPI rules."""
    schema = _openapi_schema(validation)
    if schema is None:
        return []
    path = f"{path}.openAPIV3Schema"
    errors = _status_root_errors(schema, path) if status_enabled else []
    if schema.get("nullable") is True:
        errors.append(field_forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    if not _has_unsupported_keywords(schema):
        structural = structural_errors(schema, path)
        errors += structural or default_errors(schema, path)
    errors += openapi_schema_errors(schema, path, SchemaContext(), is_root=True)
    return errors


def _status_root_errors(schema: Node, path: str) -> list[FieldError]:
    """With a status subresource, status is validated as properties[status]: the root may hold little.

    Like upstream, fields are visited in JSONSchemaProps order and only the first offender is reported.
    """
    for key in JSON_SCHEMA_PROPS_ORDER:
        value = schema.get(key)
        if not (value is not None if key in POINTER_FIELDS else is_set(value)):
            continue
        if key == "type":
            if value != "object":
                detail = ('only "object" is allowed as the type at the root of the schema '
                          "if the status subresource is enabled")
                return [field_invalid(f"{path}.type", value, detail)]
            continue
        if key not in ROOT_FIELDS_WITH_STATUS:
            allowed = " ".join(ROOT_FIELDS_WITH_STATUS.values())
            detail = (f"only [{allowed}] fields are allowed at the root of the schema "
                      "if the status subresource is enabled")
            return [field_invalid(path, schema, detail)]
    return []


def _has_unsupported_keywords(node: Any) -> bool:
    return any(
        any(key in sub for key in UNSUPPORTED_KEYWORDS) or isinstance(sub.get("items"), list)
        for sub in walk_schema(node)
    )


def walk_schema(node: Any) -> list[Node]:
    """Every schema node under `node` (itself included), through all keywords that hold schemas."""
    if not isinstance(node, dict):
        return []
    found = [node]
    children: list[Any] = [node.get("not"), node.get("additionalProperties"), node.get("additionalItems")]
    for key in ("properties", "definitions", "patternProperties", "dependencies"):
        children += list(mapping(node.get(key)).values())
    for key in ("allOf", "anyOf", "oneOf"):
        children += sequence(node.get(key))
    items = node.get("items")
    children += items if isinstance(items, list) else [items]
    for child in children:
        found += walk_schema(child)
    return found


def _has_defaults(validation: Any) -> bool:
    return any(node.get("default") is not None for node in walk_schema(_openapi_schema(validation)))


# -- structural schema rules (apiextensions schema.ValidateStructural)

ROOT, ITEM, FIELD = "root", "item", "field"
EMPTY_TYPE_DETAIL = {
    ROOT: "must not be empty at the root",
    ITEM: "must not be empty for specified array items",
    FIELD: "must not be empty for specified object fields",
}
INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def structural_errors(schema: Node, path: str) -> list[FieldError]:
    """Upstream sorts these by their text, so the order does not depend on map iteration."""
    errors = _invariant_errors(schema, ROOT, path) + _value_completeness_errors(schema, schema, path, path)
    return sorted(errors, key=lambda e: e.render())


def _invariant_errors(node: Any, level: str, path: str) -> list[FieldError]:
    if not isinstance(node, dict):
        return []
    errors = []
    items = node.get("items")
    if node.get("type") == "array" and items is None:
        errors.append(field_required(f"{path}.items", "must be specified"))
    errors += _invariant_errors(items, ITEM, f"{path}.items")
    for key, child in properties_of(node).items():
        errors += _invariant_errors(child, FIELD, f"{path}.properties[{key}]")
    additional = node.get("additionalProperties")
    if additional is not None:
        if level == ROOT:
            errors.append(field_forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        errors += _invariant_errors(additional, FIELD, f"{path}.additionalProperties")
    errors += _extension_conflict_errors(node, path)
    skip_any_of, skip_first_all_of_any_of = _is_int_or_string_any_of(node), _is_int_or_string_all_of(node)
    errors += _value_validation_errors(node, skip_any_of, skip_first_all_of_any_of, level, path)
    errors += _type_invariant_errors(node, level, path)
    errors += _type_meta_invariant_errors(node, level, path)
    if node.get("x-kubernetes-embedded-resource") and not node.get("x-kubernetes-preserve-unknown-fields") \
            and not properties_of(node):
        errors.append(field_required(
            f"{path}.properties",
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ))
    return errors


def _extension_conflict_errors(node: Node, path: str) -> list[FieldError]:
    if not node.get("x-kubernetes-int-or-string"):
        return []
    detail = "must be false if x-kubernetes-int-or-string is true"
    return [
        field_invalid(f"{path}.{key}", True, detail)
        for key in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource")
        if node.get(key) is True
    ]


def _type_invariant_errors(node: Node, level: str, path: str) -> list[FieldError]:
    node_type, embedded = text(node.get("type")), bool(node.get("x-kubernetes-embedded-resource"))
    untyped_allowed = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    errors = []
    if embedded and node_type != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        type_path = f"{path}.type"
        errors.append(field_invalid(type_path, node_type, detail) if node_type else field_required(type_path, detail))
    elif not node_type and not untyped_allowed:
        errors.append(field_required(f"{path}.type", EMPTY_TYPE_DETAIL[level]))
    if embedded and node.get("additionalProperties") is not None:
        detail = "must not be used if x-kubernetes-embedded-resource is set"
        errors.append(field_forbidden(f"{path}.additionalProperties", detail))
    if level == ROOT and node_type and node_type != "object":
        errors.append(field_invalid(f"{path}.type", node_type, "must be object at the root"))
    return errors


def _type_meta_invariant_errors(node: Node, level: str, path: str) -> list[FieldError]:
    """At a resource (root or embedded), kind and apiVersion are strings and metadata an object
    that may only restrict name and generateName (and only at the root)."""
    props = properties_of(node)
    check = level == ROOT or bool(node.get("x-kubernetes-embedded-resource"))
    errors = []
    for key in ("kind", "apiVersion"):
        child = props.get(key)
        if check and isinstance(child, dict) and child.get("type") != "string":
            errors.append(field_invalid(f"{path}.properties[{key}].type", text(child.get("type")), "must be string"))
    meta = props.get("metadata")
    if isinstance(meta, dict):
        meta_path = f"{path}.properties[metadata]"
        if check and meta.get("type") != "object":
            errors.append(field_invalid(f"{meta_path}.type", text(meta.get("type")), "must be object"))
        if level == ROOT and _restricts_more_than_names(meta):
            detail = "must not specify anything other than name and generateName, but metadata is implicitly specified"
            errors.append(field_forbidden(meta_path, detail))
    return errors


def _restricts_more_than_names(meta: Node) -> bool:
    rest = {key: value for key, value in meta.items() if key in STRUCTURAL_KEYS and is_set(value)}
    if set(mapping(rest.get("properties"))) <= {"name", "generateName"}:
        rest.pop("properties", None)
    return bool(rest)


def _is_int_or_string_any_of(node: Node) -> bool:
    return node.get("anyOf") == INT_OR_STRING_ANY_OF


def _is_int_or_string_all_of(node: Node) -> bool:
    all_of = sequence(node.get("allOf"))
    return bool(all_of) and mapping(all_of[0]).get("anyOf") == INT_OR_STRING_ANY_OF


def _value_validation_errors(node: Node, skip_any_of: bool, skip_first_all_of_any_of: bool, level: str,
                             path: str) -> list[FieldError]:
    """allOf/anyOf/oneOf/not may only add value checks; patterns must compile."""
    errors = []
    if not skip_any_of:
        for i, sub in enumerate(sequence(node.get("anyOf"))):
            errors += _nested_errors(sub, False, level, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(sequence(node.get("allOf"))):
        errors += _nested_errors(sub, skip_first_all_of_any_of and i == 0, level, f"{path}.allOf[{i}]")
    for i, sub in enumerate(sequence(node.get("oneOf"))):
        errors += _nested_errors(sub, False, level, f"{path}.oneOf[{i}]")
    errors += _nested_errors(node.get("not"), False, level, f"{path}.not")
    pattern = node.get("pattern")
    problem = go_regex_problem(pattern) if isinstance(pattern, str) and pattern else None
    if problem:
        detail = f"must be a valid regular expression, but isn't: {problem}"
        errors.append(field_invalid(f"{path}.pattern", pattern, detail))
    return errors


NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
# keys whose mere presence counts (Go pointers), rather than a non-zero value
NESTED_PRESENCE_KEYS = frozenset({"additionalProperties", "default", "externalDocs", "x-kubernetes-list-type",
                                  "x-kubernetes-map-type"})


def _nested_errors(node: Any, skip_any_of: bool, level: str, path: str) -> list[FieldError]:
    if not isinstance(node, dict):
        return []
    errors = _value_validation_errors(node, skip_any_of, False, level, path)
    errors += _nested_errors(node.get("items"), False, level, f"{path}.items")
    for key, child in properties_of(node).items():
        errors += _nested_errors(child, False, FIELD, f"{path}.properties[{key}]")
    for key, detail in NESTED_FORBIDDEN:
        present = node.get(key) is not None if key in NESTED_PRESENCE_KEYS else is_set(node.get(key))
        if present:
            errors.append(field_forbidden(f"{path}.{key}", detail))
    if "metadata" in properties_of(node):
        errors.append(field_forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return errors


def _value_completeness_errors(node: Node, structural: Node | None, s_path: str, v_path: str) -> list[FieldError]:
    """Fields named in allOf/anyOf/oneOf/not must also be declared outside them (checked from the root)."""
    errors = _nested_completeness_errors(node.get("not"), structural, s_path, f"{v_path}.not")
    for keyword in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(sequence(node.get(keyword))):
            errors += _nested_completeness_errors(sub, structural, s_path, f"{v_path}.{keyword}[{i}]")
    return errors


def _nested_completeness_errors(node: Any, structural: Node | None, s_path: str, v_path: str) -> list[FieldError]:
    if not isinstance(node, dict):
        return []
    if structural is None:
        return [field_required(s_path, f"because it is defined in {v_path}")]
    errors = _value_completeness_errors(node, structural, s_path, v_path)
    items = structural.get("items")
    errors += _nested_completeness_errors(node.get("items"), items if isinstance(items, dict) else None,
                                          f"{s_path}.items", f"{v_path}.items")
    declared = properties_of(structural)
    for key, child in properties_of(node).items():
        s_child, v_child = f"{s_path}.properties[{key}]", f"{v_path}.properties[{key}]"
        if key in declared:
            errors += _nested_completeness_errors(child, mapping(declared[key]), s_child, v_child)
        else:
            errors.append(field_required(s_child, f"because it is defined in {v_child}"))
    return errors


# -- defaults must validate and be pruned (apiextensions defaulting.ValidateDefaults)


def default_errors(schema: Node, path: str) -> list[FieldError]:
    return _defaults_under(schema, path, resource=True, inside_meta=False)


def _defaults_under(node: Any, path: str, *, resource: bool, inside_meta: bool) -> list[FieldError]:
    """Additional properties are not followed: defaults are not allowed there."""
    if not isinstance(node, dict):
        return []
    resource = resource or bool(node.get("x-kubernetes-embedded-resource"))
    inside_meta = inside_meta and not resource
    errors = _default_value_errors(node, path, resource, inside_meta) if node.get("default") is not None else []
    errors += _defaults_under(node.get("items"), f"{path}.items", resource=False, inside_meta=inside_meta)
    for key, child in properties_of(node).items():
        child_meta = inside_meta or (resource and key in TYPE_META_KEYS)
        errors += _defaults_under(child, f"{path}.properties[{key}]", resource=False, inside_meta=child_meta)
    return errors


def _default_value_errors(node: Node, path: str, resource: bool, inside_meta: bool) -> list[FieldError]:
    default = node["default"]
    errors = []
    if not inside_meta:
        pruned = copy.deepcopy(default)
        Pruner(coerce_object_meta=False).prune(pruned, node, resource_root=resource)
        if pruned != default:
            errors.append(field_invalid(f"{path}.default", default, "must not have unknown fields"))
    return errors + OpenAPIValidator(root=f"{path}.default").validate(default, node, "")


# -- OpenAPI keyword rules (apiextensions ValidateCustomResourceDefinitionOpenAPISchema)


@dataclass(frozen=True)
class SchemaContext:
    allow_defaults: bool = True
    disallow_defaults_reason: str = ""
    inside_resource_meta: bool = False

    def without_defaults(self, reason: str) -> SchemaContext:
        return replace(self, allow_defaults=False, disallow_defaults_reason=reason)

    def in_resource_meta(self) -> SchemaContext:
        return replace(self, inside_resource_meta=True)


def openapi_schema_errors(node: Any, path: str, ctx: SchemaContext, *, is_root: bool = False) -> list[FieldError]:
    if not isinstance(node, dict):
        return []
    errors = _keyword_errors(node, path, ctx)
    if node.get("uniqueItems") is True:
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        errors.append(field_forbidden(f"{path}.uniqueItems", detail))
    errors += _child_schema_errors(node, path, ctx, is_root)
    errors += _list_and_map_type_errors(node, path)
    errors += _list_map_key_errors(node, path)
    return errors


def _keyword_errors(node: Node, path: str, ctx: SchemaContext) -> list[FieldError]:
    """Keywords CRDs refuse outright (upstream's specStandardValidatorV3)."""
    errors = []
    node_type = node.get("type")
    if isinstance(node_type, str) and node_type and node_type not in OPENAPI_TYPES:
        errors.append(field_not_supported(f"{path}.type", node_type, list(OPENAPI_TYPES)))
    if node.get("default") is not None and not ctx.allow_defaults:
        reason = f" {ctx.disallow_defaults_reason}" if ctx.disallow_defaults_reason else ""
        errors.append(field_forbidden(f"{path}.default", f"must not be set{reason}"))
    unsupported = (
        ("id", is_set(node.get("id"))),
        ("additionalItems", node.get("additionalItems") is not None),
        ("patternProperties", is_set(node.get("patternProperties"))),
        ("definitions", is_set(node.get("definitions"))),
        ("dependencies", node.get("dependencies") is not None),
        ("$ref", node.get("$ref") is not None),
    )
    errors += [field_forbidden(f"{path}.{key}", f"{key} is not supported") for key, present in unsupported if present]
    if node_type == "null":
        errors.append(field_forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if isinstance(node.get("items"), list) and node["items"]:
        errors.append(field_forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_resource_meta and node.get("x-kubernetes-embedded-resource"):
        detail = "must not be used inside of resource meta"
        errors.append(field_forbidden(f"{path}.x-kubernetes-embedded-resource", detail))
    return errors


def _child_schema_errors(node: Node, path: str, ctx: SchemaContext, is_root: bool) -> list[FieldError]:
    errors = []
    props = properties_of(node)
    additional = node.get("additionalProperties")
    if additional is not None:
        if props and (additional is False or isinstance(additional, dict)):
            detail = "additionalProperties and properties are mutual exclusive"
            errors.append(field_forbidden(f"{path}.additionalProperties", detail))
        sub_ctx = ctx.without_defaults("inside additionalProperties applying to object metadata") \
            if ctx.inside_resource_meta else ctx
        errors += openapi_schema_errors(additional, f"{path}.additionalProperties", sub_ctx)
    for key, child in props.items():
        sub_ctx = ctx
        if (is_root or node.get("x-kubernetes-embedded-resource")) and key in TYPE_META_KEYS:
            sub_ctx = sub_ctx.in_resource_meta()
            if is_root:
                sub_ctx = sub_ctx.without_defaults(f"in top-level {key}")
        errors += openapi_schema_errors(child, f"{path}.properties[{key}]", sub_ctx)
    errors += openapi_schema_errors(node.get("not"), f"{path}.not", ctx)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(sequence(node.get(keyword))):
            errors += openapi_schema_errors(sub, f"{path}.{keyword}[{i}]", ctx)
    for key, sub in mapping(node.get("definitions")).items():
        errors += openapi_schema_errors(sub, f"{path}.definitions[{key}]", ctx)
    items = node.get("items")
    if isinstance(items, dict):
        errors += openapi_schema_errors(items, f"{path}.items", ctx)
    for i, sub in enumerate(sequence(items)):
        errors += openapi_schema_errors(sub, f"{path}.items[{i}]", ctx)
    for key, sub in mapping(node.get("dependencies")).items():
        errors += openapi_schema_errors(sub, f"{path}.dependencies[{key}]", ctx)
    return errors


def _list_and_map_type_errors(node: Node, path: str) -> list[FieldError]:
    errors = []
    node_type = text(node.get("type"))
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(field_invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    map_type = node.get("x-kubernetes-map-type")
    if map_type is not None:
        errors += _required_type_errors(node_type, "object", "x-kubernetes-map-type", path)
        if map_type not in ("atomic", "granular"):
            errors.append(field_not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"]))
    list_type = node.get("x-kubernetes-list-type")
    if list_type is not None and node_type != "array":
        errors += _required_type_errors(node_type, "array", "x-kubernetes-list-type", path)
    elif list_type == "set":
        errors += _set_item_errors(node.get("items"), path)
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errors.append(field_not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]))
    return errors


def _required_type_errors(node_type: str, wanted: str, extension: str, path: str) -> list[FieldError]:
    if node_type == wanted:
        return []
    detail = f"must be {wanted} if {extension} is specified"
    return [field_invalid(f"{path}.type", node_type, detail) if node_type else field_required(f"{path}.type", detail)]


def _set_item_errors(items: Any, path: str) -> list[FieldError]:
    """Items of a set must be atomic: nested lists atomic, objects x-kubernetes-map-type atomic."""
    if not isinstance(items, dict):
        return []
    detail = "must be atomic as item of a list with x-kubernetes-list-type=set"
    list_type = items.get("x-kubernetes-list-type")
    if items.get("type") == "array" and list_type is not None and list_type != "atomic":
        return [field_invalid(f"{path}.items.x-kubernetes-list-type", list_type, detail)]
    if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
        return [field_invalid(f"{path}.items.x-kubernetes-map-type", list_type, detail)]
    return []


def _list_map_key_errors(node: Node, path: str) -> list[FieldError]:
    keys = sequence(node.get("x-kubernetes-list-map-keys"))
    list_type = node.get("x-kubernetes-list-type")
    errors = []
    detail, type_path = "must be map if x-kubernetes-list-map-keys is non-empty", f"{path}.x-kubernetes-list-type"
    if keys and list_type is None:
        errors.append(field_required(type_path, detail))
    elif keys and list_type != "map":
        errors.append(field_invalid(type_path, list_type, detail))
    if list_type == "map":
        errors += _list_map_schema_errors(node, keys, path)
    return errors + _set_and_map_item_errors(node, keys, path)


def _list_map_schema_errors(node: Node, keys: list[Any], path: str) -> list[FieldError]:
    errors = []
    items = node.get("items")
    if not keys:
        detail = "must not be empty if x-kubernetes-list-type is map"
        errors.append(field_required(f"{path}.x-kubernetes-list-map-keys", detail))
    if items is None:
        errors.append(field_required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
    elif not isinstance(items, dict):
        detail = "must only have a single schema if x-kubernetes-list-type is map"
        errors.append(field_invalid(f"{path}.items", items, detail))
    elif items.get("type") != "object":
        errors.append(field_invalid(f"{path}.items.type", text(items.get("type")),
                                    "must be object if parent array's x-kubernetes-list-type is map"))
    else:
        errors += _map_key_property_errors(items, keys, path)
    return errors


def _map_key_property_errors(items: Node, keys: list[Any], path: str) -> list[FieldError]:
    errors, seen = [], set()
    props, keys_path = properties_of(items), f"{path}.x-kubernetes-list-map-keys"
    for key in keys:
        prop = props.get(key) if isinstance(key, str) else None
        if isinstance(prop, dict):
            if prop.get("type") in ("array", "object"):
                errors.append(field_invalid(f"{path}.items.properties[{key}].type", "object",
                                            "must be a scalar type if parent array's x-kubernetes-list-type is map"))
        else:
            errors.append(field_invalid(keys_path, keys, "entries must all be names of item properties"))
        if key in seen:
            errors.append(field_invalid(keys_path, keys, "must not contain duplicate entries"))
        seen.add(text(key))
    return errors


def _set_and_map_item_errors(node: Node, keys: list[Any], path: str) -> list[FieldError]:
    """Set and map items may not be nullable; map keys must be required or defaulted, never nullable."""
    items, list_type = node.get("items"), node.get("x-kubernetes-list-type")
    if not isinstance(items, dict) or list_type not in ("set", "map"):
        return []
    errors = []
    if items.get("nullable") is True:
        detail = f"cannot be nullable when x-kubernetes-list-type is {list_type}"
        errors.append(field_forbidden(f"{path}.items.nullable", detail))
    if list_type != "map":
        return errors
    required = {k for k in sequence(items.get("required")) if isinstance(k, str)}
    props = properties_of(items)
    for key in keys:
        prop = props.get(key) if isinstance(key, str) else None
        if not isinstance(prop, dict):
            continue
        key_path = f"{path}.items.properties[{key}]"
        if key not in required and prop.get("default") is None:
            errors.append(field_required(f"{key_path}.default", "this property is in x-kubernetes-list-map-keys, "
                                                                 "so it must have a default or be a required property"))
        if prop.get("nullable") is True:
            errors.append(field_forbidden(f"{key_path}.nullable", "this property is in x-kubernetes-list-map-keys, "
                                                                  "so it cannot be nullable"))
    return errors
