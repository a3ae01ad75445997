"""A Schema remembers each step's outcome for a body it has seen (a fleet writes the same body into every
member): the remembered outcome must be the one the walk gives, and metadata must never be taken from it."""

from __future__ import annotations

import copy
from typing import Any

from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.schemas import compiled_schema
from clusterset.apiserver.schema.structural import Schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1, "minimum": 0},
            "mode": {"type": "string", "nullable": False},
            "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
        }},
    },
}


def widget(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, **meta}, "spec": spec}


def fresh(step: str, obj: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The step's outcome and the object after it, from a Schema that has seen nothing."""
    obj = copy.deepcopy(obj)
    out = getattr(Schema(copy.deepcopy(SCHEMA)), step)(obj)
    return out, obj


def test_pruning_a_seen_body_still_coerces_metadata_and_prunes_new_bodies() -> None:
    schema = Schema(copy.deepcopy(SCHEMA))
    clean = widget("a", {"replicas": 2})
    assert schema.prune(copy.deepcopy(clean)) == []
    # the same body again, with metadata ObjectMeta does not have: coerced as before
    again = widget("b", {"replicas": 2}, bogus=1, ownerReferences=[{"name": "x", "uid": "u", "extra": True}])
    expected = fresh("prune", again)
    assert schema.prune(again) == expected[0] == ["metadata.bogus", "metadata.ownerReferences[0].extra"]
    assert again == expected[1]
    # an unknown field in the body: pruned every time, never remembered as clean
    for _ in range(2):
        dirty = widget("c", {"replicas": 2, "unknown": True})
        assert schema.prune(dirty) == ["spec.unknown"]
        assert dirty["spec"] == {"replicas": 2}


def test_defaults_of_a_seen_body_are_the_walk_s() -> None:
    schema = Schema(copy.deepcopy(SCHEMA))
    for name in ("a", "b", "c"):
        obj = widget(name, {"mode": None, "ports": [80]})
        expected = fresh("apply_defaults", obj)[1]
        schema.apply_defaults(obj)
        assert obj == expected
        assert obj["spec"] == {"replicas": 1, "ports": [80]}  # null dropped, default filled
        assert obj["metadata"]["name"] == name  # metadata is never taken from the remembered body
    obj = widget("d", {"replicas": 3})  # nothing to default: left as it is
    schema.apply_defaults(obj)
    schema.apply_defaults(again := widget("e", {"replicas": 3}))
    assert obj["spec"] == again["spec"] == {"replicas": 3}


def test_validation_remembers_only_valid_bodies() -> None:
    schema = Schema(copy.deepcopy(SCHEMA))
    assert schema.validate(widget("a", {"replicas": 2, "ports": [1, 2]})) == []
    assert schema.validate(widget("b", {"replicas": 2, "ports": [1, 2]})) == []
    for _ in range(2):
        errors = schema.validate(widget("a", {"replicas": -1, "ports": [1, 1]}))
        assert [e.field for e in errors] == ["spec.replicas", "spec.ports[1]"]


def test_a_metadata_schema_on_the_name_keys_validation_by_the_name() -> None:
    named = copy.deepcopy(SCHEMA)
    named["properties"]["metadata"] = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}
    schema = Schema(named)
    assert schema.validate(widget("abc", {"replicas": 1})) == []
    errors = schema.validate(widget("abcd", {"replicas": 1}))  # the same body, a name the schema refuses
    assert [e.field for e in errors] == ["metadata.name"]


def test_a_metadata_schema_with_more_than_names_is_walked_every_time() -> None:
    labelled = copy.deepcopy(SCHEMA)
    labelled["properties"]["metadata"] = {"type": "object", "properties": {
        "labels": {"type": "object", "properties": {"tier": {"type": "string", "default": "web"}},
                   "required": ["tier"]}}}
    schema = Schema(labelled)
    first = widget("a", {"replicas": 1}, labels={})
    schema.apply_defaults(first)
    assert first["metadata"]["labels"] == {"tier": "web"}
    second = widget("b", {"replicas": 1}, labels={})
    schema.apply_defaults(second)
    assert second["metadata"]["labels"] == {"tier": "web"}
    assert schema.validate(widget("c", {"replicas": 1}, labels={"tier": "x"})) == []
    assert [e.field for e in schema.validate(widget("d", {"replicas": 1}, labels={}))] == ["metadata.labels.tier"]


