"""JSON merge patch (RFC 7386) as evanphx's MergePatch applies it inside kube-apiserver."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.patch.merge import (
    apply_merge_patch,
    create_merge_patch,
    go_format,
    json_equal,
    require_object_patch,
)


def test_spec_example_labels_and_containers() -> None:
    doc = {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"containers": [{"name": "x", "image": "x:1"}, {"name": "y", "image": "y:1"}]},
    }
    patch = {"metadata": {"labels": {"b": None, "c": "3"}}, "spec": {"containers": [{"name": "x", "image": "x:2"}]}}
    out = apply_merge_patch(doc, patch)
    assert out["metadata"]["labels"] == {"a": "1", "c": "3"}
    assert out["spec"]["containers"] == [{"name": "x", "image": "x:2"}]


def test_null_deletes_and_absent_delete_is_noop() -> None:
    assert apply_merge_patch({"a": 1, "b": 2}, {"a": None, "zzz": None}) == {"b": 2}


def test_objects_merge_recursively() -> None:
    doc = {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}}}}
    out = apply_merge_patch(doc, {"spec": {"template": {"metadata": {"labels": {"tier": "fe"}}}}})
    assert out == {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}}}


def test_arrays_replaced_whole() -> None:
    assert apply_merge_patch({"a": [1, 2, 3]}, {"a": [4]}) == {"a": [4]}


def test_scalar_replaces_object_and_object_replaces_scalar() -> None:
    assert apply_merge_patch({"a": {"b": 1}}, {"a": "x"}) == {"a": "x"}
    assert apply_merge_patch({"a": "x"}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}


def test_new_member_has_nested_nulls_pruned() -> None:
    out = apply_merge_patch({}, {"a": {"b": None, "c": {"d": None, "e": 1}}})
    assert out == {"a": {"c": {"e": 1}}}


def test_nulls_in_objects_inside_new_arrays_are_pruned_like_evanphx() -> None:
    out = apply_merge_patch({}, {"a": [{"b": None, "c": 1}, None]})
    assert out == {"a": [{"c": 1}, None]}


def test_non_object_patch_replaces_document() -> None:
    assert apply_merge_patch({"a": 1}, [1, 2]) == [1, 2]
    assert apply_merge_patch({"a": 1}, "x") == "x"


def test_object_patch_on_non_object_document() -> None:
    assert apply_merge_patch("x", {"a": 1, "b": None}) == {"a": 1}


def test_inputs_untouched_and_result_not_aliased() -> None:
    doc = {"a": {"b": [1]}, "c": 1}
    patch = {"a": {"d": {"e": [2]}}, "c": None}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_merge_patch(doc, patch)
    assert out == {"a": {"b": [1], "d": {"e": [2]}}}
    assert doc == doc_before and patch == patch_before
    out["a"]["b"].append(9)
    out["a"]["d"]["e"].append(9)
    assert doc == doc_before and patch == patch_before


def test_empty_patch_is_noop() -> None:
    doc = {"a": {"b": 1}}
    out = apply_merge_patch(doc, {})
    assert out == doc and out is not doc


def test_require_object_patch() -> None:
    body = {"spec": {"replicas": 3}}
    assert require_object_patch(body) is body
    with pytest.raises(StatusError) as info:
        require_object_patch(None)
    assert (info.value.code, info.value.message) == (400, "Invalid JSON Patch")
    with pytest.raises(StatusError) as info:
        require_object_patch([{"op": "add"}])
    assert info.value.code == 400
    assert info.value.message == (
        "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"
    )


# --- create_merge_patch -------------------------------------------------------------------


def test_create_merge_patch_two_way() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "ports": [1, 2]}}
    modified = {"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"replicas": 1, "ports": [2]}}
    patch = create_merge_patch(original, modified)
    assert patch == {"metadata": {"labels": {"b": None, "c": "3"}}, "spec": {"ports": [2]}}
    assert apply_merge_patch(original, patch) == modified


def test_create_merge_patch_unchanged_is_empty() -> None:
    doc = {"a": {"b": [1, {"c": True}]}}
    assert create_merge_patch(doc, copy.deepcopy(doc)) == {}


def test_create_merge_patch_type_change_and_bool_vs_int() -> None:
    assert create_merge_patch({"a": {"b": 1}}, {"a": "x"}) == {"a": "x"}
    assert create_merge_patch({"a": 1}, {"a": True}) == {"a": True}


@pytest.mark.parametrize(
    ("original", "modified"),
    [
        ({}, {"a": {"b": {"c": 1}}}),
        ({"a": {"b": 1}}, {}),
        ({"a": [1, 2], "b": {"c": "d"}}, {"a": [2, 1], "b": {"e": "f"}}),
    ],
)
def test_create_then_apply_round_trips(original: dict[str, Any], modified: dict[str, Any]) -> None:
    assert apply_merge_patch(original, create_merge_patch(original, modified)) == modified


# --- helpers --------------------------------------------------------------------------------


def test_json_equal() -> None:
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert json_equal(1, 1.0)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal("1", 1)
    assert not json_equal(None, {})


def test_go_format() -> None:
    assert go_format({"image": "x", "a": [1, True, None]}) == "map[a:[1 true <nil>] image:x]"
