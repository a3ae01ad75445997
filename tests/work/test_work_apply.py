"""A member's agent applies the Works of its hub namespace: AppliedWork, ownerReferences, conditions, status feedback,
updates, drift, invalid manifests, removed manifests, and deletion with each propagation policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.conftest import KUBECTLS, Kubectl
from tests.helpers import core, table, wait_until
from tests.work.fleet import Works, configmap, deployment, namespace, running_fleet

Obj = dict[str, object]
WELL_KNOWN = [{"resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": "shop", "name": "web"},
               "feedbackRules": [{"type": "WellKnownStatus"}]}]


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Works]:
    with running_fleet(tmp_path_factory.mktemp("work-apply") / "fleet") as fleet:
        yield Works(fleet)


def cm(works: Works, member: str, ns: str, name: str) -> Obj | None:
    return works.read(member, lambda api: client.CoreV1Api(api).read_namespaced_config_map(name, ns))


def deploy(works: Works, member: str, ns: str, name: str) -> Obj | None:
    return works.read(member, lambda api: client.AppsV1Api(api).read_namespaced_deployment(name, ns))


def status_of(works: Works, member: str, name: str, type_: str) -> tuple[str, str] | None:
    c = works.condition(member, name, type_)
    return None if c is None else (c["status"], c["reason"])


def test_a_work_is_applied_owned_by_its_applied_work_and_reports_ready_replicas(works: Works) -> None:
    works.create("member-1", "shop", [namespace("shop"), configmap("settings", "shop", mode="blue"),
                                      deployment("web", "shop", replicas=2)], manifestConfigs=WELL_KNOWN)
    wait_until(lambda: status_of(works, "member-1", "shop", "Available") == ("True", "ResourcesAvailable"), 30,
               message="the Work Available")
    assert status_of(works, "member-1", "shop", "Applied") == ("True", "AppliedWorkComplete")
    assert status_of(works, "member-1", "shop", "Degraded") == ("False", "AsExpected")
    assert wait_until(lambda: works.feedback("member-1", "shop", 2).get("readyReplicas") == 2, 20,
                      message="readyReplicas in the feedback")
    values = works.feedback("member-1", "shop", 2)
    assert values["replicas"] == 2 and values["availableReplicas"] == 2 and values["updatedReplicas"] == 2

    work = works.work("member-1", "shop")
    assert work is not None and "multicluster.x-k8s.io/work-cleanup" in work["metadata"]["finalizers"]
    idents = [m["identifier"] for m in work["status"]["manifestConditions"]]
    assert idents[2] == {"ordinal": 2, "group": "apps", "version": "v1", "kind": "Deployment",
                         "resource": "deployments", "namespace": "shop", "name": "web"}
    assert idents[0]["namespace"] == "" and idents[0]["resource"] == "namespaces"

    applied = works.applied_work("member-1", "shop")
    assert applied is not None
    assert applied["spec"] == {"workName": "shop", "workNamespace": "clusterset-member-1"}
    ns = works.read("member-1", lambda api: client.CoreV1Api(api).read_namespace("shop"))
    settings, web = cm(works, "member-1", "shop", "settings"), deploy(works, "member-1", "shop", "web")
    assert ns and settings and web
    uids = {r["name"]: r["uid"] for r in applied["status"]["appliedResources"]}
    assert uids == {"shop": ns["metadata"]["uid"], "settings": settings["metadata"]["uid"],
                    "web": web["metadata"]["uid"]}
    owner = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "AppliedWork", "name": "shop",
             "uid": applied["metadata"]["uid"]}
    for obj in (settings, web):
        assert obj["metadata"]["ownerReferences"] == [owner]
        assert obj["metadata"]["labels"]["clusterset.io/work"] == "clusterset-member-1.shop"
    assert "ownerReferences" not in ns["metadata"]  # cluster-scoped: tracked in appliedResources only
    managers = {m["manager"] for m in web["metadata"]["managedFields"]}
    assert "clusterset-work" in managers
    assert works.applied_work("member-2", "shop") is None  # another member's Works are not this agent's


@pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed on this machine")
def test_kubectl_shows_a_works_conditions_and_the_applied_work(works: Works, tmp_path: Path) -> None:
    works.create("member-2", "shown", [configmap("shown", "default", n="1")])
    wait_until(lambda: status_of(works, "member-2", "shown", "Available") == ("True", "ResourcesAvailable"), 20)
    binary = KUBECTLS[max(KUBECTLS)]
    hub = Kubectl(binary, works.info("hub"), tmp_path / "hub-cache")
    rows = table(hub("get", "works", "-n", "clusterset-member-2"))
    assert rows[0][:4] == ["NAME", "APPLIED", "AVAILABLE", "DEGRADED"]
    assert next(r for r in rows if r[0] == "shown")[1:4] == ["True", "True", "False"]
    member = Kubectl(binary, works.info("member-2"), tmp_path / "member-cache")
    rows = table(member("get", "appliedworks"))
    assert next(r for r in rows if r[0] == "shown")[1:3] == ["clusterset-member-2", "shown"]


def test_scaling_the_deployment_in_the_work_scales_it_on_the_member(works: Works) -> None:
    works.create("member-2", "scale", [namespace("scale"), deployment("web", "scale", replicas=1)],
                 manifestConfigs=[{**WELL_KNOWN[0], "resourceIdentifier": {**WELL_KNOWN[0]["resourceIdentifier"],
                                                                           "namespace": "scale"}}])
    wait_until(lambda: works.feedback("member-2", "scale", 1).get("readyReplicas") == 1, 30)
    works.set_manifests("member-2", "scale", [namespace("scale"), deployment("web", "scale", replicas=3)])
    wait_until(lambda: (deploy(works, "member-2", "scale", "web") or {}).get("spec", {}).get("replicas") == 3, 15,
               message="the Deployment scaled")
    wait_until(lambda: works.feedback("member-2", "scale", 1).get("readyReplicas") == 3, 30,
               message="3 ready replicas in the feedback")
    assert status_of(works, "member-2", "scale", "Available") == ("True", "ResourcesAvailable")


def test_json_paths_feedback_reads_fields_conditions_and_reports_a_bad_path(works: Works) -> None:
    rules = [{"type": "JSONPaths", "jsonPaths": [
        {"name": "ready", "path": ".readyReplicas"},
        {"name": "available", "path": '.conditions[?(@.type=="Available")].status'},
        {"name": "firstCondition", "path": ".conditions[0].type"},
        {"name": "bad", "path": "readyReplicas"},
    ]}]
    works.create("member-1", "paths", [namespace("paths"), deployment("web", "paths", replicas=1)],
                 manifestConfigs=[{"resourceIdentifier": {"group": "apps", "resource": "deployments",
                                                          "namespace": "paths", "name": "web"},
                                   "feedbackRules": rules}])
    values = wait_until(lambda: (v := works.feedback("member-1", "paths", 1)).get("ready") == 1 and v, 30,
                        message="JSONPaths feedback")
    assert values["available"] == "True"
    assert isinstance(values["firstCondition"], str)
    assert "bad" not in values
    synced = works.manifest_condition("member-1", "paths", 1, "StatusFeedbackSynced")
    assert synced is not None and synced["status"] == "False"
    assert "'bad'" in synced["message"] and "must start with '.'" in synced["message"]
    assert status_of(works, "member-1", "paths", "Applied") == ("True", "AppliedWorkComplete")


def test_drift_is_corrected_and_a_deleted_object_recreated(works: Works) -> None:
    works.create("member-2", "drift", [namespace("drift"), configmap("settings", "drift", mode="blue")])
    wait_until(lambda: cm(works, "member-2", "drift", "settings"), 20)
    api = core(works.info("member-2"))
    api.patch_namespaced_config_map("settings", "drift", {"data": {"mode": "red", "extra": "kept"}})
    wait_until(lambda: (cm(works, "member-2", "drift", "settings") or {}).get("data", {}).get("mode") == "blue", 15,
               message="the drifted field applied again")
    assert (cm(works, "member-2", "drift", "settings") or {})["data"]["extra"] == "kept"  # not a field of the Work

    old = (cm(works, "member-2", "drift", "settings") or {})["metadata"]["uid"]
    api.delete_namespaced_config_map("settings", "drift")
    again = wait_until(lambda: (o := cm(works, "member-2", "drift", "settings")) and o["metadata"]["uid"] != old
                       and o, 15, message="the deleted ConfigMap recreated")
    assert again["data"] == {"mode": "blue"}
    wait_until(lambda: any(r.get("uid") == again["metadata"]["uid"] for r in
                           (works.applied_work("member-2", "drift") or {}).get("status", {}).get("appliedResources")
                           or []), 10, message="the new uid in the AppliedWork")


def test_an_invalid_manifest_fails_only_itself_with_the_apis_message(works: Works) -> None:
    bad_service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad", "namespace": "mixed"},
                   "spec": {"ports": [{"port": 70000}]}}
    unknown = {"apiVersion": "example.com/v1", "kind": "Nonsense", "metadata": {"name": "x", "namespace": "mixed"}}
    unnamed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-", "namespace": "mixed"}}
    works.create("member-1", "mixed", [namespace("mixed"), bad_service, unknown, unnamed,
                                       configmap("good", "mixed", ok="yes"), configmap("lost", "nowhere")])
    work = works.wait_applied("member-1", "mixed")
    applied = {m["identifier"]["ordinal"]: next(c for c in m["conditions"] if c["type"] == "Applied")
               for m in work["status"]["manifestConditions"]}
    assert [applied[i]["status"] for i in range(6)] == ["True", "False", "False", "False", "True", "False"]
    assert "spec.ports[0].port" in applied[1]["message"] and "65535" in applied[1]["message"]
    assert "serves no kind Nonsense in example.com/v1" in applied[2]["message"]
    assert "metadata.name is required" in applied[3]["message"]
    assert applied[5]["message"] == 'namespaces "nowhere" not found'
    assert cm(works, "member-1", "mixed", "good") is not None
    condition = works.condition("member-1", "mixed", "Applied")
    assert condition is not None and condition["reason"] == "AppliedWorkFailed"
    assert condition["message"].startswith("4 of 6 manifests failed")
    degraded = works.manifest_condition("member-1", "mixed", 1, "Degraded")
    assert degraded is not None and (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")

    def warnings() -> list[str]:
        events = core(works.info("member-1")).list_namespaced_event(
            "default", field_selector="involvedObject.kind=AppliedWork,involvedObject.name=mixed").items
        return [e.message for e in events if e.reason == "ManifestApplyFailed"]
    assert wait_until(lambda: len(warnings()) >= 4, 10, message="a Warning per failing manifest")

    # fixed in the Work, the manifest applies; the agent kept running throughout
    bad_service["spec"] = {"ports": [{"port": 80}]}
    works.set_manifests("member-1", "mixed", [namespace("mixed"), bad_service, configmap("good", "mixed", ok="yes")])
    wait_until(lambda: status_of(works, "member-1", "mixed", "Applied") == ("True", "AppliedWorkComplete"), 15,
               message="the fixed Work applied")


def test_an_applied_work_deleted_by_hand_is_made_again_and_owns_everything(works: Works) -> None:
    works.create("member-1", "again", [namespace("again"), configmap("a", "again", n="1")])
    old = wait_until(lambda: works.applied_work("member-1", "again"), 20)
    client.CustomObjectsApi(works.api("member-1")).delete_cluster_custom_object(
        "multicluster.x-k8s.io", "v1alpha1", "appliedworks", "again")
    new = wait_until(lambda: (a := works.applied_work("member-1", "again")) and a["metadata"]["uid"] !=
                     old["metadata"]["uid"] and a, 15, message="a new AppliedWork")

    def owned() -> bool:
        obj = cm(works, "member-1", "again", "a")
        return obj is not None and [o["uid"] for o in obj["metadata"].get("ownerReferences") or []] == \
            [new["metadata"]["uid"]]
    wait_until(owned, 15, message="the ConfigMap owned by the new AppliedWork")


def test_a_crd_and_its_resource_in_one_work_apply_on_a_later_pass(works: Works) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "default"},
              "spec": {"size": 3}}
    works.create("member-2", "gadgets", [crd, gadget])
    wait_until(lambda: status_of(works, "member-2", "gadgets", "Applied") == ("True", "AppliedWorkComplete"), 20,
               message="the custom resource applied once its CRD is served")
    found = client.CustomObjectsApi(works.api("member-2")).get_namespaced_custom_object(
        "example.com", "v1", "default", "gadgets", "g")
    assert found["spec"] == {"size": 3}


def test_removing_a_manifest_deletes_its_object(works: Works) -> None:
    works.create("member-2", "trim", [namespace("trim"), configmap("a", "trim", n="1"), configmap("b", "trim", n="2")])
    wait_until(lambda: cm(works, "member-2", "trim", "b"), 20)
    works.set_manifests("member-2", "trim", [namespace("trim"), configmap("a", "trim", n="1")])
    wait_until(lambda: cm(works, "member-2", "trim", "b") is None, 15, message="the removed manifest's object gone")
    assert cm(works, "member-2", "trim", "a") is not None
    wait_until(lambda: [r["name"] for r in (works.applied_work("member-2", "trim") or {})["status"]
                        ["appliedResources"]] == ["trim", "a"], 10, message="the AppliedWork without it")


def test_deleting_a_work_deletes_what_it_applied(works: Works) -> None:
    works.create("member-1", "gone", [namespace("gone"), configmap("a", "gone", n="1"), deployment("web", "gone", 1)])
    wait_until(lambda: deploy(works, "member-1", "gone", "web"), 20)
    works.delete("member-1", "gone")
    wait_until(lambda: works.work("member-1", "gone") is None, 15, message="the Work deleted (finalizer removed)")
    assert works.applied_work("member-1", "gone") is None
    wait_until(lambda: deploy(works, "member-1", "gone", "web") is None and cm(works, "member-1", "gone", "a") is None,
               15, message="the applied objects deleted")
    ns = works.read("member-1", lambda api: client.CoreV1Api(api).read_namespace("gone"))
    assert ns is None or ns["metadata"].get("deletionTimestamp"), "the namespace is deleted too"


def test_an_object_the_member_will_not_delete_does_not_hold_the_works_deletion(works: Works) -> None:
    works.create("member-1", "default-ns", [namespace("default"), configmap("d", "default", n="1")])
    wait_until(lambda: cm(works, "member-1", "default", "d"), 20)
    works.delete("member-1", "default-ns")
    wait_until(lambda: works.work("member-1", "default-ns") is None, 15, message="the Work deleted")
    assert cm(works, "member-1", "default", "d") is None
    ns = works.read("member-1", lambda api: client.CoreV1Api(api).read_namespace("default"))
    assert ns is not None and not ns["metadata"].get("deletionTimestamp")


def test_orphan_and_selectively_orphan_keep_what_they_name(works: Works) -> None:
    works.create("member-2", "keep", [namespace("keep"), configmap("a", "keep", n="1")],
                 deleteOption={"propagationPolicy": "Orphan"})
    works.create("member-2", "some", [configmap("kept", "keep", n="1"), configmap("dropped", "keep", n="2")],
                 deleteOption={"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {"orphaningRules": [
                     {"group": "", "resource": "configmaps", "namespace": "keep", "name": "kept"}]}})
    wait_until(lambda: cm(works, "member-2", "keep", "a") and cm(works, "member-2", "keep", "dropped"), 20)
    works.delete("member-2", "keep")
    works.delete("member-2", "some")
    wait_until(lambda: works.work("member-2", "keep") is None and works.work("member-2", "some") is None, 15,
               message="both Works deleted")
    wait_until(lambda: cm(works, "member-2", "keep", "dropped") is None, 15, message="the unprotected object deleted")
    for name in ("a", "kept"):
        obj = cm(works, "member-2", "keep", name)
        assert obj is not None, f"{name} was orphaned and must stay"
        assert not obj["metadata"].get("ownerReferences"), "an orphan loses its owner (the AppliedWork)"
        assert "clusterset.io/work" not in (obj["metadata"].get("labels") or {})
    ns = works.read("member-2", lambda api: client.CoreV1Api(api).read_namespace("keep"))
    assert ns is not None and not ns["metadata"].get("deletionTimestamp")


def test_two_works_naming_one_object_share_it_alike_or_the_later_one_reports_the_conflict(works: Works) -> None:
    """The first Work to apply an object holds it: a second Work naming it alike shares it (a namespace both need),
    one naming it otherwise reports which Work holds it instead of applying over it (they applied over each other
    without end); the holder's deletion hands a shared object over instead of deleting it."""
    def work_of(obj: Obj | None) -> object:
        return ((obj or {}).get("metadata") or {}).get("annotations", {}).get("clusterset.io/work")  # type: ignore

    works.create("member-1", "first", [namespace("both"), configmap("c", "both", owner="first")])
    wait_until(lambda: work_of(cm(works, "member-1", "both", "c")) == "clusterset-member-1/first", 20,
               message="the first Work applied")
    works.create("member-1", "second", [namespace("both"), configmap("c", "both", owner="second")])
    work = works.wait_applied("member-1", "second")
    applied = {m["identifier"]["ordinal"]: next(c for c in m["conditions"] if c["type"] == "Applied")
               for m in work["status"]["manifestConditions"]}
    assert applied[0]["status"] == "True", "the namespace, named alike, is shared"
    assert applied[1]["status"] == "False" and "applied by Work clusterset-member-1/first" in applied[1]["message"]
    held = cm(works, "member-1", "both", "c")
    assert held is not None and held["data"] == {"owner": "first"}

    # another pass of the second Work (a new generation) still does not apply over the first's
    works.patch("member-1", "second", {"metadata": {"labels": {"pass": "2"}}, "spec": {"deleteOption": {
        "propagationPolicy": "Foreground"}}})
    works.wait_applied("member-1", "second")
    again = cm(works, "member-1", "both", "c")
    assert again is not None and again["metadata"]["resourceVersion"] == held["metadata"]["resourceVersion"]

    # the first Work goes: its ConfigMap with it, the shared namespace handed over; the second then applies its own
    works.delete("member-1", "first")
    wait_until(lambda: works.work("member-1", "first") is None, 20, message="the first Work deleted")
    wait_until(lambda: (cm(works, "member-1", "both", "c") or {}).get("data") == {"owner": "second"}, 20,
               message="the second Work's ConfigMap applied")
    ns = works.read("member-1", lambda api: client.CoreV1Api(api).read_namespace("both"))
    assert ns is not None and not ns["metadata"].get("deletionTimestamp"), "the shared namespace was not deleted"
    assert work_of(ns) == "clusterset-member-1/second"
    wait_until(lambda: status_of(works, "member-1", "second", "Applied") == ("True", "AppliedWorkComplete"), 15,
               message="the second Work applied in full")