def test_clusters_serving_one_schema_share_its_compiled_form_and_a_changed_schema_gets_its_own() -> None:
    """Every member of a fleet serves the same CRDs: their schema (and what it remembers) is compiled once."""

    def served(schema: dict[str, Any]) -> ResourceType:
        return ResourceType(group="example.com", version="v1", plural="widgets", singular="widget", kind="Widget",
                            namespaced=True, schema=schema, is_crd=True)

    one, other = served(copy.deepcopy(SCHEMA)), served(copy.deepcopy(SCHEMA))
    assert compiled_schema(one) is compiled_schema(other) is not None
    capped = copy.deepcopy(SCHEMA)
    capped["properties"]["spec"]["properties"]["replicas"]["maximum"] = 3
    changed = served(capped)
    assert compiled_schema(changed) is not compiled_schema(one)
    shared, own = compiled_schema(one), compiled_schema(changed)
    assert shared is not None and own is not None
    five = widget("w", {"replicas": 5})
    assert shared.validate(copy.deepcopy(five)) == []
    assert [e.field for e in own.validate(five)] == ["spec.replicas"]


WITH_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        **SCHEMA["properties"],
        "status": {"type": "object", "properties": {
            "ready": {"type": "integer", "minimum": 0},
            "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                           "items": {"type": "object", "properties": {"type": {"type": "string"}}}},
        }},
    },
}


def test_a_root_checking_nothing_of_its_own_is_valid_field_by_field_as_the_whole_walk_says() -> None:
    """A root with only `type`, `properties` and `required` is valid when its fields are: a status write walks the
    status, the spec it carries unchanged is remembered valid. Whatever the memory holds, the outcome (errors, their
    order) is a fresh walk's."""
    capped = copy.deepcopy(WITH_STATUS)
    capped["minProperties"] = 4  # the root checks something itself: walked whole every time
    for schema_doc in (WITH_STATUS, capped):
        schema = Schema(copy.deepcopy(schema_doc))
        spec = {"replicas": 2, "ports": [1, 2]}
        bodies: list[dict[str, Any]] = [
            {"spec": spec},
            {"spec": spec, "status": {"ready": 1}},
            {"spec": spec, "status": {"ready": 2, "conditions": [{"type": "A"}]}},
            {"spec": spec, "status": {"ready": -1}},  # the status invalid, the spec remembered valid
            {"spec": spec, "status": {"conditions": [{"type": "A"}, {"type": "A"}]}},  # duplicate map key
            {"spec": {"replicas": -1}, "status": {"ready": -2}},  # two fields invalid: errors in the walk's order
            {"status": {"ready": 1}},  # the required spec missing
            {"spec": spec, "status": None},
            {"spec": spec, "undeclared": {"x": 1}},
        ]
        for round_ in range(2):
            for i, body in enumerate(bodies):
                obj = widget(f"w{i}", copy.deepcopy(body["spec"]) if "spec" in body else {})
                if "spec" not in body:
                    del obj["spec"]
                obj.update({k: copy.deepcopy(v) for k, v in body.items() if k != "spec"})
                got = [e.render() for e in schema.validate(copy.deepcopy(obj))]
                want = [e.render() for e in Schema(copy.deepcopy(schema_doc)).validate(obj)]
                assert got == want, (round_, i, got, want)
                assert bool(want) == (i >= 3 and i != 8), (i, want)
        assert bool(schema._valid_parts) == (schema_doc is WITH_STATUS)  # the field-by-field path was taken
