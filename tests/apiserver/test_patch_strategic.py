"""Strategic merge patch, server side (apimachinery strategicpatch), driven by typeinfo tables."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.patch.strategic import apply_strategic_merge_patch
from clusterset.apiserver.patch.typeinfo import FieldType, TableFieldTypes, builtin_field_types

DEPLOYMENT = builtin_field_types("apps", "Deployment")
POD = builtin_field_types("", "Pod")
SERVICE = builtin_field_types("", "Service")
NODE = builtin_field_types("", "Node")
PDB = builtin_field_types("policy", "PodDisruptionBudget")
SLICE = builtin_field_types("discovery.k8s.io", "EndpointSlice")
CONFIGMAP = builtin_field_types("", "ConfigMap")


def deployment(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": list(containers) or [{"name": "app", "image": "nginx:1.25"}]},
            },
            **spec,
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


def no_directives(value: Any) -> bool:
    text = json.dumps(value)
    return (
        "$patch" not in text
        and "$retainKeys" not in text
        and "$setElementOrder" not in text
        and ("$deleteFromPrimitiveList" not in text)
    )


def smp_error(doc: dict[str, Any], patch: Any, types: Any = DEPLOYMENT) -> StatusError:
    with pytest.raises(StatusError) as info:
        apply_strategic_merge_patch(doc, patch, types)
    return info.value


# --- body and plain maps ----------------------------------------------------------------


@pytest.mark.parametrize(("body", "json_type"), [([], "array"), ("x", "string"), (1, "number")])
def test_body_must_be_an_object(body: Any, json_type: str) -> None:
    err = smp_error(deployment(), body)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == f"json: cannot unmarshal {json_type} into Go value of type map[string]interface {{}}"


def test_null_body_is_noop() -> None:
    assert apply_strategic_merge_patch(deployment(), None, DEPLOYMENT) == deployment()


def test_maps_merge_and_null_deletes() -> None:
    doc = deployment()
    doc["metadata"]["annotations"] = {"a": "1", "b": "2"}
    out = apply_strategic_merge_patch(
        doc, {"metadata": {"annotations": {"b": None, "c": "3"}, "labels": {"tier": "fe"}}}, DEPLOYMENT
    )
    assert out["metadata"]["annotations"] == {"a": "1", "c": "3"}
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe"}


def test_null_for_absent_key_is_noop() -> None:
    out = apply_strategic_merge_patch(deployment(), {"spec": {"paused": None}}, DEPLOYMENT)
    assert "paused" not in out["spec"]


def test_cordon_and_uncordon() -> None:
    node = {"kind": "Node", "metadata": {"name": "n"}, "spec": {}}
    cordoned = apply_strategic_merge_patch(node, {"spec": {"unschedulable": True}}, NODE)
    assert cordoned["spec"] == {"unschedulable": True}
    assert apply_strategic_merge_patch(cordoned, {"spec": {"unschedulable": None}}, NODE)["spec"] == {}


def test_inputs_untouched() -> None:
    doc = deployment()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"name": "app", "image": "nginx:1.27"}],
                }
            }
        }
    }
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert doc == doc_before and patch == patch_before
    assert out is not doc
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert patch == patch_before and doc == doc_before


def test_type_mismatch_replaces() -> None:
    doc = {"spec": {"x": "scalar", "y": {"a": 1}}}
    out = apply_strategic_merge_patch(doc, {"spec": {"x": {"a": 1, "b": None}, "y": [1]}}, CONFIGMAP)
    assert out["spec"] == {"x": {"a": 1}, "y": [1]}


def test_smp_merges_selector_maps_key_by_key() -> None:
    svc = {"kind": "Service", "spec": {"selector": {"app": "web", "tier": "fe"}}}
    out = apply_strategic_merge_patch(svc, {"spec": {"selector": {"tier": "be"}}}, SERVICE)
    assert out["spec"]["selector"] == {"app": "web", "tier": "be"}


def test_replace_strategy_map_replaced_whole() -> None:
    pdb = {"kind": "PodDisruptionBudget", "spec": {"selector": {"matchLabels": {"a": "1", "b": "2"}}}}
    out = apply_strategic_merge_patch(pdb, {"spec": {"selector": {"matchLabels": {"c": "3"}}}}, PDB)
    assert out["spec"]["selector"] == {"matchLabels": {"c": "3"}}


# --- map directives -------------------------------------------------------------------------


def test_map_patch_replace() -> None:
    doc = deployment()
    pod_spec(doc)["nodeSelector"] = {"disk": "hdd", "zone": "a"}
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "replace", "disk": "ssd"}}}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["nodeSelector"] == {"disk": "ssd"}


def test_map_patch_replace_strips_nested_directives() -> None:
    doc = {"spec": {"template": {"x": 1}}}
    patch = {"spec": {"template": {"$patch": "replace", "y": {"z": None, "w": 1, "$retainKeys": ["w"]}}}}
    out = apply_strategic_merge_patch(doc, patch, CONFIGMAP)
    assert out == {"spec": {"template": {"y": {"w": 1}}}}


def test_map_patch_delete_removes_the_map() -> None:
    doc = deployment()
    pod_spec(doc)["affinity"] = {"nodeAffinity": {"x": 1}}
    out = apply_strategic_merge_patch(
        doc, {"spec": {"template": {"spec": {"affinity": {"$patch": "delete"}}}}}, DEPLOYMENT
    )
    assert "affinity" not in pod_spec(out)
    assert pod_spec(out)["containers"] == pod_spec(doc)["containers"]


def test_map_patch_delete_of_absent_map_adds_nothing() -> None:
    out = apply_strategic_merge_patch(
        deployment(), {"spec": {"template": {"spec": {"affinity": {"$patch": "delete"}}}}}, DEPLOYMENT
    )
    assert "affinity" not in pod_spec(out)


def test_top_level_patch_replace() -> None:
    out = apply_strategic_merge_patch(
        deployment(), {"$patch": "replace", "kind": "Deployment", "metadata": {"name": "x"}}, DEPLOYMENT
    )
    assert out == {"kind": "Deployment", "metadata": {"name": "x"}}


@pytest.mark.parametrize("directive", ["merge", "bogus", 5])
def test_bad_map_directive_is_400(directive: Any) -> None:
    err = smp_error(deployment(), {"metadata": {"labels": {"$patch": directive}}})
    assert err.code == 400
    assert "unknown patch type" in err.message


# --- $retainKeys ----------------------------------------------------------------------------


def test_deployment_strategy_switch_to_recreate() -> None:
    doc = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_drops_unlisted_original_keys_even_without_null() -> None:
    doc = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    out = apply_strategic_merge_patch(
        doc, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, DEPLOYMENT
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_volume_retain_keys_drops_old_source() -> None:
    doc = deployment()
    pod_spec(doc)["volumes"] = [{"name": "cfg", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/volumes": [{"name": "cfg"}, {"name": "data"}],
                    "volumes": [{"$retainKeys": ["configMap", "name"], "name": "cfg", "configMap": {"name": "app"}}],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["volumes"] == [
        {"name": "cfg", "configMap": {"name": "app"}},
        {"name": "data", "emptyDir": {}},
    ]
    assert no_directives(out)


def test_retain_keys_patch_key_not_listed_is_rejected() -> None:
    doc = deployment(strategy={"type": "RollingUpdate"})
    err = smp_error(doc, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}})
    # Upstream (strategicpatch.applyRetainKeysDirective) returns ErrBadPatchFormatForRetainKeys: 400.
    assert (err.code, err.message) == (400, "invalid patch format of retainKeys")


def test_retain_keys_must_be_a_list() -> None:
    doc = deployment(strategy={"type": "RollingUpdate"})
    err = smp_error(doc, {"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}})
    assert (err.code, err.message) == (400, "invalid patch format of retainKeys")


def test_retain_keys_ignores_directive_keys_in_patch() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"], "name": "x"}}
    patch = {"metadata": {"$retainKeys": ["finalizers"], "$deleteFromPrimitiveList/finalizers": ["a"]}}
    out = apply_strategic_merge_patch(doc, patch, CONFIGMAP)
    assert out == {"metadata": {"finalizers": ["b"]}}


# --- lists without merge strategy -------------------------------------------------------------


def test_tolerations_replaced_whole() -> None:
    doc = deployment()
    pod_spec(doc)["tolerations"] = [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["tolerations"] == [{"key": "c", "operator": "Exists"}]


def test_container_args_replaced_whole() -> None:
    doc = deployment({"name": "app", "image": "x", "args": ["--a", "--b"]})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["--c"]}]}}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["containers"] == [{"name": "app", "image": "x", "args": ["--c"]}]


def test_endpointslice_endpoints_replaced_whole() -> None:
    doc = {
        "kind": "EndpointSlice",
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
        "ports": [{"name": "http", "port": 80}],
    }
    out = apply_strategic_merge_patch(doc, {"endpoints": [{"addresses": ["10.0.0.3"]}]}, SLICE)
    assert out["endpoints"] == [{"addresses": ["10.0.0.3"]}]
    assert out["ports"] == [{"name": "http", "port": 80}]


def test_node_taints_replaced_whole() -> None:
    node = {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]}}
    out = apply_strategic_merge_patch(node, {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}}, NODE)
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]


def test_replaced_list_has_directives_stripped() -> None:
    doc = deployment()
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "c", "x": None}, {"$patch": "delete"}]}}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["tolerations"] == [{"key": "c"}]


# --- scalar merge lists -----------------------------------------------------------------------


def test_finalizers_union_without_duplicates() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}}
    out = apply_strategic_merge_patch(doc, {"metadata": {"finalizers": ["b", "c"]}}, CONFIGMAP)
    assert sorted(out["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(out["metadata"]["finalizers"]) == 3


def test_finalizers_new_item_lands_first_without_set_element_order() -> None:
    # The upstream "best effort" order: patch items absent from the server go first.
    out = apply_strategic_merge_patch(
        {"metadata": {"finalizers": ["x", "y"]}}, {"metadata": {"finalizers": ["z"]}}, CONFIGMAP
    )
    assert out["metadata"]["finalizers"] == ["z", "x", "y"]


def test_finalizers_delete_from_primitive_list() -> None:
    doc = {"metadata": {"finalizers": ["example.com/x", "example.com/y", "example.com/x"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/x", "example.com/absent"]}}
    out = apply_strategic_merge_patch(doc, patch, CONFIGMAP)
    assert out["metadata"] == {"finalizers": ["example.com/y"]}


def test_delete_from_primitive_list_does_not_create_list() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/x"]}}
    out = apply_strategic_merge_patch({"metadata": {"name": "a"}}, patch, CONFIGMAP)
    assert out == {"metadata": {"name": "a"}}


def test_finalizers_two_way_patch_from_kubectl() -> None:
    doc = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["c", "d", "a"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["d"],
        }
    }
    out = apply_strategic_merge_patch(doc, patch, CONFIGMAP)
    assert out["metadata"] == {"finalizers": ["c", "d", "a"]}


@pytest.mark.parametrize("key", ["$deleteFromPrimitiveList", "$deleteFromPrimitiveListX/finalizers"])
def test_malformed_delete_from_primitive_list_key(key: str) -> None:
    err = smp_error({"metadata": {"finalizers": ["a"]}}, {"metadata": {key: ["a"]}}, CONFIGMAP)
    assert (err.code, err.message) == (400, "invalid patch format of primitive list")


def test_delete_from_primitive_list_must_be_a_list() -> None:
    err = smp_error(
        {"metadata": {"finalizers": ["a"]}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, CONFIGMAP
    )
    assert (err.code, err.message) == (400, "invalid patch format of primitive list")


def test_node_pod_cidrs_set_union() -> None:
    node = {"spec": {"podCIDRs": ["10.0.0.0/24"]}}
    out = apply_strategic_merge_patch(node, {"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}, NODE)
    assert sorted(out["spec"]["podCIDRs"]) == ["10.0.0.0/24", "fd00::/64"]


# --- object merge lists -----------------------------------------------------------------------


def test_kubectl_set_image() -> None:
    doc = deployment(
        {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}, {"name": "side", "image": "s"}
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                    "containers": [{"name": "app", "image": "nginx:1.27"}],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["containers"] == [
        {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "s"},
    ]
    assert no_directives(out)


def test_plain_merge_patch_would_wipe_but_smp_merges() -> None:
    doc = deployment({"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert {c["name"]: c["image"] for c in pod_spec(out)["containers"]} == {"a": "a:1", "b": "b:2"}


def test_new_item_is_added_and_stripped() -> None:
    doc = deployment()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "new",
                            "image": "n",
                            "resources": None,
                            "$setElementOrder/env": [{"name": "A"}],
                            "env": [{"name": "A", "value": "1", "valueFrom": None}],
                        }
                    ]
                }
            }
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert {"name": "new", "image": "n", "env": [{"name": "A", "value": "1"}]} in pod_spec(out)["containers"]
    assert len(pod_spec(out)["containers"]) == 2
    assert no_directives(out)


def test_container_delete_directive_from_client_side_apply() -> None:
    doc = deployment({"name": "web", "image": "web:1"}, {"name": "sidecar", "image": "s:1"})
    doc["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}\n"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "web", "image": "web:2"}, {"$patch": "delete", "name": "sidecar"}],
                }
            }
        },
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["containers"] == [{"name": "web", "image": "web:2"}]
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{...}\n"
    assert no_directives(out)


def test_delete_directive_removes_every_match() -> None:
    doc = deployment()
    pod_spec(doc)["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "B"}, {"name": "A", "value": "2"}]
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"$patch": "delete", "name": "A"}]}]}}}
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["containers"][0]["env"] == [{"name": "B"}]


def test_delete_directive_for_absent_item_is_noop() -> None:
    doc = deployment()
    patch = {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "nope"}]}}}}
    assert apply_strategic_merge_patch(doc, patch, DEPLOYMENT) == doc


def test_delete_directive_on_absent_list_creates_nothing() -> None:
    patch = {"spec": {"template": {"spec": {"initContainers": [{"$patch": "delete", "name": "init"}]}}}}
    out = apply_strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert pod_spec(out).get("initContainers", []) == []


def test_list_element_patch_replace_makes_list_a_replacement() -> None:
    doc = deployment({"name": "a", "image": "a"}, {"name": "b", "image": "b"})
    patch = {
        "spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c", "x": None}]}}}
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["containers"] == [{"name": "c", "image": "c"}]


def test_list_element_patch_merge_is_rejected() -> None:
    err = smp_error(deployment(), {"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}})
    assert err.code == 400


def test_list_element_unknown_directive_is_rejected() -> None:
    err = smp_error(deployment(), {"spec": {"template": {"spec": {"containers": [{"$patch": "x", "name": "a"}]}}}})
    assert err.code == 400
    assert "unknown patch type" in err.message


def test_item_without_merge_key_is_400() -> None:
    err = smp_error(deployment(), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == "map: map[image:x] does not contain declared merge key: name"


def test_delete_item_without_merge_key_is_400() -> None:
    err = smp_error(deployment(), {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}})
    assert err.code == 400
    assert "does not contain declared merge key: name" in err.message


def test_nested_merge_lists_env_and_ports() -> None:
    app = {
        "name": "app",
        "image": "x",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
    }
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "3"}],
                            "ports": [{"containerPort": 80, "name": "http"}],
                        }
                    ]
                }
            }
        }
    }
    out = apply_strategic_merge_patch(deployment(app), patch, DEPLOYMENT)
    c = pod_spec(out)["containers"][0]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]


def test_service_ports_keyed_by_port_only() -> None:
    svc = {
        "kind": "Service",
        "spec": {
            "ports": [
                {"name": "dns", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080},
            ]
        },
    }
    # A UDP port 53 in the patch matches the TCP port 53 item (SMP keys on `port` alone).
    patch = {"spec": {"ports": [{"name": "dns-udp", "port": 53, "protocol": "UDP"}]}}
    out = apply_strategic_merge_patch(svc, patch, SERVICE)
    assert out["spec"]["ports"] == [
        {"name": "dns-udp", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080},
    ]


def test_merge_key_values_are_type_sensitive() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "a"}]}}
    out = apply_strategic_merge_patch(svc, {"spec": {"ports": [{"port": "80", "name": "b"}]}}, SERVICE)
    assert len(out["spec"]["ports"]) == 2


def test_owner_references_merge_by_uid() -> None:
    doc = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    out = apply_strategic_merge_patch(
        doc, {"metadata": {"ownerReferences": [{"uid": "2", "controller": True}]}}, CONFIGMAP
    )
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "1", "name": "a"},
        {"uid": "2", "name": "b", "controller": True},
    ]


def test_status_conditions_merge_by_type() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}
    patch = {
        "status": {
            "$setElementOrder/conditions": [{"type": "Ready"}, {"type": "Initialized"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    out = apply_strategic_merge_patch(pod, patch, POD)
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]


def test_merge_list_with_mixed_element_types_is_400() -> None:
    err = smp_error({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [{"x": 1}]}}, CONFIGMAP)
    assert err.code == 400


def test_list_of_lists_in_merge_list_is_422() -> None:
    err = smp_error({"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}}, CONFIGMAP)
    assert (err.code, err.reason) == (422, "Invalid")


def test_merge_strategy_object_list_without_merge_key_is_400() -> None:
    types = TableFieldTypes({("items",): FieldType(smp="merge")})
    err = smp_error({"items": [{"a": 1}]}, {"items": [{"a": 2}]}, types)
    assert err.code == 400


# --- $setElementOrder ---------------------------------------------------------------------------


def test_set_element_order_reorders_patch_items_and_keeps_server_only_relative_positions() -> None:
    doc = deployment(*({"name": n, "image": n} for n in ["a", "b", "c"]))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "d"}],
                    "containers": [{"name": "d", "image": "d"}],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    got = names(pod_spec(out)["containers"])
    assert sorted(got) == ["a", "b", "c", "d"]
    assert got.index("c") < got.index("a") < got.index("d")


def test_set_element_order_only_reorders() -> None:
    doc = deployment(*({"name": n, "image": n} for n in ["a", "b", "c"]))
    patch = {
        "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}}}
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert names(pod_spec(out)["containers"]) == ["c", "b", "a"]


def test_set_element_order_with_list_absent_on_server() -> None:
    doc = deployment()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/volumes": [{"name": "b"}, {"name": "a"}],
                    "volumes": [
                        {"name": "b", "emptyDir": None, "secret": {"x": 1}},
                        {"$patch": "delete", "name": "zzz"},
                        {"name": "a", "emptyDir": {}},
                    ],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert pod_spec(out)["volumes"] == [{"name": "b", "secret": {"x": 1}}, {"name": "a", "emptyDir": {}}]
    assert no_directives(out)


def test_set_element_order_mismatch_is_400() -> None:
    doc = deployment(*({"name": n, "image": n} for n in ["a", "b"]))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}],
                    "containers": [{"name": "b", "image": "b2"}],
                }
            }
        }
    }
    err = smp_error(doc, patch)
    assert err.code == 400
    assert "doesn't match $setElementOrder list" in err.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("$setElementOrder/containers", "app"),
        ("$setElementOrder", [{"name": "app"}]),
        ("$setElementOrderX/containers", [{"name": "app"}]),
    ],
)
def test_malformed_set_element_order_is_400(key: str, value: Any) -> None:
    err = smp_error(deployment(), {"spec": {"template": {"spec": {key: value}}}})
    assert (err.code, err.message) == (400, "invalid patch format of setElementOrder list")


def test_set_element_order_entries_need_merge_key() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {"$setElementOrder/containers": [{"image": "x"}], "containers": [{"name": "app", "image": "y"}]}
            }
        }
    }
    err = smp_error(deployment(), patch)
    assert err.code == 400


# --- directives never stored -------------------------------------------------------------------


def test_directives_and_nulls_stripped_from_values_for_absent_keys() -> None:
    doc = {"kind": "Deployment", "spec": {}}
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
            "template": {
                "metadata": {"labels": {"a": "1", "b": None}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "c"}],
                    "containers": [{"name": "c", "image": "c", "$patch": "replace"}, {"name": "d", "args": None}],
                    "affinity": {"$patch": "delete"},
                    "nodeSelector": {"$patch": "replace", "disk": "ssd"},
                    "$deleteFromPrimitiveList/x": ["y"],
                },
            },
        }
    }
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert out == {
        "kind": "Deployment",
        "spec": {
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"a": "1"}},
                "spec": {"containers": [{"name": "d"}], "nodeSelector": {"disk": "ssd"}},
            },
        },
    }
    assert no_directives(out)


def test_cronjob_containers_merge_through_job_template() -> None:
    types = builtin_field_types("batch", "CronJob")
    doc = {
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}}
                }
            }
        }
    }
    patch = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b2"}]}}}}}}
    out = apply_strategic_merge_patch(doc, patch, types)
    containers = out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert {c["name"]: c["image"] for c in containers} == {"a": "a", "b": "b2"}


def test_rollout_restart_annotation() -> None:
    patch = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-02T03:04:05Z"}}}
        }
    }
    out = apply_strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-02T03:04:05Z"},
    }
    assert pod_spec(out) == pod_spec(deployment())


def test_top_level_patch_delete_empties_the_object() -> None:
    assert apply_strategic_merge_patch(deployment(), {"$patch": "delete"}, DEPLOYMENT) == {}


def test_replace_strategy_map_patch_delete_removes_it() -> None:
    pdb = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    out = apply_strategic_merge_patch(pdb, {"spec": {"selector": {"$patch": "delete"}}}, PDB)
    assert out == {"spec": {"minAvailable": 1}}
