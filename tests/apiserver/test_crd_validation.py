"""CustomResourceDefinition defaulting and validation, with kube-apiserver's field paths and messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.schema import crd_validation
from clusterset.apiserver.schema.crd_validation import default_crd, validate_crd

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "size": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                },
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def widget_crd(**spec: Any) -> dict[str, Any]:
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": copy.deepcopy(WIDGET_SCHEMA)},
        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                 "statusReplicasPath": ".status.replicas"}},
        "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}],
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                      "shortNames": ["wd"], "categories": ["all"]},
            "versions": [version],
            **spec,
        },
    }
    default_crd(crd)
    return crd


def two_version_crd() -> dict[str, Any]:
    """v1beta1 (served, not stored) and v1 (stored), with different schemas so nothing is hoisted."""
    crd = widget_crd()
    beta = copy.deepcopy(crd["spec"]["versions"][0])
    beta.update(name="v1beta1", storage=False)
    beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["legacy"] = {"type": "string"}
    crd["spec"]["versions"].insert(0, beta)
    return crd


def schema_of(crd: dict[str, Any], version: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][version]["schema"]["openAPIV3Schema"]
    return schema


def spec_props(crd: dict[str, Any], version: int = 0) -> dict[str, Any]:
    props: dict[str, Any] = schema_of(crd, version)["properties"]["spec"]["properties"]
    return props


def rendered(errors: list[FieldError]) -> list[str]:
    return [e.render() for e in errors]


def problems(crd: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return rendered(validate_crd(crd, old=old))


def established(crd: dict[str, Any]) -> dict[str, Any]:
    crd = copy.deepcopy(crd)
    crd["status"] = {"storedVersions": [v["name"] for v in crd["spec"]["versions"] if v["storage"]],
                     "conditions": [{"type": "Established", "status": "True"}]}
    return crd


# ---------------------------------------------------------------- defaulting


def test_default_crd_fills_names_conversion_and_version_flags() -> None:
    crd: dict[str, Any] = {"spec": {"names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1"}]}}
    default_crd(crd)
    assert crd["spec"]["names"] == {"plural": "widgets", "kind": "Widget", "singular": "widget",
                                    "listKind": "WidgetList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["spec"]["versions"] == [{"name": "v1", "served": False, "storage": False}]
    assert "preserveUnknownFields" not in crd["spec"]


def test_default_crd_keeps_what_is_given() -> None:
    conversion = {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "n"}},
                                                     "conversionReviewVersions": ["v1"]}}
    crd: dict[str, Any] = {"spec": {
        "names": {"kind": "Widget", "singular": "wdg", "listKind": "Widgets"},
        "conversion": conversion,
        "versions": [{"name": "v1", "served": True, "storage": True}],
    }}
    default_crd(crd)
    assert crd["spec"]["names"]["singular"] == "wdg"
    assert crd["spec"]["names"]["listKind"] == "Widgets"
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    assert crd["spec"]["versions"][0]["served"] is True


# ---------------------------------------------------------------- a good CRD


def test_good_crd_is_valid() -> None:
    assert problems(widget_crd()) == []
    assert problems(two_version_crd()) == []


def test_good_crd_update_is_valid() -> None:
    old = established(widget_crd())
    new = copy.deepcopy(old)
    new["spec"]["names"]["shortNames"] = ["w"]
    assert problems(new, old=old) == []


def test_a_spec_validated_again_gives_the_same_answer_and_its_own() -> None:
    """The spec's checks are remembered by the spec's content (every cluster of a fleet installs the same CRDs)."""
    bad = widget_crd(scope="Galactic")
    first = problems(bad)
    assert any(p.startswith("spec.scope") for p in first)
    assert problems(copy.deepcopy(bad)) == first
    assert problems(widget_crd()) == []  # another spec, its own answer
    renamed = copy.deepcopy(bad)
    renamed["metadata"]["name"] = "gadgets.example.com"  # same spec, another name: the name's check still runs
    assert problems(renamed) == ['metadata.name: Invalid value: "gadgets.example.com": must be '
                                 'spec.names.plural+"."+spec.group', *first]
    for i in range(crd_validation.SPEC_MEMO_SIZE + 5):  # remembered specs are bounded
        problems(widget_crd(group=f"g{i}.example.com"))
    assert len(crd_validation._spec_memo) == crd_validation.SPEC_MEMO_SIZE
    assert problems(bad) == first


# ---------------------------------------------------------------- names, group, scope


def test_name_must_be_plural_dot_group() -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "gadgets.example.com"
    errors = validate_crd(crd)
    assert rendered(errors) == [
        'metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group'
    ]
    assert errors[0].reason == "FieldValueInvalid"


def test_group_rules() -> None:
    assert "spec.group: Required value" in problems(widget_crd(group=""))
    crd = widget_crd(group="example")
    crd["metadata"]["name"] = "widgets.example"
    assert problems(crd) == ['spec.group: Invalid value: "example": should be a domain with at least one dot']
    crd = widget_crd(group="Example.com")
    crd["metadata"]["name"] = "widgets.Example.com"
    assert problems(crd)[0].startswith(
        'spec.group: Invalid value: "Example.com": a lowercase RFC 1123 subdomain must consist of'
    )


def test_scope_rules() -> None:
    assert problems(widget_crd(scope="")) == ["spec.scope: Required value"]
    assert problems(widget_crd(scope="Global")) == [
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'
    ]


def test_names_are_dns_labels_and_kinds_may_have_capitals() -> None:
    crd = widget_crd()
    crd["spec"]["names"].update(singular="Widget", shortNames=["w_d"], listKind="Widget")
    errors = problems(crd)
    assert errors[0].startswith('spec.names.singular: Invalid value: "Widget": a DNS-1035 label must consist of')
    assert errors[1].startswith('spec.names.shortNames[0]: Invalid value: "w_d": a DNS-1035 label must')
    assert errors[2] == 'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same'
    assert len(errors) == 3


def test_names_are_required() -> None:
    crd = widget_crd()
    crd["spec"]["names"] = {"plural": "widgets"}
    assert problems(crd) == ["spec.names.singular: Required value", "spec.names.kind: Required value",
                             "spec.names.listKind: Required value"]


# ---------------------------------------------------------------- versions


def test_exactly_one_storage_version() -> None:
    crd = two_version_crd()
    crd["spec"]["versions"][0]["storage"] = True
    errors = validate_crd(crd)
    assert [e.field for e in errors] == ["spec.versions"]
    assert errors[0].message.endswith(": must have exactly one version marked as storage version")
    assert errors[0].message.startswith('Invalid value: [{"additionalPrinterColumns"')


def test_no_storage_version() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["storage"] = False
    errors = validate_crd(crd)
    assert [e.field for e in errors] == ["spec.versions", "status.storedVersions"]
    assert errors[0].message.endswith(": must have exactly one version marked as storage version")
    assert errors[1].render() == "status.storedVersions: Invalid value: []: must have at least one stored version"


def test_version_names_are_unique_dns_labels() -> None:
    crd = two_version_crd()
    crd["spec"]["versions"][0]["name"] = "v1"
    assert [e.field + ": " + e.message.split(": ")[-1] for e in validate_crd(crd)] == [
        "spec.versions: must contain unique version names"
    ]
    crd = widget_crd()
    crd["spec"]["versions"][0]["name"] = "V1"
    errors = problems(crd)
    assert errors[0].startswith('spec.versions[0].name: Invalid value: "V1": a DNS-1035 label must consist of')
    assert errors[1].startswith('spec.version: Invalid value: "V1": a DNS-1035 label')


def test_every_version_needs_a_schema() -> None:
    crd = two_version_crd()
    del crd["spec"]["versions"][1]["schema"]
    assert problems(crd) == ["spec.versions[1].schema.openAPIV3Schema: Required value"]


def test_deprecation_warning_only_on_deprecated_versions() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["deprecationWarning"] = "old"
    assert problems(crd) == [
        'spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated versions'
    ]
    crd["spec"]["versions"][0]["deprecated"] = True
    assert problems(crd) == []


def test_dropping_a_stored_version_is_refused() -> None:
    old = established(two_version_crd())
    old["status"]["storedVersions"] = ["v1beta1", "v1"]
    new = copy.deepcopy(old)
    del new["spec"]["versions"][0]
    assert problems(new, old=old) == [
        'status.storedVersions[0]: Invalid value: "v1beta1": missing from spec.versions; v1beta1 was previously '
        "a storage version, and must remain in spec.versions until a storage migration ensures no data remains "
        "persisted in v1beta1 and removes v1beta1 from status.storedVersions"
    ]


def test_dropping_a_version_never_stored_is_fine() -> None:
    old = established(two_version_crd())
    new = copy.deepcopy(old)
    del new["spec"]["versions"][0]
    assert problems(new, old=old) == []


def test_the_client_status_cannot_smuggle_stored_versions() -> None:
    crd = widget_crd()
    crd["status"] = {"storedVersions": ["v0"]}
    assert problems(crd) == []


# ---------------------------------------------------------------- updates


def test_group_and_plural_are_immutable() -> None:
    old = widget_crd()
    new = widget_crd(group="other.example.com")
    new["spec"]["names"]["plural"] = "gizmos"
    new["metadata"]["name"] = "gizmos.other.example.com"
    assert problems(new, old=old) == [
        'spec.group: Invalid value: "other.example.com": field is immutable',
        'spec.names.plural: Invalid value: "gizmos": field is immutable',
    ]


def test_scope_and_kind_are_immutable_once_established() -> None:
    old = widget_crd()
    new = widget_crd(scope="Cluster")
    assert problems(new, old=old) == []
    assert problems(new, old=established(old)) == ['spec.scope: Invalid value: "Cluster": field is immutable']


def test_preserve_unknown_fields_cannot_be_true() -> None:
    assert problems(widget_crd(preserveUnknownFields=True)) == [
        "spec.preserveUnknownFields: Invalid value: true: must be false in order to use defaults in the schema",
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set "
        "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    ]


# ---------------------------------------------------------------- structural schema rules


def test_errors_of_a_single_version_are_reported_under_spec_validation() -> None:
    crd = widget_crd()
    spec_props(crd)["bad"] = {"description": "no type"}
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[bad].type: Required value: "
        "must not be empty for specified object fields"
    ]


def test_errors_of_differing_versions_are_reported_per_version() -> None:
    crd = two_version_crd()
    spec_props(crd, 1)["bad"] = {"description": "no type"}
    assert problems(crd) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[bad].type: Required value: "
        "must not be empty for specified object fields"
    ]


def test_root_must_be_an_object() -> None:
    crd = two_version_crd()
    crd["spec"]["versions"][1]["subresources"] = {}
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"] = {"type": "string"}
    assert problems(crd) == [
        'spec.versions[1].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root'
    ]


def test_root_type_is_required() -> None:
    crd = two_version_crd()
    del schema_of(crd, 1)["type"]
    assert problems(crd) == [
        "spec.versions[1].schema.openAPIV3Schema.type: Required value: must not be empty at the root"
    ]


def test_array_needs_items_and_items_need_a_type() -> None:
    crd = widget_crd()
    spec_props(crd)["list"] = {"type": "array"}
    spec_props(crd)["other"] = {"type": "array", "items": {}}
    base = "spec.validation.openAPIV3Schema.properties[spec]"
    assert problems(crd) == [
        f"{base}.properties[list].items: Required value: must be specified",
        f"{base}.properties[other].items.type: Required value: must not be empty for specified array items",
    ]


def test_metadata_may_only_restrict_name_and_generate_name() -> None:
    crd = widget_crd()
    schema_of(crd)["properties"]["metadata"] = {"type": "object", "properties": {"name": {"type": "string",
                                                                                          "maxLength": 20}}}
    assert problems(crd) == []
    schema_of(crd)["properties"]["metadata"]["properties"]["labels"] = {"type": "object"}
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than "
        "name and generateName, but metadata is implicitly specified"
    ]


def test_value_validations_may_not_declare_types() -> None:
    crd = widget_crd()
    spec_props(crd)["mode"] = {"type": "string", "anyOf": [{"type": "string", "enum": ["a"]}, {"enum": ["b"]}]}
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[mode].anyOf[0].type: Forbidden: "
        "must be empty to be structural"
    ]


def test_value_validations_may_only_name_declared_fields() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"] = {}
    schema_of(crd)["anyOf"] = [{"properties": {"spec": {"required": ["replicas"]}, "other": {}}}]
    base = "spec.validation.openAPIV3Schema"
    assert problems(crd) == [
        f"{base}.properties[other]: Required value: because it is defined in {base}.anyOf[0].properties[other]"
    ]


def test_status_subresource_refuses_value_validations_at_the_root() -> None:
    crd = widget_crd()
    schema_of(crd)["anyOf"] = [{"required": ["spec"]}]
    errors = problems(crd)
    assert len(errors) == 1
    assert errors[0].startswith('spec.validation.openAPIV3Schema: Invalid value: {"anyOf":[{"required":["spec"]}]')
    assert errors[0].endswith(
        "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength "
        "MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example "
        "XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status "
        "subresource is enabled"
    )


def test_forbidden_keywords() -> None:
    crd = widget_crd()
    spec_props(crd)["ref"] = {"$ref": "#/definitions/x"}
    spec_props(crd)["tags"] = {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
    spec_props(crd)["mixed"] = {"type": "object", "properties": {"a": {"type": "string"}},
                                "additionalProperties": {"type": "string"}}
    base = "spec.validation.openAPIV3Schema.properties[spec].properties"
    assert problems(crd) == [
        f"{base}[ref].$ref: Forbidden: $ref is not supported",
        f"{base}[tags].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity "
        "becomes quadratic",
        f"{base}[mixed].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
    ]


def test_invalid_types_and_patterns() -> None:
    crd = widget_crd()
    spec_props(crd)["odd"] = {"type": "text"}
    spec_props(crd)["look"] = {"type": "string", "pattern": "^(?=a)"}
    base = "spec.validation.openAPIV3Schema.properties[spec].properties"
    assert problems(crd) == [
        f"{base}[look].pattern: Invalid value: \"^(?=a)\": must be a valid regular expression, but isn't: "
        "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
        f'{base}[odd].type: Unsupported value: "text": supported values: "array", "boolean", "integer", '
        '"number", "object", "string"',
    ]


def test_embedded_resource_must_be_an_object_with_properties() -> None:
    crd = widget_crd()
    spec_props(crd)["template"] = {"type": "string", "x-kubernetes-embedded-resource": True}
    base = "spec.validation.openAPIV3Schema.properties[spec].properties[template]"
    assert problems(crd) == [
        f"{base}.properties: Required value: must not be empty if x-kubernetes-embedded-resource is true "
        "without x-kubernetes-preserve-unknown-fields",
        f'{base}.type: Invalid value: "string": must be object if x-kubernetes-embedded-resource is true',
    ]


def test_extension_rules() -> None:
    crd = widget_crd()
    spec_props(crd)["keep"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": False}
    spec_props(crd)["size"]["x-kubernetes-preserve-unknown-fields"] = True
    base = "spec.validation.openAPIV3Schema.properties[spec].properties"
    assert problems(crd) == [
        f"{base}[size].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if "
        "x-kubernetes-int-or-string is true",
        f"{base}[keep].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
    ]


def test_metadata_may_not_appear_in_value_validations() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"] = {}
    schema_of(crd)["allOf"] = [{"properties": {"metadata": {"required": ["name"]}}}]
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.allOf[0].properties[metadata]: Forbidden: must not be specified in a "
        "nested context"
    ]


def test_int_or_string_may_use_the_all_of_pattern() -> None:
    crd = widget_crd()
    spec_props(crd)["size"] = {"x-kubernetes-int-or-string": True, "allOf": [
        {"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+(%)?$"}]}
    assert problems(crd) == []


# ---------------------------------------------------------------- defaults in schemas


def test_defaults_must_validate() -> None:
    crd = widget_crd()
    spec_props(crd)["replicas"]["default"] = -1
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].default: Invalid value: -1: "
        " in body should be greater than or equal to 0"
    ]


def test_defaults_must_be_pruned() -> None:
    crd = widget_crd()
    spec_props(crd)["limits"] = {"type": "object", "default": {"cpu": "1", "gpu": "2"},
                                 "properties": {"cpu": {"type": "string"}}}
    assert problems(crd) == [
        'spec.validation.openAPIV3Schema.properties[spec].properties[limits].default: Invalid value: '
        '{"cpu":"1","gpu":"2"}: must not have unknown fields'
    ]


def test_no_defaults_in_top_level_metadata() -> None:
    crd = widget_crd()
    schema_of(crd)["properties"]["metadata"] = {"type": "object", "default": {"name": "x"}}
    errors = problems(crd)
    assert "spec.validation.openAPIV3Schema.properties[metadata].default: Forbidden: must not be set in " \
           "top-level metadata" in errors


# ---------------------------------------------------------------- list and map types


def test_list_map_needs_keys() -> None:
    crd = widget_crd()
    del spec_props(crd)["ports"]["x-kubernetes-list-map-keys"]
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[ports].x-kubernetes-list-map-keys: "
        "Required value: must not be empty if x-kubernetes-list-type is map"
    ]


def test_list_map_keys_must_be_required_or_defaulted() -> None:
    crd = widget_crd()
    spec_props(crd)["ports"]["items"]["required"] = []
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[ports].items.properties[name].default: "
        "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a "
        "required property"
    ]
    spec_props(crd)["ports"]["items"]["properties"]["name"]["default"] = "http"
    assert problems(crd) == []


def test_list_map_keys_must_be_item_properties() -> None:
    crd = widget_crd()
    spec_props(crd)["ports"]["x-kubernetes-list-map-keys"] = ["name", "port"]
    assert problems(crd) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[ports].x-kubernetes-list-map-keys: "
        'Invalid value: ["name","port"]: entries must all be names of item properties'
    ]


def test_list_type_rules() -> None:
    crd = widget_crd()
    spec_props(crd)["tags"] = {"type": "object", "x-kubernetes-list-type": "set"}
    spec_props(crd)["pairs"] = {"type": "array", "x-kubernetes-list-type": "set",
                                "items": {"type": "object", "properties": {"a": {"type": "string"}}}}
    spec_props(crd)["other"] = {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}
    base = "spec.validation.openAPIV3Schema.properties[spec].properties"
    assert problems(crd) == [
        f'{base}[tags].type: Invalid value: "object": must be array if x-kubernetes-list-type is specified',
        f"{base}[pairs].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list "
        "with x-kubernetes-list-type=set",
        f'{base}[other].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"',
    ]


# ---------------------------------------------------------------- subresources, columns, conversion


def test_scale_paths() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"]["scale"] = {"specReplicasPath": "spec.replicas",
                                                           "statusReplicasPath": ".spec.replicas",
                                                           "labelSelectorPath": ".metadata.labels"}
    base = "spec.subresources.scale"
    assert problems(crd) == [
        f'{base}.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with .',
        f'{base}.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status',
        f'{base}.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec '
        "or .status",
    ]
    crd["spec"]["versions"][0]["subresources"]["scale"] = {}
    assert problems(crd) == [f"{base}.specReplicasPath: Required value", f"{base}.statusReplicasPath: Required value"]


def test_per_version_subresources_are_reported_per_version() -> None:
    crd = two_version_crd()
    crd["spec"]["versions"][1]["subresources"]["scale"]["specReplicasPath"] = ".status.replicas"
    assert problems(crd) == [
        'spec.versions[1].subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a '
        "json path under .spec"
    ]


def test_printer_columns() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [{"type": "float", "format": "hex", "jsonPath": "x"}]
    base = "spec.additionalPrinterColumns[0]"
    assert problems(crd) == [
        f"{base}.name: Required value",
        f'{base}.type: Invalid value: "float": must be one of boolean,date,integer,number,string',
        f'{base}.format: Invalid value: "hex": must be one of byte,date,date-time,double,float,int32,int64,password',
        f'{base}.JSONPath: Invalid value: "x": must be a simple json path starting with .',
    ]


def test_status_subresource_limits_the_schema_root() -> None:
    crd = widget_crd()
    schema_of(crd)["x-kubernetes-embedded-resource"] = False
    schema_of(crd)["maxProperties"] = 9
    errors = problems(crd)
    assert len(errors) == 1
    assert errors[0].startswith("spec.validation.openAPIV3Schema: Invalid value: {")
    assert errors[0].endswith("fields are allowed at the root of the schema if the status subresource is enabled")


def test_nullable_root_is_forbidden() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"] = {}
    schema_of(crd)["nullable"] = True
    assert problems(crd) == ["spec.validation.openAPIV3Schema.nullable: Forbidden: nullable cannot be true at the root"]


def test_webhook_conversion_needs_client_config_and_review_versions() -> None:
    crd = widget_crd(conversion={"strategy": "Webhook"})
    assert problems(crd) == [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
        "spec.conversion.conversionReviewVersions: Required value",
    ]
    crd = widget_crd(conversion={"strategy": "Webhook", "webhook": {
        "clientConfig": {"url": "https://conv.example.com"}, "conversionReviewVersions": ["v2"]}})
    assert problems(crd) == [
        'spec.conversion.conversionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1'
    ]


def test_none_conversion_refuses_webhook_settings() -> None:
    crd = widget_crd(conversion={"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}})
    assert problems(crd) == [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook"
    ]
    assert problems(widget_crd(conversion={"strategy": "Magic"})) == [
        'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook"'
    ]


# ---------------------------------------------------------------- protected groups


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, 'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have '
               'approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'),
        ("yes", 'metadata.annotations[api-approved.kubernetes.io]: Invalid value: "yes": protected groups must have '
                'approval annotation "api-approved.kubernetes.io" with either a URL or a reason starting with '
                '"unapproved", see https://github.com/kubernetes/enhancements/pull/1111'),
        ("https://github.com/kubernetes/kubernetes/pull/1", None),
        ("unapproved, experimental", None),
    ],
)
def test_k8s_io_groups_need_api_approval(annotation: str | None, expected: str | None) -> None:
    crd = widget_crd(group="widgets.k8s.io")
    crd["metadata"]["name"] = "widgets.widgets.k8s.io"
    if annotation is not None:
        crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": annotation}
    assert problems(crd) == ([expected] if expected else [])


def test_x_k8s_io_groups_are_not_protected() -> None:
    crd = widget_crd(group="widgets.x-k8s.io")
    crd["metadata"]["name"] = "widgets.widgets.x-k8s.io"
    assert problems(crd) == []


def test_api_approval_is_not_rechecked_when_unchanged() -> None:
    old = widget_crd(group="widgets.k8s.io")
    old["metadata"]["name"] = "widgets.widgets.k8s.io"
    new = copy.deepcopy(old)
    new["spec"]["names"]["shortNames"] = ["w"]
    assert problems(new, old=old) == []
