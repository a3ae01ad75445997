"""FieldsV1 encode/decode and path sets over objects (patch/fieldsets.py)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from clusterset.apiserver.patch.fieldsets import (
    compare_objects,
    fields_to_set,
    key_element,
    parse_element,
    path_string,
    set_to_fields,
    sorted_paths,
    to_field_set,
    value_element,
)
from clusterset.apiserver.patch.typeinfo import SchemaFieldTypes, builtin_field_types

DEPLOY = builtin_field_types("apps", "Deployment")

# The two entries of shared/specs/patch-and-apply.md §4.3.
EXAMPLE_APPLY: dict[str, Any] = {"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {
    "f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}
EXAMPLE_STATUS: dict[str, Any] = {"f:status": {"f:conditions": {
    ".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}}}


def f(*names: str) -> tuple[tuple[str, str | int], ...]:
    return tuple(("f", n) for n in names)


@pytest.mark.parametrize("fields", [EXAMPLE_APPLY, EXAMPLE_STATUS])
def test_spec_example_round_trips_byte_for_byte(fields: dict[str, Any]) -> None:
    decoded = fields_to_set(fields)
    assert json.dumps(set_to_fields(decoded)) == json.dumps(fields)


def test_decoded_example_members() -> None:
    web = (*f("spec", "template", "spec", "containers"), ("k", '{"name":"web"}'))
    assert fields_to_set(EXAMPLE_APPLY) == {
        f("spec", "replicas"), f("spec", "selector"), web, (*web, ("f", "image")), (*web, ("f", "name")),
    }
    conditions = f("status", "conditions")
    assert conditions in fields_to_set(EXAMPLE_STATUS)
    assert f("status") not in fields_to_set(EXAMPLE_STATUS)


def test_children_ordered_fields_keys_values_indexes_with_dot_first() -> None:
    base = f("x")
    paths = {
        base,
        (*base, ("i", 2)),
        (*base, value_element("b")),
        (*base, value_element(1)),
        (*base, key_element({"name": "a"})),
        (*base, ("f", "z")),
        (*base, ("f", "a")),
    }
    encoded = set_to_fields(paths)
    assert list(encoded["f:x"]) == [".", "f:a", "f:z", 'k:{"name":"a"}', "v:1", 'v:"b"', "i:2"]


def test_key_elements_are_compact_and_sorted() -> None:
    pe = parse_element('k:{"protocol": "TCP", "containerPort": 80}')
    assert pe == ("k", '{"containerPort":80,"protocol":"TCP"}')
    assert set_to_fields({(("f", "ports"), pe)}) == {"f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}}}


def test_decode_ignores_unknown_prefixes_and_rejects_garbage() -> None:
    assert fields_to_set({"f:a": {}, "x:weird": {"f:b": {}}}) == {f("a")}
    with pytest.raises(ValueError):
        fields_to_set({"f:a": "not an object"})
    with pytest.raises(ValueError):
        fields_to_set({"k:{not json": {}})
    with pytest.raises(ValueError):
        fields_to_set(["f:a"])


def test_dot_marks_member_with_children() -> None:
    assert fields_to_set({"f:labels": {".": {}, "f:app": {}}}) == {f("labels"), f("labels", "app")}
    assert fields_to_set({"f:labels": {"f:app": {}}}) == {f("labels", "app")}


def test_path_strings_match_kube_apiserver() -> None:
    path = (*f("spec", "template", "spec", "containers"), key_element({"name": "web"}), ("f", "image"))
    assert path_string(path) == '.spec.template.spec.containers[name="web"].image'
    ports = (*f("ports"), key_element({"protocol": "TCP", "containerPort": 80}))
    assert path_string(ports) == '.ports[containerPort=80,protocol="TCP"]'
    assert path_string((*f("metadata", "finalizers"), value_element("example.com/x"))) == (
        '.metadata.finalizers[="example.com/x"]')
    assert path_string((*f("items"), ("i", 3))) == ".items[3]"


def test_sorted_paths_follow_element_order() -> None:
    a, b = f("spec", "replicas"), f("metadata", "labels", "app")
    assert sorted_paths([a, b]) == [b, a]


def test_to_field_set_deployment() -> None:
    obj = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2, "paused": None,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{
                "name": "web", "resources": {},
                "ports": [{"containerPort": 80}],
                "args": ["a", "b"],
            }]}},
        },
    }
    got = to_field_set(obj, DEPLOY, strict=True)
    web = (*f("spec", "template", "spec", "containers"), key_element({"name": "web"}))
    port = (*web, ("f", "ports"), key_element({"containerPort": 80, "protocol": "TCP"}))
    assert f("spec", "selector") in got  # atomic LabelSelector: owned whole
    assert f("spec", "selector", "matchLabels") not in got
    assert f("spec", "paused") in got  # null is a member
    assert (*web, ("f", "resources")) in got  # empty struct is a member
    assert (*web, ("f", "args")) in got  # atomic list
    assert web in got and port in got and (*port, ("f", "containerPort")) in got
    assert f("metadata", "labels", "app") in got and f("metadata", "labels") not in got


def test_to_field_set_strict_errors() -> None:
    missing_key = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
    with pytest.raises(ValueError, match='omits key field "name"'):
        to_field_set(missing_key, DEPLOY, strict=True)
    dup = {"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}
    with pytest.raises(ValueError, match=r'duplicate entries for key \[name="a"\]'):
        to_field_set(dup, DEPLOY, strict=True)
    # Lenient mode (stored objects) never fails.
    assert to_field_set(dup, DEPLOY) != set()


def test_cr_map_entries_holding_objects_are_members() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {
            "size": {"type": "integer"}}}},
        "nested": {"type": "object", "properties": {"size": {"type": "integer"}}},
    }}}}
    types = SchemaFieldTypes(schema)
    got = to_field_set({"spec": {"byName": {"a": {"size": 1}}, "nested": {"size": 2}}}, types)
    assert f("spec", "byName", "a") in got  # map entry: member with children ('.')
    assert f("spec", "nested") not in got  # struct field: only its leaves
    assert set_to_fields(got)["f:spec"]["f:byName"]["f:a"] == {".": {}, "f:size": {}}


def test_compare_marks_new_containers_and_changed_leaves() -> None:
    old = {"metadata": {"name": "x"}, "spec": {"replicas": 1, "gone": "y"}}
    new = {"metadata": {"name": "x", "labels": {"app": "a"}}, "spec": {"replicas": 2}}
    diff = compare_objects(old, new, DEPLOY)
    assert diff.added == {f("metadata", "labels"), f("metadata", "labels", "app")}
    assert diff.modified == {f("spec", "replicas")}
    assert diff.removed == {f("spec", "gone")}


def test_compare_keyed_lists_by_key_not_index() -> None:
    c = f("spec", "template", "spec", "containers")
    old = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}}}
    new = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "image": "1"}]}}}}
    diff = compare_objects(old, new, DEPLOY)
    assert diff.modified == {(*c, key_element({"name": "b"}), ("f", "image"))}
    assert not diff.added and not diff.removed


def _mutated(obj: Any, rng: random.Random) -> Any:
    """`obj` with random leaves changed, entries dropped or added, and list items reordered or dropped."""
    if isinstance(obj, dict):
        out = {k: _mutated(v, rng) for k, v in obj.items() if rng.random() > 0.15}
        if rng.random() < 0.2:
            out[rng.choice(["extra", "image", "name", "x"])] = rng.choice(["v", 1, None, {}, {"a": "b"}])
        return out
    if isinstance(obj, list):
        items = [_mutated(v, rng) for v in obj if rng.random() > 0.15]
        rng.shuffle(items)
        return items
    return rng.choice([obj, obj, "changed", 7, None])


def test_a_comparison_within_some_paths_finds_of_them_what_the_whole_comparison_finds() -> None:
    """An apply compares only within the fields other managers own: the same answer for those paths, randomly."""
    rng = random.Random(13)
    base = {"metadata": {"name": "d", "labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "1"}}, "template": {"spec": {"containers": [
                {"name": "web", "image": "1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "side", "image": "2", "args": ["x", "y"]}]}}},
            "status": {"conditions": [{"type": "Available", "status": "True"}], "replicas": 2}}
    for _ in range(300):
        old, new = _mutated(base, rng), _mutated(base, rng)
        everything = compare_objects(old, new, DEPLOY)
        paths = sorted(to_field_set(old, DEPLOY) | to_field_set(new, DEPLOY))
        within = set(rng.sample(paths, rng.randint(0, len(paths))))
        part = compare_objects(old, new, DEPLOY, within=within)
        for name in ("added", "modified", "removed"):
            assert getattr(part, name) & within == getattr(everything, name) & within, (old, new, name)
        assert not part.changed() - everything.changed() and not part.removed - everything.removed


def _created(obj: dict[str, Any], group: str, kind: str, manager: str = "m") -> list[dict[str, Any]]:
    from clusterset.apiserver.patch.apply import created_managed_fields

    return created_managed_fields(obj, manager=manager, api_version="v1", now="2026-01-01T00:00:00Z",
                                  types=builtin_field_types(group, kind), types_key=(group, kind))


def _updated(obj: dict[str, Any], group: str, kind: str, manager: str = "m") -> list[dict[str, Any]]:
    from clusterset.apiserver.patch.apply import update_managed_fields

    return update_managed_fields(None, obj, manager=manager, api_version="v1", now="2026-01-01T00:00:00Z",
                                 subresource=None, types=builtin_field_types(group, kind), operation_is_create=True)


def _pod(name: str, containers: list[str], image: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name, "labels": {"app": name[:1]}},
            "spec": {"containers": [{"name": c, "image": image, "ports": [{"containerPort": 80}]} for c in containers]},
            "status": {"phase": "Pending"}}


@pytest.mark.parametrize(("group", "kind", "objects"), [
    ("", "ConfigMap", [{"metadata": {"name": n, "uid": n}, "data": {"a": n, "b": ""}} for n in ("x", "y")]
     + [{"metadata": {"name": "z"}, "data": {"a": "1", "c": "2"}}, {"metadata": {"name": "e"}, "data": {}},
        {"metadata": {"name": "n", "labels": None}}]),
    ("", "Pod", [_pod("p1", ["web"], "nginx:1"), _pod("p2", ["web"], "nginx:2"), _pod("p3", ["web", "side"], "x"),
                 _pod("p4", ["other"], "nginx:1")]),
    ("", "Service", [{"metadata": {"name": "s"}, "spec": {"ports": [{"port": p, "protocol": "TCP"}]}}
                     for p in (80, 80, 443)]),
    # keyed lists: items named by their keys, shaped by the rest (times, images own nothing of their own); an item
    # without its key, duplicate keys, and a different key each compute their own fields
    ("", "Node", [
        {"metadata": {"name": n}, "status": {"conditions": [
            {"type": t, "status": "True", "lastHeartbeatTime": f"2026-01-01T00:00:0{i}Z"} for t in types],
            "addresses": [{"type": "InternalIP", "address": f"10.0.0.{i}"}]}}
        for i, (n, types) in enumerate((("a", ("Ready",)), ("b", ("Ready",)), ("c", ("Ready", "DiskPressure")),
                                        ("d", ("DiskPressure", "Ready")), ("e", ("Ready", "Ready")), ("f", ("X",))))]
     + [{"metadata": {"name": "g"}, "status": {"conditions": [{"status": "True"}, {"type": "Ready", "x": None}]}}]),
    # one owner: remembered with a placeholder uid, each object's own put back (a uid that needs quoting, two
    # owners, or a finalizer that is the placeholder itself are computed in full)
    ("discovery.k8s.io", "EndpointSlice", [
        {"metadata": {"name": f"s-{uid}", "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                                  "uid": uid}], **extra},
         "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}
        for uid, extra in (("0d3c-11", {}), ("9f2e-22", {}), ('q"uote', {}), ("0wner-uid-placeh0lder", {}),
                           ("1a-33", {"finalizers": ["0wner-uid-placeh0lder"]}))]
     + [{"metadata": {"name": "two", "ownerReferences": [
         {"apiVersion": "v1", "kind": "Service", "name": n, "uid": n} for n in ("a", "b")]}, "addressType": "IPv4"}]),
    # a set of plain strings: remembered with a placeholder per value that sorts as the value does, the values put
    # back (order within the set, dual stack, not plain, duplicates, and a value that is a placeholder itself)
    ("", "Node", [{"metadata": {"name": f"n{i}"}, "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}}
                  for i, cidrs in enumerate((["10.128.0.0/24"], ["10.128.32.0/24"], ["10.1.0.0/24", "fd00::/64"],
                                             ["fd00:1::/64", "10.2.0.0/24"], ["10.3.0.0/24", "fd00:2::/64"],
                                             ['q"uote'], ["10.4.0.0/24", "10.4.0.0/24"],
                                             ["5et-value-placeh0lder-0000-0000"], [{"not": "a string"}]))]),
])
def test_created_fields_remembered_by_shape_equal_the_full_computation(
        group: str, kind: str, objects: list[dict[str, Any]]) -> None:
    for obj in objects + objects:  # each shape computed once, then remembered: the same fields, in the same order
        assert json.dumps(_created(obj, group, kind)) == json.dumps(_updated(obj, group, kind))
    assert _created(objects[0], group, kind, manager="other") == _updated(objects[0], group, kind, manager="other")


def _rules_schema(list_type: str) -> dict[str, Any]:
    rule = {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}
    rules: dict[str, Any] = {"type": "array", "items": rule, "x-kubernetes-list-type": list_type}
    if list_type == "map":
        rules["x-kubernetes-list-map-keys"] = ["name"]
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": {"rules": rules}}}}


def test_custom_resources_created_fields_remembered_per_schema_token() -> None:
    """A custom resource's remembered fields are keyed by a token of its CRD version's schema: the same shape under
    a changed schema (here an atomic list made a map list) is computed again, not answered from the first."""
    from clusterset.apiserver.patch.apply import created_managed_fields, update_managed_fields

    obj = {"metadata": {"name": "r"}, "spec": {"rules": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}}
    others = [{"metadata": {"name": "o"}, "spec": {"rules": rules}}  # other contents: an atomic list's fields are
              for rules in ([{"name": "c", "port": 3}], [], [{"name": "a"}, {"name": "b", "port": 2}])]  # the same
    results = []
    for list_type in ("atomic", "map", "atomic"):
        types, token = SchemaFieldTypes(_rules_schema(list_type)), object()
        for one in [obj, obj, *others]:
            created = created_managed_fields(one, manager="m", api_version="x/v1", now="2026-01-01T00:00:00Z",
                                             types=types, types_key=token)
            assert created == update_managed_fields(None, one, manager="m", api_version="x/v1",
                                                    now="2026-01-01T00:00:00Z", subresource=None, types=types,
                                                    operation_is_create=True)
            if one is obj:
                results.append(json.dumps(created[0]["fieldsV1"], sort_keys=True))
    assert results[0] == results[4] != results[2] and 'k:{\\"name\\":\\"a\\"}' in results[2]
