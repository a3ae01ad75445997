"""Server-side apply and managedFields bookkeeping (patch/apply.py), spec §4."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.patch.apply import (
    LAST_APPLIED,
    decode_managed_fields,
    server_side_apply,
    update_managed_fields,
)
from clusterset.apiserver.patch.fieldsets import fields_to_set
from clusterset.apiserver.patch.typeinfo import FieldTypes, SchemaFieldTypes, builtin_field_types

DEPLOY = builtin_field_types("apps", "Deployment")
T0, T1, T2, T3 = "2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z", "2026-03-01T10:00:02Z", "2026-03-01T10:00:03Z"

Obj = dict[str, Any]


def deployment(spec: Obj | None = None, **meta: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", **meta}, "spec": spec or {}}


def manifest(image: str = "web:1", replicas: int | None = 3, **extra: Any) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        **extra,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return deployment(spec)


def finalizer(live: Obj | None, subresource: str | None = None) -> Callable[[Obj], Obj]:
    """Stands in for the core: the reset-field rule plus a few defaults."""

    def finalize(obj: Obj) -> Obj:
        if subresource == "status":
            assert live is not None
            out = copy.deepcopy(live)
            out["status"] = obj.get("status", {})
            return out
        if live is not None and "status" in live:
            obj["status"] = copy.deepcopy(live["status"])
        else:
            obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        for c in spec.get("template", {}).get("spec", {}).get("containers", []):
            for p in c.get("ports", []):
                p.setdefault("protocol", "TCP")
        return obj

    return finalize


def apply(live: Obj | None, config: Obj, manager: str, *, now: str = T0, force: bool = False,
          subresource: str | None = None, types: FieldTypes = DEPLOY, api_version: str = "apps/v1") -> Obj:
    return server_side_apply(
        copy.deepcopy(live), copy.deepcopy(config), manager=manager, force=force, types=types,
        api_version=api_version, now=now, subresource=subresource, finalize=finalizer(live, subresource),
        resource="deployments", group="apps",
    )


def update(live: Obj | None, new: Obj, manager: str, *, now: str = T0, subresource: str | None = None,
           types: FieldTypes = DEPLOY, create: bool = False) -> Obj:
    """Runs an Update like the core does and returns the stored object."""
    out = copy.deepcopy(new)
    mf = update_managed_fields(
        copy.deepcopy(live), copy.deepcopy(new), manager=manager, api_version="apps/v1", now=now,
        subresource=subresource, types=types, operation_is_create=create,
    )
    out["metadata"]["managedFields"] = mf
    if not mf:
        del out["metadata"]["managedFields"]
    return out


def entry(obj: Obj, manager: str, operation: str | None = None) -> Obj:
    found: list[Obj] = [e for e in obj["metadata"].get("managedFields", [])
             if e["manager"] == manager and (operation is None or e["operation"] == operation)]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]


def managers(obj: Obj) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


def conflict_of(fn: Callable[[], Any]) -> StatusError:
    with pytest.raises(StatusError) as info:
        fn()
    assert info.value.code == 409
    return info.value


WEB = 'k:{"name":"web"}'


# ----------------------------------------------------------------------------- create / no-op


def test_apply_creates_with_only_the_appliers_entry() -> None:
    out = apply(None, manifest(), "kubectl")
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "web:1"}]
    assert out["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        # Exactly the §4.3 example: name and other metadata are never tracked.
        "fieldsV1": {"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {
            "f:containers": {WEB: {".": {}, "f:image": {}, "f:name": {}}}}}}},
    }]


def test_reapply_unchanged_is_a_noop_with_same_time() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["metadata"]["resourceVersion"] = "7"
    again = apply(live, manifest(), "kubectl", now=T2)
    assert again == live
    assert again is not live
    assert entry(again, "kubectl")["time"] == T0


def test_apply_change_refreshes_time_and_value() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    out = apply(live, manifest(image="web:2"), "kubectl", now=T2)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
    assert entry(out, "kubectl")["time"] == T2


# ----------------------------------------------------------------------------- sharing / conflicts


def test_second_applier_with_same_value_shares_without_conflict() -> None:
    live = apply(None, manifest(), "a", now=T0)
    out = apply(live, deployment({"replicas": 3}), "b", now=T1)
    assert {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in live.items() if k != "metadata"}
    assert "f:replicas" in entry(out, "a")["fieldsV1"]["f:spec"]
    assert entry(out, "b")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert managers(out) == [("a", "Apply"), ("b", "Apply")]


def test_conflicting_apply_gets_409_with_exact_shape() -> None:
    live = apply(None, manifest(), "a", now=T0)
    err = conflict_of(lambda: apply(live, deployment({"replicas": 5}), "b", now=T1))
    status = err.to_status()
    assert status["reason"] == "Conflict" and status["code"] == 409 and status["status"] == "Failure"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".spec.replicas"}]


def test_multiple_conflicts_grouped_by_manager() -> None:
    live = apply(None, manifest(), "a", now=T0)
    changed = copy.deepcopy(live)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "web:9"
    live = update(live, changed, "ctrl", now=T1)
    config = manifest(image="web:3", replicas=7)
    err = conflict_of(lambda: apply(live, config, "b", now=T2))
    image = '.spec.template.spec.containers[name="web"].image'
    assert err.message == (
        'Apply failed with 2 conflicts: conflicts with "a":\n- .spec.replicas\n'
        f'conflicts with "ctrl" using apps/v1 at {T1}:\n- {image}'
    )
    assert [(c["field"], c["message"]) for c in err.details["causes"]] == [
        (".spec.replicas", 'conflict with "a"'),
        (image, f'conflict with "ctrl" using apps/v1 at {T1}'),
    ]


def test_force_takes_ownership() -> None:
    live = apply(None, manifest(), "a", now=T0)
    out = apply(live, deployment({"replicas": 5}), "b", now=T1, force=True)
    assert out["spec"]["replicas"] == 5
    assert "f:replicas" not in entry(out, "a")["fieldsV1"]["f:spec"]
    assert entry(out, "b")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert entry(out, "b")["time"] == T1 and entry(out, "a")["time"] == T0


def test_update_manager_owns_changed_fields_and_conflicts_with_apply() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 10
    live = update(live, scaled, "kube-controller-manager", now=T1)
    kcm = entry(live, "kube-controller-manager", "Update")
    assert kcm["fieldsV1"] == {"f:spec": {"f:replicas": {}}} and kcm["apiVersion"] == "apps/v1"
    assert "f:replicas" not in entry(live, "kubectl")["fieldsV1"]["f:spec"]
    assert managers(live) == [("kubectl", "Apply"), ("kube-controller-manager", "Update")]

    err = conflict_of(lambda: apply(live, manifest(replicas=3), "kubectl", now=T2))
    assert err.message == (
        f'Apply failed with 1 conflict: conflict with "kube-controller-manager" using apps/v1 at {T1}: .spec.replicas')
    # Applying the value the controller already set is not a conflict: ownership is shared.
    shared = apply(live, manifest(replicas=10), "kubectl", now=T2)
    assert "f:replicas" in entry(shared, "kubectl")["fieldsV1"]["f:spec"]
    assert "f:replicas" in entry(shared, "kube-controller-manager")["fieldsV1"]["f:spec"]


def test_subresource_owner_named_in_conflict() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["status"] = {}
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    live = update(live, new, "kcm", now=T1, subresource="status")
    assert entry(live, "kcm")["subresource"] == "status"
    err = conflict_of(lambda: apply(live, deployment({}) | {"status": {"replicas": 2}}, "other", now=T2,
                                    subresource="status"))
    assert err.details["causes"][0]["message"] == f'conflict with "kcm" with subresource "status" using apps/v1 at {T1}'


# ----------------------------------------------------------------------------- pruning


def test_removed_fields_are_pruned_and_defaults_return() -> None:
    cfg = manifest()
    cfg["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    live = apply(None, cfg, "kubectl", now=T0)
    cfg2 = manifest(replicas=None)
    cfg2["metadata"]["labels"] = {"app": "web"}
    out = apply(live, cfg2, "kubectl", now=T1)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["replicas"] == 1  # pruned, then defaulted by finalize
    fields = entry(out, "kubectl")["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert "f:replicas" not in fields["f:spec"]


def test_dropping_all_labels_removes_the_emptied_map() -> None:
    cfg = manifest()
    cfg["metadata"]["labels"] = {"tier": "fe"}
    live = apply(None, cfg, "kubectl", now=T0)
    out = apply(live, manifest(), "kubectl", now=T1)
    assert "labels" not in out["metadata"]


def test_shared_field_is_not_pruned() -> None:
    cfg = manifest()
    cfg["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    live = apply(None, cfg, "a", now=T0)
    live = apply(live, deployment({}, labels={"tier": "fe"}), "b", now=T1)
    out = apply(live, manifest(), "a", now=T2)
    assert out["metadata"]["labels"] == {"tier": "fe"}
    assert "f:metadata" not in entry(out, "a")["fieldsV1"]
    assert entry(out, "b")["fieldsV1"]["f:metadata"] == {"f:labels": {"f:tier": {}}}


def test_item_kept_when_someone_else_owns_something_under_it() -> None:
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    live = apply(None, cfg, "kubectl", now=T0)
    patched = copy.deepcopy(live)
    patched["spec"]["template"]["spec"]["containers"][1]["image"] = "s:2"
    live = update(live, patched, "kubectl-set", now=T1)
    out = apply(live, manifest(), "kubectl", now=T2)  # sidecar dropped from the manifest
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "web", "image": "web:1"}, {"name": "sidecar", "image": "s:2"}]
    assert 'k:{"name":"sidecar"}' not in entry(out, "kubectl")["fieldsV1"]["f:spec"]["f:template"]["f:spec"][
        "f:containers"]


def test_unshared_item_is_pruned() -> None:
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    live = apply(None, cfg, "kubectl", now=T0)
    out = apply(live, manifest(), "kubectl", now=T1)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_fields_set_by_update_managers_are_never_pruned() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    edited = copy.deepcopy(live)
    edited["spec"]["minReadySeconds"] = 5
    live = update(live, edited, "kubectl-edit", now=T1)
    out = apply(live, manifest(image="web:2"), "kubectl", now=T2)
    assert out["spec"]["minReadySeconds"] == 5


# ----------------------------------------------------------------------------- schema-driven merge


def test_containers_by_name_ports_by_port_and_defaulted_protocol() -> None:
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"] = [
        {"name": "web", "image": "web:1", "ports": [{"containerPort": 80, "name": "http"}]},
        {"name": "log", "image": "log:1"},
    ]
    live = apply(None, cfg, "kubectl", now=T0)
    assert live["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"}]
    web = entry(live, "kubectl")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][WEB]
    assert web["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {},
                                                                         "f:name": {}}}

    # Another manager adds a UDP port 80 and a container; the ports do not collide (full key tuple).
    other = deployment({"template": {"spec": {"containers": [
        {"name": "dns", "image": "dns:1"},
        {"name": "web", "ports": [{"containerPort": 80, "protocol": "UDP", "name": "dns"}]},
    ]}}})
    out = apply(live, other, "other", now=T1)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["dns", "web", "log"]  # config order, live-only keeps place
    assert containers[1]["image"] == "web:1"  # merged per key, not replaced
    assert containers[1]["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 80, "protocol": "UDP", "name": "dns"},
    ]


def test_atomic_fields_replaced_whole() -> None:
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = ["a", "b"]
    cfg["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd", "zone": "a"}
    live = apply(None, cfg, "kubectl", now=T0)
    cfg2 = manifest()
    cfg2["spec"]["template"]["spec"]["containers"][0]["args"] = ["c"]
    cfg2["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "b"}
    out = apply(live, cfg2, "kubectl", now=T1)
    assert out["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]
    assert out["spec"]["template"]["spec"]["nodeSelector"] == {"zone": "b"}
    fields = entry(out, "kubectl")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert fields["f:nodeSelector"] == {}


def test_finalizers_are_a_set_union() -> None:
    def body(finalizer: str) -> Obj:
        out = deployment({}, finalizers=[finalizer])
        del out["spec"]
        return out

    live = apply(None, body("a.io/x"), "one", now=T0)
    out = apply(live, body("b.io/y"), "two", now=T1)
    assert out["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    assert entry(out, "two")["fieldsV1"] == {"f:metadata": {"f:finalizers": {'v:"b.io/y"': {}}}}


CR_SCHEMA: Obj = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
    "spec": {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "string"}},
        "hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "routes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                   "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                              "port": {"type": "integer"}}}},
    }},
}}


def widget(spec: Obj) -> Obj:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def cr_apply(live: Obj | None, config: Obj, manager: str, **kw: Any) -> Obj:
    return server_side_apply(
        copy.deepcopy(live), copy.deepcopy(config), manager=manager, types=SchemaFieldTypes(CR_SCHEMA),
        api_version="example.com/v1", subresource=None, finalize=lambda o: o, resource="widgets",
        group="example.com", **{"force": False, "now": T1, **kw},
    )


def test_cr_lists_atomic_unless_typed() -> None:
    types = SchemaFieldTypes(CR_SCHEMA)
    created = widget({"items": ["a", "b"], "hosts": ["x"], "routes": [{"name": "r1", "port": 1}]})
    mf = update_managed_fields(None, created, manager="creator", api_version="example.com/v1", now=T0,
                               subresource=None, types=types, operation_is_create=True)
    assert mf[0]["fieldsV1"]["f:spec"] == {
        ".": {}, "f:hosts": {".": {}, 'v:"x"': {}}, "f:items": {},
        "f:routes": {".": {}, 'k:{"name":"r1"}': {".": {}, "f:name": {}, "f:port": {}}},
    }
    live = {**created, "metadata": {"name": "w", "managedFields": mf}}
    out = cr_apply(live, widget({"items": ["c"], "hosts": ["y"], "routes": [{"name": "r2"}]}), "b", force=True)
    assert out["spec"] == {"items": ["c"], "hosts": ["x", "y"],
                           "routes": [{"name": "r1", "port": 1}, {"name": "r2"}]}
    assert entry(out, "b")["fieldsV1"] == {"f:spec": {
        "f:hosts": {'v:"y"': {}}, "f:items": {}, "f:routes": {'k:{"name":"r2"}': {".": {}, "f:name": {}}}}}
    assert "f:items" not in entry(out, "creator")["fieldsV1"]["f:spec"]  # forced away
    # Without force, replacing the atomic list is a conflict with its owner.
    err = conflict_of(lambda: cr_apply(live, widget({"items": ["c"]}), "b"))
    assert err.details["causes"][0]["field"] == ".spec.items"


# ----------------------------------------------------------------------------- status / reset fields


def test_status_apply_is_recorded_with_subresource_and_never_claims_spec() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["status"] = {}
    cfg = manifest(replicas=99) | {"status": {"conditions": [{"type": "Available", "status": "True"}]}}
    out = apply(live, cfg, "kcm", now=T1, subresource="status")
    assert out["spec"]["replicas"] == 3  # reset field: spec is not written through /status
    assert out["status"]["conditions"] == [{"type": "Available", "status": "True"}]
    kcm = entry(out, "kcm")
    assert kcm["subresource"] == "status" and kcm["operation"] == "Apply"
    assert kcm["fieldsV1"] == {"f:status": {"f:conditions": {
        'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}}}
    assert entry(out, "kubectl") == entry(live, "kubectl")


def test_main_resource_apply_never_claims_status() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["status"] = {"replicas": 1}
    out = apply(live, manifest() | {"status": {"replicas": 50}}, "kubectl", now=T1)
    assert out["status"] == {"replicas": 1}
    assert "f:status" not in entry(out, "kubectl")["fieldsV1"]


def test_status_update_matches_spec_example() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["status"] = {}
    new = copy.deepcopy(live)
    new["status"] = {"conditions": [{"type": "Available", "status": "True"}]}
    new["spec"]["replicas"] = 42  # ignored: not a status field
    out = update(live, new, "kube-controller-manager", now=T2, subresource="status")
    assert entry(out, "kube-controller-manager") == {
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": T2,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:conditions": {".": {}, 'k:{"type":"Available"}': {
            ".": {}, "f:status": {}, "f:type": {}}}}},
        "subresource": "status",
    }


# ----------------------------------------------------------------------------- Update bookkeeping


def test_create_update_owns_everything_including_new_maps() -> None:
    obj = manifest()
    obj["metadata"]["labels"] = {"app": "web"}
    out = update(None, obj, "kubectl-create", now=T0, create=True)
    fields = entry(out, "kubectl-create")["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert fields["f:spec"]["f:replicas"] == {}
    assert entry(out, "kubectl-create")["operation"] == "Update"


def test_update_takes_only_changed_paths_and_time_moves_only_then() -> None:
    live = update(None, manifest(), "creator", now=T0, create=True)
    same = copy.deepcopy(live)
    out = update(live, same, "editor", now=T1)
    assert managers(out) == [("creator", "Update")]  # resending values claims nothing
    assert out["metadata"]["managedFields"] == live["metadata"]["managedFields"]  # no-op stays a no-op
    changed = copy.deepcopy(live)
    changed["spec"]["replicas"] = 4
    out = update(live, changed, "editor", now=T1)
    assert entry(out, "editor")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entry(out, "creator")["fieldsV1"]["f:spec"]
    again = update(out, copy.deepcopy(out), "editor", now=T2)
    assert entry(again, "editor")["time"] == T1


def test_removed_paths_leave_every_owner() -> None:
    live = apply(None, manifest(minReadySeconds=5), "kubectl", now=T0)
    removed = copy.deepcopy(live)
    del removed["spec"]["minReadySeconds"]
    out = update(live, removed, "kubectl-edit", now=T1)
    assert "f:minReadySeconds" not in entry(out, "kubectl")["fieldsV1"]["f:spec"]
    assert ("kubectl-edit", "Update") not in managers(out)  # took nothing, so no entry


def test_reset_with_empty_entry_and_untracked_objects_stay_untracked() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = [{}]
    out = update(live, reset, "kubectl-patch", now=T1)
    assert "managedFields" not in out["metadata"]
    changed = copy.deepcopy(out)
    changed["spec"]["replicas"] = 9
    assert "managedFields" not in update(out, changed, "someone", now=T2)["metadata"]
    # An empty list is not a reset: the live list is kept.
    empty = copy.deepcopy(live)
    empty["metadata"]["managedFields"] = []
    assert update(live, empty, "x", now=T1)["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_valid_list_in_request_becomes_baseline() -> None:
    live = update(None, manifest(), "kubectl-client-side-apply", now=T0, create=True)
    migrated = copy.deepcopy(live)
    migrated["metadata"]["managedFields"] = [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    out = update(live, migrated, "kubectl", now=T2)
    assert out["metadata"]["managedFields"] == migrated["metadata"]["managedFields"]
    # An invalid list is ignored and the live one kept.
    bad = copy.deepcopy(live)
    bad["metadata"]["managedFields"] = [{"manager": "x", "operation": "Bogus"}]
    assert update(live, bad, "y", now=T2)["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_subresource_update_ignores_managed_fields_in_request() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["status"] = {}
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{}]
    new["status"] = {"replicas": 2}
    out = update(live, new, "kcm", now=T1, subresource="status")
    assert managers(out) == [("kubectl", "Apply"), ("kcm", "Update")]


def test_entries_sorted_apply_first_then_time() -> None:
    live = apply(None, manifest(), "z-applier", now=T2)
    changed = copy.deepcopy(live)
    changed["spec"]["minReadySeconds"] = 1
    live = update(live, changed, "a-updater", now=T1)
    live = apply(live, deployment({"paused": True}), "b-applier", now=T3)
    assert managers(live) == [("z-applier", "Apply"), ("b-applier", "Apply"), ("a-updater", "Update")]


# ----------------------------------------------------------------------------- body validation


@pytest.mark.parametrize(("body", "message"), [
    ({**manifest(), "apiVersion": "apps/v1beta1"},
     "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"),
    ({k: v for k, v in manifest().items() if k != "kind"}, "invalid object type: apps/v1, Kind="),
    (deployment({}, managedFields=[]), "metadata.managedFields must be nil"),
    (deployment({"template": {"spec": {"containers": [{"image": "x"}]}}}),
     'failed to create typed patch object (/web; apps/v1, Kind=Deployment): .spec.template.spec.containers: '
     'element 0: associative list with keys has an element that omits key field "name" '
     "(and doesn't have default value)"),
])
def test_bad_apply_bodies_get_400(body: Obj, message: str) -> None:
    with pytest.raises(StatusError) as info:
        apply(None, body, "kubectl")
    assert info.value.code == 400
    assert info.value.message == message


def test_resource_version_in_body_is_a_precondition() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["metadata"]["resourceVersion"] = "5"
    stale = deployment({"replicas": 3}, resourceVersion="4")
    err = conflict_of(lambda: apply(live, stale, "kubectl", now=T1))
    assert "the object has been modified" in err.message
    fresh = deployment({"replicas": 3}, resourceVersion="5")
    assert apply(live, fresh, "other", now=T1)["spec"]["replicas"] == 3


# ----------------------------------------------------------------------------- last-applied


def test_kubectl_apply_rewrites_existing_last_applied_annotation() -> None:
    live = apply(None, manifest(), "kubectl", now=T0)
    live["metadata"]["annotations"] = {LAST_APPLIED: '{"old":true}\n', "keep": "me"}
    cfg = manifest(image="a<b")
    out = apply(live, cfg, "kubectl", now=T1)
    value = out["metadata"]["annotations"][LAST_APPLIED]
    assert value.endswith("}\n") and "\\u003c" in value
    assert json.loads(value) == cfg
    assert out["metadata"]["annotations"]["keep"] == "me"
    assert apply(out, cfg, "kubectl", now=T2) == out  # the rewrite is stable: re-applying is a no-op
    # Other managers, and objects without the annotation, are left alone.
    other = apply(live, cfg, "helm", now=T1, force=True)
    assert other["metadata"]["annotations"][LAST_APPLIED] == '{"old":true}\n'
    plain = apply(None, cfg, "kubectl")
    assert "annotations" not in plain["metadata"]


def test_last_applied_excludes_the_annotation_itself() -> None:
    cfg = manifest()
    cfg["metadata"]["annotations"] = {LAST_APPLIED: "stale"}
    out = apply(None, cfg, "kubectl")
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED]) == manifest()


def test_managed_fields_output_is_valid_fields_v1() -> None:
    live = apply(None, manifest(), "kubectl")
    for e in live["metadata"]["managedFields"]:
        assert fields_to_set(e["fieldsV1"])  # decodes and is non-empty
        assert set(e) <= {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"}


def test_a_remembered_fieldsv1_decodes_to_a_set_of_its_own() -> None:
    """Decoded tries are remembered by their JSON: each decode is still a fresh set (an apply changes the sets
    of the entries it decoded), equal to a fresh walk."""
    raw = apply(None, manifest(), "a")["metadata"]["managedFields"]
    first, second = decode_managed_fields(raw), decode_managed_fields(copy.deepcopy(raw))
    assert first[0].fields == second[0].fields == fields_to_set(raw[0]["fieldsV1"])
    first[0].fields.clear()
    assert decode_managed_fields(raw)[0].fields == fields_to_set(raw[0]["fieldsV1"])
