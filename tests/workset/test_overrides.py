"""A cluster's copy of a WorkSet's manifests (placeholders, selectors, RFC 6902 patches) and the rollout's choice
of Works to update: pure functions, no server."""

from __future__ import annotations

from typing import Any

import pytest

from clusterset.workset.jsonpatch import PatchError, apply_patch
from clusterset.workset.overrides import ClusterFacts, OverrideError, cluster_manifests, fill, selects
from clusterset.workset.works import TEMPLATE_HASH_ANNOTATION, max_unavailable, rollout

EU = ClusterFacts("member-1", "member-1", {"tier": "gold"}, {"region": "eu", "replicas": "3", "gpus": "8",
                                                             "limits": '{"cpu": "2"}'})
US = ClusterFacts("member-2", "m2", {"tier": "silver"}, {"region": "us", "gpus": "0"})


def deployment(image: str = "web:${cluster.properties['region']}") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps",
                                                                        "labels": {"cluster": "${cluster.name}"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_placeholders_fill_strings_and_typed_whole_values() -> None:
    assert fill("${cluster.name}/${cluster.id}/${cluster.properties[\"region\"]}", US) == "member-2/m2/us"
    assert fill("${cluster.properties['replicas'] | int}", EU) == 3
    assert fill("${ cluster.properties['limits'] | json }", EU) == {"cpu": "2"}
    assert fill("$${cluster.name} is literal", EU) == "${cluster.name} is literal"
    assert fill({"a": ["${cluster.properties['gpus']}", 7, None]}, US) == {"a": ["0", 7, None]}
    for bad, why in [("${cluster.properties['zone']}", "has no property 'zone'"),
                     ("${cluster.region}", "unknown placeholder ${cluster.region}"),
                     ("x-${cluster.properties['replicas'] | int}", "need the placeholder to be the whole string"),
                     ("${cluster.properties['region'] | int}", "'eu' is not an integer")]:
        with pytest.raises(ValueError, match=__import__("re").escape(why)):
            fill(bad, EU)


def test_cluster_selectors_by_name_label_and_property() -> None:
    assert selects(None, EU) and selects({}, EU)
    assert selects({"names": ["member-1"]}, EU) and not selects({"names": ["member-1"]}, US)
    assert selects({"labelSelector": {"matchLabels": {"tier": "gold"}}}, EU)
    assert not selects({"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In",
                                                                 "values": ["gold"]}]}}, US)
    gpus = {"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gt", "values": ["4"]}]}}
    assert selects(gpus, EU) and not selects(gpus, US)
    assert selects({"propertySelector": {"matchExpressions": [{"name": "zone", "operator": "DoesNotExist"}]}}, US)
    both = {"names": ["member-1"], "propertySelector": {"matchExpressions": [
        {"name": "region", "operator": "NotIn", "values": ["eu"]}]}}
    assert not selects(both, EU)
    for bad in [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gt", "values": ["x"]}]}},
                {"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Near"}]}},
                {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}},
                {"names": "member-1"},
                {"names": ["member-9"], "propertySelector": {"matchExpressions": [{"name": "x", "operator": "In"}]}}]:
        with pytest.raises(ValueError):
            selects(bad, EU)


