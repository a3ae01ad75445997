"""Schema: pruning, defaulting and validation of custom resources with kube-apiserver's wording."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import FieldError, invalid
from clusterset.apiserver.schema.structural import Schema, go_number


def rendered(errors: list[FieldError]) -> list[str]:
    return [e.render() for e in errors]


def spec_schema(properties: dict[str, Any], **spec_keywords: Any) -> Schema:
    spec = {"type": "object", "properties": properties, **spec_keywords}
    return Schema({"type": "object", "properties": {"spec": spec}})


def resource(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def check(properties: dict[str, Any], spec: Any, **spec_keywords: Any) -> list[str]:
    return rendered(spec_schema(properties, **spec_keywords).validate(resource(spec)))


# ---------------------------------------------------------------- validation: types


def test_type_mismatch_message_and_reason() -> None:
    errors = spec_schema({"n": {"type": "integer"}}).validate(resource({"n": "string"}))
    assert rendered(errors) == ['spec.n: Invalid value: "string": spec.n in body must be of type integer: "string"']
    assert errors[0].reason == "FieldValueTypeInvalid"
    assert errors[0].field == "spec.n"


@pytest.mark.parametrize(
    ("declared", "value", "actual"),
    [
        ("integer", 1.5, "number"),
        ("integer", True, "boolean"),
        ("string", 3, "integer"),
        ("boolean", "true", "string"),
        ("object", [], "array"),
        ("array", {}, "object"),
    ],
)
def test_type_names_in_messages(declared: str, value: Any, actual: str) -> None:
    assert check({"v": {"type": declared}}, {"v": value}) == [
        f'spec.v: Invalid value: "{actual}": spec.v in body must be of type {declared}: "{actual}"'
    ]


def test_numbers_cross_integer_and_number_when_lossless() -> None:
    assert check({"n": {"type": "number"}, "i": {"type": "integer"}}, {"n": 3, "i": 2.0}) == []


def test_null_needs_nullable() -> None:
    props = {"n": {"type": "integer"}, "m": {"type": "integer", "nullable": True}}
    assert check(props, {"n": None, "m": None}) == [
        'spec.n: Invalid value: "null": spec.n in body must be of type integer: "null"'
    ]


def test_int_or_string() -> None:
    props = {"port": {"x-kubernetes-int-or-string": True}}
    assert check(props, {"port": 80}) == []
    assert check(props, {"port": "http"}) == []
    assert check(props, {"port": False}) == [
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'
    ]


def test_untyped_preserved_field_accepts_anything() -> None:
    assert check({"x": {"x-kubernetes-preserve-unknown-fields": True}}, {"x": [1, {"a": None}]}) == []


# ---------------------------------------------------------------- validation: keywords


def test_required_reports_each_missing_field() -> None:
    errors = spec_schema({"foo": {"type": "string"}, "bar": {"type": "string"}}, required=["foo", "bar"]).validate(
        resource({"bar": "x"})
    )
    assert rendered(errors) == ["spec.foo: Required value"]
    assert errors[0].reason == "FieldValueRequired"


def test_required_at_the_root_and_inside_array_items() -> None:
    schema = Schema({
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": {"type": "object"}},
    })
    assert rendered(schema.validate({"metadata": {"name": "x"}})) == ["spec: Required value"]
    items = {"type": "array", "items": {"type": "object", "required": ["name"],
                                        "properties": {"name": {"type": "string"}}}}
    assert check({"items": items}, {"items": [{"name": "a"}, {}]}) == ["spec.items[1].name: Required value"]


def test_enum_of_strings() -> None:
    errors = spec_schema({"color": {"type": "string", "enum": ["red", "blue"]}}).validate(resource({"color": "pink"}))
    assert rendered(errors) == ['spec.color: Unsupported value: "pink": supported values: "red", "blue"']
    assert errors[0].reason == "FieldValueNotSupported"


def test_enum_of_numbers_quotes_the_supported_values() -> None:
    props = {"n": {"type": "integer", "enum": [1, 2]}}
    assert check(props, {"n": 2}) == []
    assert check(props, {"n": 3}) == ['spec.n: Unsupported value: 3: supported values: "1", "2"']


def test_enum_does_not_equate_true_and_one() -> None:
    assert check({"b": {"enum": [1], "x-kubernetes-preserve-unknown-fields": True}}, {"b": True}) == [
        'spec.b: Unsupported value: true: supported values: "1"'
    ]


def test_nullable_enum_accepts_null() -> None:
    assert check({"c": {"type": "string", "nullable": True, "enum": ["a"]}}, {"c": None}) == []


def test_pattern() -> None:
    props = {"s": {"type": "string", "pattern": "^a$"}}
    assert check(props, {"s": "a"}) == []
    assert check(props, {"s": "b"}) == ["spec.s: Invalid value: \"b\": spec.s in body should match '^a$'"]


def test_pattern_is_a_search_like_go() -> None:
    assert check({"s": {"type": "string", "pattern": "[0-9]"}}, {"s": "abc1"}) == []


@pytest.mark.parametrize(
    ("keywords", "value", "message"),
    [
        ({"minimum": 1}, 0, "Invalid value: 0: spec.n in body should be greater than or equal to 1"),
        ({"minimum": 1, "exclusiveMinimum": True}, 1, "Invalid value: 1: spec.n in body should be greater than 1"),
        ({"maximum": 10}, 11, "Invalid value: 11: spec.n in body should be less than or equal to 10"),
        ({"maximum": 10, "exclusiveMaximum": True}, 10, "Invalid value: 10: spec.n in body should be less than 10"),
        ({"multipleOf": 5}, 7, "Invalid value: 7: spec.n in body should be a multiple of 5"),
    ],
)
def test_integer_bounds(keywords: dict[str, Any], value: int, message: str) -> None:
    assert check({"n": {"type": "integer", **keywords}}, {"n": value}) == [f"spec.n: {message}"]


def test_integer_bounds_hold_at_the_limit() -> None:
    props = {"n": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 5}}
    assert check(props, {"n": 5}) == []
    assert check(props, {"n": 10}) == []


def test_number_bounds_print_floats_like_go() -> None:
    props = {"f": {"type": "number", "minimum": 1.5, "multipleOf": 0.1}}
    assert check(props, {"f": 0.3}) == [
        "spec.f: Invalid value: 0.3: spec.f in body should be greater than or equal to 1.5"
    ]
    assert check(props, {"f": 2.25}) == ["spec.f: Invalid value: 2.25: spec.f in body should be a multiple of 0.1"]
    assert check(props, {"f": 2.5}) == []


def test_string_lengths() -> None:
    props = {"s": {"type": "string", "minLength": 1, "maxLength": 3}}
    assert check(props, {"s": ""}) == ['spec.s: Invalid value: "": spec.s in body should be at least 1 chars long']
    errors = spec_schema(props).validate(resource({"s": "abcd"}))
    assert rendered(errors) == ["spec.s: Too long: may not be more than 3 bytes"]
    assert errors[0].reason == "FieldValueTooLong"


def test_string_length_counts_characters_not_bytes() -> None:
    assert check({"s": {"type": "string", "maxLength": 3}}, {"s": "héé"}) == []


def test_array_sizes() -> None:
    props = {"l": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}}}
    assert check(props, {"l": []}) == ["spec.l: Invalid value: 0: spec.l in body should have at least 1 items"]
    errors = spec_schema(props).validate(resource({"l": [1, 2, 3]}))
    assert rendered(errors) == ["spec.l: Too many: 3: must have at most 2 items"]
    assert errors[0].reason == "FieldValueTooMany"


def test_item_errors_come_before_the_array_size_error() -> None:
    props = {"l": {"type": "array", "maxItems": 1, "items": {"type": "integer"}}}
    assert check(props, {"l": [1, "x"]}) == [
        'spec.l[1]: Invalid value: "string": spec.l[1] in body must be of type integer: "string"',
        "spec.l: Too many: 2: must have at most 1 items",
    ]


def test_object_property_counts() -> None:
    props = {"m": {"type": "object", "minProperties": 1, "maxProperties": 2,
                   "additionalProperties": {"type": "string"}}}
    assert check(props, {"m": {}}) == ["spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"]
    assert check(props, {"m": {"a": "1", "b": "2", "c": "3"}}) == ["spec.m: Too many: 3: must have at most 2 items"]


def test_additional_properties_schema_applies_to_every_value() -> None:
    props = {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}
    assert check(props, {"labels": {"a": "x", "b": 1}}) == [
        'spec.labels.b: Invalid value: "integer": spec.labels.b in body must be of type string: "integer"'
    ]


def test_additional_properties_false_forbids_other_keys() -> None:
    props = {"m": {"type": "object", "additionalProperties": False}}
    assert check(props, {"m": {"x": 1}}) == ['spec.m: Invalid value: "x": spec.m.x in body is a forbidden property']


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-05-01T10:00:00Z", "2024-05-01 10:00"),
        ("date-time", "2024-05-01T10:00:00.123+02:00", "2024-13-01T10:00:00Z"),
        ("date", "2024-02-29", "2023-02-29"),
        ("byte", "aGVsbG8=", "not base64!"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123"),
        ("email", "a@example.com", "not-an-email"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "fe80::1", "10.0.0.1"),
        ("cidr", "10.0.0.0/8", "10.0.0.0"),
        ("hostname", "example.com", "-bad-.com"),
        ("duration", "1h30m", "soon"),
        ("uri", "https://example.com/x", "not a uri"),
        ("mac", "00:1a:2b:3c:4d:5e", "00:1a:2b"),
    ],
)
def test_string_formats(fmt: str, good: str, bad: str) -> None:
    props = {"v": {"type": "string", "format": fmt}}
    assert check(props, {"v": good}) == []
    expected = f'spec.v: Invalid value: "{bad}": spec.v in body must be of type {fmt}: "{bad}"'
    assert check(props, {"v": bad}) == [expected]


def test_unknown_formats_and_integer_ranges_are_not_checked() -> None:
    props = {"v": {"type": "string", "format": "my-format"}, "n": {"type": "integer", "format": "int32"}}
    assert check(props, {"v": "anything", "n": 2**40}) == []


def test_integer_format_rejects_fractions_in_its_own_words() -> None:
    assert check({"n": {"type": "integer", "format": "int32"}}, {"n": 1.5}) == [
        'spec.n: Invalid value: "float64": spec.n in body must be of type int32: "float64"'
    ]


# ---------------------------------------------------------------- validation: combinators


def test_any_of() -> None:
    props = {"a": {"type": "string"}, "b": {"type": "string"}}
    keywords = {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert check(props, {"b": "x"}, **keywords) == []
    errors = spec_schema(props, **keywords).validate(resource({}))
    assert rendered(errors) == [
        'Invalid value: "": "spec" must validate at least one schema (anyOf)',
        "spec.a: Required value",
    ]
    assert errors[0].field == ""


def test_one_of() -> None:
    props = {"a": {"type": "string"}, "b": {"type": "string"}}
    keywords = {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert check(props, {"a": "x"}, **keywords) == []
    assert check(props, {"a": "x", "b": "y"}, **keywords) == [
        'Invalid value: "": "spec" must validate one and only one schema (oneOf). Found 2 valid alternatives'
    ]
    assert check(props, {}, **keywords) == [
        'Invalid value: "": "spec" must validate one and only one schema (oneOf). Found none valid',
        "spec.a: Required value",
    ]


def test_all_of() -> None:
    props = {"n": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]}}
    assert check(props, {"n": 3}) == []
    assert check(props, {"n": 9}) == [
        "spec.n: Invalid value: 9: spec.n in body should be less than or equal to 5",
        'Invalid value: "": "spec.n" must validate all the schemas (allOf)',
    ]


def test_not() -> None:
    props = {"s": {"type": "string", "not": {"enum": ["forbidden"]}}}
    assert check(props, {"s": "fine"}) == []
    assert check(props, {"s": "forbidden"}) == ['Invalid value: "": "spec.s" must not validate the schema (not)']


# ---------------------------------------------------------------- validation: list types, embedded resources


def test_list_type_set_reports_each_duplicate_once() -> None:
    props = {"tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}
    errors = spec_schema(props).validate(resource({"tags": ["a", "b", "a", "a"]}))
    assert rendered(errors) == ['spec.tags[2]: Duplicate value: "a"']
    assert errors[0].reason == "FieldValueDuplicate"


def test_atomic_lists_may_repeat() -> None:
    props = {"tags": {"type": "array", "items": {"type": "string"}}}
    assert check(props, {"tags": ["a", "a"]}) == []


def ports_schema(keys: list[str], item_props: dict[str, Any]) -> dict[str, Any]:
    return {"ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys,
                      "items": {"type": "object", "properties": item_props}}}


def test_list_type_map_reports_the_duplicate_key() -> None:
    props = ports_schema(["name"], {"name": {"type": "string"}, "port": {"type": "integer"}})
    assert check(props, {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}) == [
        'spec.ports[1]: Duplicate value: {"name":"http"}'
    ]


def test_list_type_map_compares_key_tuples_and_defaults() -> None:
    item_props = {"port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}
    props = ports_schema(["port", "protocol"], item_props)
    distinct = [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}]
    assert check(props, {"ports": distinct}) == []
    assert check(props, {"ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}) == [
        'spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}'
    ]


def test_list_type_map_items_must_be_objects() -> None:
    props = {"ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                       "items": {"x-kubernetes-preserve-unknown-fields": True}}}
    assert check(props, {"ports": ["x"]}) == [
        'spec.ports[0]: Invalid value: "x": must be an object for an array of list-type map'
    ]


EMBEDDED = {"template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "x-kubernetes-preserve-unknown-fields": True}}


def test_embedded_resource_needs_type_meta() -> None:
    assert check(EMBEDDED, {"template": {"spec": {}}}) == [
        "spec.template.apiVersion: Required value",
        "spec.template.kind: Required value",
    ]
    assert check(EMBEDDED, {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}) == []


def test_embedded_resource_kind_and_metadata_are_validated() -> None:
    errors = check(EMBEDDED, {"template": {"apiVersion": "a/b/c", "kind": "Bad_Kind", "metadata": {"name": "a/b"}}})
    assert errors[0] == 'spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c'
    assert errors[1].startswith('spec.template.kind: Invalid value: "Bad_Kind": may have mixed case, but should '
                                "otherwise match: a DNS-1035 label must consist of")
    assert errors[2] == "spec.template.metadata.name: Invalid value: \"a/b\": may not contain '/'"


def test_root_metadata_constraints_from_the_schema_apply() -> None:
    schema = Schema({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}}})
    assert rendered(schema.validate({"metadata": {"name": "toolong"}})) == [
        "metadata.name: Too long: may not be more than 3 bytes"
    ]


def test_errors_become_a_422_with_kind_and_causes() -> None:
    errors = spec_schema({"n": {"type": "integer"}}).validate(resource({"n": "x"}))
    status = invalid("Widget", "example.com", "w", errors).to_status()
    assert status["code"] == 422
    assert status["message"] == (
        'Widget.example.com "w" is invalid: spec.n: Invalid value: "string": '
        'spec.n in body must be of type integer: "string"'
    )
    assert status["details"]["causes"][0]["field"] == "spec.n"


# ---------------------------------------------------------------- pruning


def test_prune_drops_undeclared_fields_and_names_them() -> None:
    schema = spec_schema({"replicas": {"type": "integer"}})
    obj = resource({"replicas": 2, "foo": 1})
    obj["extra"] = True
    assert schema.prune(obj) == ["extra", "spec.foo"]
    assert obj == resource({"replicas": 2})


def test_prune_inside_arrays_and_nested_objects() -> None:
    item = {"type": "object", "properties": {"name": {"type": "string"},
                                             "inner": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    schema = spec_schema({"items": {"type": "array", "items": item}})
    obj = resource({"items": [{"name": "a", "bar": 1}, {"inner": {"a": "x", "b": "y"}}]})
    assert schema.prune(obj) == ["spec.items[0].bar", "spec.items[1].inner.b"]
    assert obj["spec"]["items"] == [{"name": "a"}, {"inner": {"a": "x"}}]


def test_prune_keeps_type_meta_and_object_meta_at_the_root() -> None:
    schema = Schema({"type": "object", "properties": {"spec": {"type": "object"}}})
    meta = {"name": "w", "namespace": "ns", "labels": {"a": "b"}, "annotations": {}, "finalizers": ["f"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}],
            "resourceVersion": "5", "uid": "x", "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z"}
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": copy.deepcopy(meta)}
    assert schema.prune(obj) == []
    assert obj["metadata"] == meta


def test_prune_drops_unknown_metadata_keys() -> None:
    schema = Schema({"type": "object"})
    obj = {"metadata": {"name": "w", "bogus": 1, "ownerReferences": [{"uid": "u", "junk": 2}],
                        "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}, "extra": 1}]}}
    assert schema.prune(obj) == [
        "metadata.bogus", "metadata.managedFields[0].extra", "metadata.ownerReferences[0].junk"
    ]
    assert obj["metadata"] == {"name": "w", "ownerReferences": [{"uid": "u"}],
                               "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]}


def test_prune_respects_preserve_unknown_fields_but_prunes_declared_children() -> None:
    spec = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    schema = Schema({"type": "object", "properties": {"spec": spec}})
    obj = resource({"anything": {"deep": [1]}, "known": {"a": "x", "b": "y"}})
    assert schema.prune(obj) == ["spec.known.b"]
    assert obj["spec"] == {"anything": {"deep": [1]}, "known": {"a": "x"}}


def test_prune_embedded_resource_keeps_type_meta_and_coerces_its_metadata() -> None:
    template = {"type": "object", "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    schema = spec_schema({"template": template})
    obj = resource({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
                                 "spec": {"containers": []}, "junk": 1}})
    assert schema.prune(obj) == ["spec.template.junk", "spec.template.metadata.bogus"]
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"containers": []}}


def test_prune_under_additional_properties_keeps_keys_and_prunes_values() -> None:
    value_schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    schema = spec_schema({"byName": {"type": "object", "additionalProperties": value_schema}})
    obj = resource({"byName": {"x": {"a": "1", "z": 2}, "y": {}}})
    assert schema.prune(obj) == ["spec.byName.x.z"]
    assert obj["spec"]["byName"] == {"x": {"a": "1"}, "y": {}}


def test_prune_object_without_properties_drops_its_keys() -> None:
    schema = spec_schema({"empty": {"type": "object"}, "port": {"x-kubernetes-int-or-string": True}})
    obj = resource({"empty": {"a": 1}, "port": "http"})
    assert schema.prune(obj) == ["spec.empty.a"]
    assert obj["spec"] == {"empty": {}, "port": "http"}


# ---------------------------------------------------------------- defaults


DEFAULTED: dict[str, Any] = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "replicas": {"type": "integer", "default": 1},
    "mode": {"type": "string", "default": "auto"},
    "note": {"type": "string", "nullable": True, "default": "n"},
    "tags": {"type": "array", "items": {"type": "string", "default": "x"}},
    "nested": {"type": "object", "properties": {"depth": {"type": "integer", "default": 3}}},
    "withDefault": {"type": "object", "default": {}, "properties": {"on": {"type": "boolean", "default": True}}},
}}}}


def test_defaults_fill_absent_fields_where_the_parent_exists() -> None:
    obj = resource({"replicas": 5})
    Schema(DEFAULTED).apply_defaults(obj)
    assert obj["spec"] == {"replicas": 5, "mode": "auto", "note": "n", "withDefault": {"on": True}}


def test_defaults_do_not_create_missing_parents() -> None:
    obj: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    Schema(DEFAULTED).apply_defaults(obj)
    assert "spec" not in obj
    obj = resource({"nested": {}})
    Schema(DEFAULTED).apply_defaults(obj)
    assert obj["spec"]["nested"] == {"depth": 3}


def test_defaults_replace_non_nullable_nulls_and_keep_nullable_ones() -> None:
    obj = resource({"mode": None, "note": None, "tags": ["a", None]})
    Schema(DEFAULTED).apply_defaults(obj)
    assert obj["spec"]["mode"] == "auto"
    assert obj["spec"]["note"] is None
    assert obj["spec"]["tags"] == ["a", "x"]


def test_non_nullable_nulls_without_default_are_dropped() -> None:
    schema = spec_schema({"a": {"type": "string"}, "b": {"type": "string", "nullable": True}})
    obj = resource({"a": None, "b": None})
    schema.apply_defaults(obj)
    assert obj["spec"] == {"b": None}
    assert schema.validate(obj) == []


def test_defaults_are_copies() -> None:
    schema = Schema(DEFAULTED)
    first, second = resource({}), resource({})
    schema.apply_defaults(first)
    schema.apply_defaults(second)
    first["spec"]["withDefault"]["on"] = False
    assert second["spec"]["withDefault"] == {"on": True}
    assert DEFAULTED["properties"]["spec"]["properties"]["withDefault"]["default"] == {}


def test_defaults_apply_under_additional_properties() -> None:
    value_schema = {"type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}
    schema = spec_schema({"byName": {"type": "object", "additionalProperties": value_schema}})
    obj = resource({"byName": {"a": {}, "b": {"weight": 7}}})
    schema.apply_defaults(obj)
    assert obj["spec"]["byName"] == {"a": {"weight": 1}, "b": {"weight": 7}}


# ---------------------------------------------------------------- Go formatting


@pytest.mark.parametrize(
    ("value", "text"),
    [(2, "2"), (0.5, "0.5"), (100000.0, "100000"), (1e6, "1e+06"), (1.5e-5, "1.5e-05"),
     (123456789.0, "1.23456789e+08")],
)
def test_go_number_matches_go_percent_v(value: float, text: str) -> None:
    assert go_number(value) == text
