"""JSON Patch (RFC 6902) with evanphx/json-patch v4 semantics, as kube-apiserver applies it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.patch.jsonpatch import JsonPatchOpError, apply_json_patch

GENERIC_422 = "the server rejected our request due to an error in our request"


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"a": "1"}, "resourceVersion": "4711"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]},
    }


def fails(doc: dict[str, Any], ops: Any) -> StatusError:
    with pytest.raises(StatusError) as info:
        apply_json_patch(doc, ops)
    return info.value


def assert_422(doc: dict[str, Any], ops: Any) -> None:
    err = fails(doc, ops)
    assert (err.code, err.reason, err.message) == (422, "Invalid", GENERIC_422)
    assert isinstance(err.__cause__, JsonPatchOpError)


# --- body shape -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "json_type"),
    [({"op": "add"}, "object"), ("x", "string"), (3, "number"), (True, "bool")],
)
def test_body_must_be_an_array(body: Any, json_type: str) -> None:
    err = fails(pod(), body)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == (
        f"error decoding patch: json: cannot unmarshal {json_type} into Go value of type []handlers.jsonPatchOp"
    )


def test_operation_must_be_an_object() -> None:
    err = fails(pod(), ["add"])
    assert err.code == 400
    assert "cannot unmarshal string into Go value of type handlers.jsonPatchOp" in err.message


def test_operation_fields_must_be_strings() -> None:
    err = fails(pod(), [{"op": "add", "path": 5, "value": 1}])
    assert err.code == 400
    assert "Go struct field jsonPatchOp.path of type string" in err.message


def test_null_body_is_an_empty_patch() -> None:
    assert apply_json_patch(pod(), None) == pod()


def test_empty_patch_returns_equal_copy() -> None:
    doc = pod()
    out = apply_json_patch(doc, [])
    assert out == doc
    assert out is not doc


def test_more_than_10000_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/kind", "value": "Pod"}] * 10001
    err = fails(pod(), ops)
    assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
    assert "The allowed maximum operations in a JSON patch is 10000, got 10001" in err.message


def test_exactly_10000_operations_is_allowed() -> None:
    ops = [{"op": "test", "path": "/kind", "value": "Pod"}] * 10000
    assert apply_json_patch(pod(), ops) == pod()


# --- add --------------------------------------------------------------------------------


def test_add_member() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}])
    assert out["metadata"]["labels"] == {"x": "y"}


def test_add_replaces_existing_member() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/metadata/annotations/a", "value": "2"}])
    assert out["metadata"]["annotations"] == {"a": "2"}


def test_add_does_not_create_missing_parents() -> None:
    assert_422(pod(), [{"op": "add", "path": "/metadata/labels/x", "value": "y"}])


def test_add_under_null_parent_fails() -> None:
    doc = pod()
    doc["metadata"]["labels"] = None
    assert_422(doc, [{"op": "add", "path": "/metadata/labels/x", "value": "y"}])


def test_add_under_scalar_parent_fails() -> None:
    assert_422(pod(), [{"op": "add", "path": "/kind/x", "value": "y"}])


def test_annotation_key_with_escaped_slash() -> None:
    ops = [
        {
            "op": "add",
            "path": "/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
            "value": "2026-01-02T03:04:05Z",
        }
    ]
    out = apply_json_patch(pod(), ops)
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2026-01-02T03:04:05Z"


def test_tilde_zero_unescapes_after_tilde_one() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/metadata/annotations/a~01b~0", "value": "v"}])
    # "~01" is "~" followed by "1", not "/" (RFC 6901 §4).
    assert out["metadata"]["annotations"]["a~1b~"] == "v"


def test_add_appends_with_dash() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/spec/containers/-", "value": {"name": "c"}}])
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b", "c"]


def test_add_at_index_equal_to_length_appends() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/spec/containers/2", "value": {"name": "c"}}])
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b", "c"]


def test_add_inserts_at_index() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/spec/containers/0", "value": {"name": "z"}}])
    assert [c["name"] for c in out["spec"]["containers"]] == ["z", "a", "b"]


def test_add_beyond_length_fails() -> None:
    assert_422(pod(), [{"op": "add", "path": "/spec/containers/3", "value": {"name": "c"}}])


def test_add_negative_index_counts_from_end() -> None:
    doc = {"foo": ["bar", "baz"]}
    assert apply_json_patch(doc, [{"op": "add", "path": "/foo/-1", "value": "qux"}]) == {"foo": ["bar", "baz", "qux"]}
    assert_422(doc, [{"op": "add", "path": "/foo/-4", "value": "qux"}])


def test_add_non_numeric_index_fails() -> None:
    assert_422(pod(), [{"op": "add", "path": "/spec/containers/x", "value": 1}])


def test_add_without_value_adds_null() -> None:
    out = apply_json_patch({"a": 1}, [{"op": "add", "path": "/b"}])
    assert out == {"a": 1, "b": None}


def test_add_to_root_path_fails() -> None:
    assert_422({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}])


def test_path_through_array_index() -> None:
    out = apply_json_patch(pod(), [{"op": "add", "path": "/spec/containers/1/image", "value": "b:2"}])
    assert out["spec"]["containers"][1]["image"] == "b:2"


def test_added_value_is_not_aliased() -> None:
    value = {"x": ["y"]}
    out = apply_json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    out["v"]["x"].append("z")
    assert value == {"x": ["y"]}


# --- remove / replace -------------------------------------------------------------------


def test_remove_member_and_index() -> None:
    out = apply_json_patch(
        pod(),
        [{"op": "remove", "path": "/metadata/annotations/a"}, {"op": "remove", "path": "/spec/containers/0"}],
    )
    assert out["metadata"]["annotations"] == {}
    assert [c["name"] for c in out["spec"]["containers"]] == ["b"]


def test_remove_null_member() -> None:
    assert apply_json_patch({"a": None, "b": 1}, [{"op": "remove", "path": "/a"}]) == {"b": 1}


def test_remove_missing_member_fails() -> None:
    assert_422(pod(), [{"op": "remove", "path": "/metadata/labels"}])


def test_remove_out_of_range_fails() -> None:
    assert_422(pod(), [{"op": "remove", "path": "/spec/containers/2"}])
    assert_422({"foo": []}, [{"op": "remove", "path": "/foo/-"}])


def test_remove_negative_index() -> None:
    out = apply_json_patch({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/-2"}])
    assert out == {"foo": ["bar", "baz"]}


def test_replace_member() -> None:
    out = apply_json_patch(pod(), [{"op": "replace", "path": "/spec/containers/0/image", "value": "a:2"}])
    assert out["spec"]["containers"][0]["image"] == "a:2"


def test_replace_index_out_of_range_fails() -> None:
    assert_422(pod(), [{"op": "replace", "path": "/spec/containers/2", "value": {}}])


def test_replace_under_missing_parent_fails() -> None:
    assert_422(pod(), [{"op": "replace", "path": "/metadata/labels/x", "value": "y"}])


def test_replace_missing_object_member_adds_it_like_evanphx_v4() -> None:
    # gopkg.in/evanphx/json-patch.v4 (vendored by kube-apiserver) never errors here.
    out = apply_json_patch(pod(), [{"op": "replace", "path": "/metadata/annotations/new", "value": "v"}])
    assert out["metadata"]["annotations"] == {"a": "1", "new": "v"}


def test_replace_whole_document() -> None:
    out = apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}])
    assert out == {"b": 2}
    assert_422({"a": 1}, [{"op": "replace", "path": "", "value": 3}])


def test_replace_managed_fields_then_test_resource_version() -> None:
    doc = pod()
    doc["metadata"]["managedFields"] = [{"manager": "kubectl-client-side-apply", "operation": "Update"}]
    entry = {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "v1",
        "time": "2026-01-02T03:04:05Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:k": {}}},
    }
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/metadata/managedFields", "value": [entry]},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "4711"},
    ]
    assert apply_json_patch(doc, ops)["metadata"]["managedFields"] == [entry]
    ops[1]["value"] = "4712"
    assert_422(doc, ops)


# --- move / copy ------------------------------------------------------------------------


def test_move_member() -> None:
    doc = {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}
    out = apply_json_patch(doc, [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
    assert out == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}


def test_move_within_array() -> None:
    doc = {"foo": ["all", "grass", "cows", "eat"]}
    out = apply_json_patch(doc, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
    assert out == {"foo": ["all", "cows", "eat", "grass"]}
    assert_422(doc, [{"op": "move", "from": "/foo/1", "path": "/foo/4"}])


def test_move_from_missing_fails() -> None:
    assert_422({"a": {"b": {"d": 1}}}, [{"op": "move", "from": "/a/b/c", "path": "/a/b/e"}])
    assert_422({"a": {"b": [1]}}, [{"op": "move", "from": "/a/b/1", "path": "/a/b/2"}])


def test_move_requires_from() -> None:
    assert_422({"a": 1}, [{"op": "move", "path": "/b"}])


def test_copy_is_deep() -> None:
    out = apply_json_patch({"a": {"x": [1]}}, [{"op": "copy", "from": "/a", "path": "/b"}])
    assert out == {"a": {"x": [1]}, "b": {"x": [1]}}
    out["b"]["x"].append(2)
    assert out["a"] == {"x": [1]}


def test_copy_into_array() -> None:
    out = apply_json_patch({"foo": ["bar"]}, [{"op": "copy", "path": "/foo/0", "from": "/foo"}])
    assert out == {"foo": [["bar"], "bar"]}
    assert_422({"foo": ["bar"]}, [{"op": "copy", "path": "/foo/2", "from": "/foo/0"}])


def test_copy_from_missing_member_copies_null_like_evanphx_v4() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "copy", "from": "/nope", "path": "/b"}]) == {"a": 1, "b": None}


# --- test -------------------------------------------------------------------------------


def test_test_deep_equality() -> None:
    ops = [{"op": "test", "path": "/spec/containers/0", "value": {"image": "a:1", "name": "a"}}]
    assert apply_json_patch(pod(), ops) == pod()


def test_test_detects_extra_members() -> None:
    assert_422(pod(), [{"op": "test", "path": "/metadata/annotations", "value": {"a": "1", "b": "2"}}])
    assert_422(pod(), [{"op": "test", "path": "/metadata/annotations", "value": {}}])


def test_test_distinguishes_bool_from_number() -> None:
    assert_422({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    assert_422({"a": True}, [{"op": "test", "path": "/a", "value": 1}])


def test_test_distinguishes_types() -> None:
    assert_422({"a": "1"}, [{"op": "test", "path": "/a", "value": 1}])
    assert_422({"a": []}, [{"op": "test", "path": "/a", "value": {}}])


def test_test_missing_member_equals_null() -> None:
    assert apply_json_patch({"baz": "qux"}, [{"op": "test", "path": "/foo", "value": None}]) == {"baz": "qux"}
    assert apply_json_patch({"foo": None}, [{"op": "test", "path": "/foo", "value": None}]) == {"foo": None}
    assert_422({"baz": "qux"}, [{"op": "test", "path": "/foo", "value": 42}])
    assert_422({"foo": {}}, [{"op": "test", "path": "/foo", "value": None}])


def test_test_without_value_fails_on_present_member() -> None:
    assert_422({"foo": []}, [{"op": "test", "path": "/foo"}])


def test_test_escaped_path() -> None:
    assert apply_json_patch({"baz/foo": "qux"}, [{"op": "test", "path": "/baz~1foo", "value": "qux"}]) == {
        "baz/foo": "qux"
    }
    assert_422({"baz/foo": "qux"}, [{"op": "test", "path": "/baz/foo", "value": "qux"}])


def test_test_whole_document() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "test", "path": "", "value": {"a": 1}}]) == {"a": 1}
    assert_422({"a": 1}, [{"op": "test", "path": "", "value": {"a": 2}}])


# --- malformed operations and atomicity ---------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        {"path": "/a", "value": 1},
        {"op": "frobnicate", "path": "/a"},
        {"op": None, "path": ""},
        {"op": "add", "value": 1},
        {"op": "add", "path": None},
        {"op": "copy", "from": None},
    ],
)
def test_malformed_operation_is_422(op: dict[str, Any]) -> None:
    assert_422({"a": 1}, [op])


def test_null_operation_is_422() -> None:
    assert_422({"a": 1}, [None])


def test_all_or_nothing_and_input_untouched() -> None:
    doc = pod()
    before = copy.deepcopy(doc)
    ops = [
        {"op": "add", "path": "/metadata/annotations/b", "value": "2"},
        {"op": "remove", "path": "/spec/containers/0"},
        {"op": "test", "path": "/kind", "value": "Service"},
    ]
    assert_422(doc, ops)
    assert doc == before


def test_success_does_not_modify_input() -> None:
    doc = pod()
    before = copy.deepcopy(doc)
    out = apply_json_patch(doc, [{"op": "remove", "path": "/spec/containers/0"}])
    assert doc == before
    assert len(out["spec"]["containers"]) == 1


def test_operations_apply_in_sequence() -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels", "value": {}},
        {"op": "add", "path": "/metadata/labels/x", "value": "y"},
        {"op": "copy", "from": "/metadata/labels/x", "path": "/metadata/labels/z"},
    ]
    assert apply_json_patch(pod(), ops)["metadata"]["labels"] == {"x": "y", "z": "y"}


def test_result_must_stay_an_object() -> None:
    assert_422({"a": 1}, [{"op": "replace", "path": "", "value": [1]}])