def test_overrides_apply_in_order_to_selected_clusters_and_manifests() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}
    overrides = [
        {"clusterSelector": {"propertySelector": {"matchExpressions": [{"name": "region", "operator": "In",
                                                                         "values": ["eu"]}]}},
         "manifestSelector": {"kind": "Deployment"},
         "patches": [{"op": "replace", "path": "/spec/replicas", "value": "${cluster.properties['replicas'] | int}"},
                     {"op": "add", "path": "/spec/template/spec/containers/0/env",
                      "value": [{"name": "CLUSTER", "value": "${cluster.id}"}]}]},
        {"manifestSelector": {"kind": "ConfigMap", "name": "cfg"},
         "patches": [{"op": "add", "path": "/data/cluster", "value": "${cluster.name}"}]},
    ]
    eu = cluster_manifests([deployment(), config], overrides, EU)
    assert eu[0]["spec"]["replicas"] == 3
    assert eu[0]["spec"]["template"]["spec"]["containers"][0] == {
        "name": "c", "image": "web:eu", "env": [{"name": "CLUSTER", "value": "member-1"}]}
    assert eu[0]["metadata"]["labels"] == {"cluster": "member-1"}
    assert eu[1]["data"] == {"a": "1", "cluster": "member-1"}
    us = cluster_manifests([deployment(), config], overrides, US)
    assert us[0]["spec"]["replicas"] == 1 and us[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:us"
    assert us[1]["data"]["cluster"] == "member-2"


@pytest.mark.parametrize("override, where, text", [
    ({"patches": [{"op": "replace", "path": "/spec/nope/x", "value": 1}]}, "overrides[0]", "'/spec/nope' does not"),
    ({"manifestSelector": {"kind": "Service"}, "patches": []}, "overrides[0]", "matches no manifest"),
    ({"patches": [{"op": "add", "path": "/x", "value": "${cluster.properties['zone']}"}]}, "overrides[0]",
     "no property 'zone'"),
    ({"clusterSelector": {"labelSelector": {"matchLabels": {"-bad": "x"}}}, "patches": []}, "overrides[0]",
     "invalid label key"),
])
def test_a_bad_override_names_itself_the_problem_and_the_fix(override: dict[str, Any], where: str, text: str) -> None:
    with pytest.raises(OverrideError) as err:
        cluster_manifests([deployment()], [override], EU)
    assert err.value.where == where and text in str(err.value) and "; " in str(err.value)
    with pytest.raises(OverrideError, match="manifests: "):
        cluster_manifests([deployment("web:${cluster.properties['zone']}")], [], EU)


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = apply_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3}, {"op": "add", "path": "/a/b/0", "value": 0},
                            {"op": "remove", "path": "/c"}, {"op": "copy", "from": "/a/b", "path": "/d"},
                            {"op": "move", "from": "/d", "path": "/a/e"}, {"op": "test", "path": "/a/e/3", "value": 3},
                            {"op": "replace", "path": "/a/b/1", "value": "one"},
                            {"op": "add", "path": "/f~1g", "value": True}])
    assert out == {"a": {"b": [0, "one", 2, 3], "e": [0, 1, 2, 3]}, "f/g": True}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # not changed
    for ops, text in [([{"op": "remove", "path": "/z"}], "does not exist"),
                      ([{"op": "replace", "path": "/a/b/5", "value": 1}], "out of range"),
                      ([{"op": "test", "path": "/c", "value": "y"}], "is not 'y'"),
                      ([{"op": "move", "from": "/a", "path": "/a/x"}], "into itself"),
                      ([{"op": "merge", "path": "/a"}], "op must be one of"),
                      ([{"op": "add", "path": "a", "value": 1}], "not a JSON Pointer")]:
        with pytest.raises(PatchError, match=__import__("re").escape(text)):
            apply_patch(doc, ops)


def work(version: str, available: bool | None, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    conditions = [] if available is None else [{"type": "Available", "status": str(available),
                                                "observedGeneration": observed}]
    return {"metadata": {"generation": generation, "annotations": {TEMPLATE_HASH_ANNOTATION: version}},
            "status": {"conditions": conditions}}


def test_rollout_updates_at_most_max_unavailable_outdated_works() -> None:
    wanted = {c: "new" for c in ("a", "b", "c", "d", "e")}
    works = {"a": work("old", True), "b": work("old", True), "c": work("old", True), "d": work("new", True)}
    assert rollout(wanted, works, 2) == {"a", "b", "d", "e"}  # e is new, d current: never held back
    works["a"] = work("new", None)  # a updated, not yet available: one of the two slots
    assert rollout(wanted, works, 2) == {"a", "b", "d", "e"}
    works["b"] = work("new", True, generation=3, observed=2)  # Available of an older generation does not count
    assert rollout(wanted, works, 2) == {"a", "b", "d", "e"}
    works["b"] = work("new", True, generation=3, observed=3)
    assert rollout(wanted, works, 2) == {"a", "b", "c", "d", "e"}
    assert max_unavailable(None, 5) == (5, None)
    assert max_unavailable("25%", 10) == (2, None) and max_unavailable("1%", 10) == (1, None)
    assert max_unavailable(0, 3)[0] == 1 and "at least 1" in str(max_unavailable(0, 3)[1])
    assert max_unavailable("x", 3) == (1, "maxUnavailable 'x' must be a positive integer or a percentage such as 25%")
