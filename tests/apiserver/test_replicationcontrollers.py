"""core/v1 ReplicationControllers and apps/v1 ControllerRevisions as kube-apiserver serves them: discovery,
defaulting, validation, the status and scale subresources, tables (the API server alone: no controllers)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
from kubernetes import watch
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl
from tests.helpers import WEB_RC, apps, core, table

RC: dict[str, Any] = {
    "metadata": {"name": "web"},
    "spec": {"template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}},
}


def raw(info: ClusterInfo, path: str) -> Any:
    answer = requests.get(f"{info.server}{path}", headers={"Authorization": f"Bearer {info.token}"},
                          verify=info.ca_file, timeout=10)
    answer.raise_for_status()
    return answer.json()


def post(info: ClusterInfo, path: str, body: dict[str, Any]) -> requests.Response:
    """Raw JSON (the official client checks required fields and drops unknown ones itself)."""
    return requests.post(f"{info.server}{path}", json=body, headers={"Authorization": f"Bearer {info.token}"},
                         verify=info.ca_file, timeout=10)


def causes_of(body: dict[str, Any], code: int) -> dict[str, str]:
    assert code == 422 and body["reason"] == "Invalid", body
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


def invalid_causes(err: ApiException) -> dict[str, str]:
    return causes_of(json.loads(err.body), err.status)


def test_replicationcontrollers_are_discovered_with_rc_and_all(cluster: ClusterInfo) -> None:
    resources = {r["name"]: r for r in raw(cluster, "/api/v1")["resources"]}
    rc = resources["replicationcontrollers"]
    assert rc["kind"] == "ReplicationController" and rc["namespaced"] is True
    assert rc["shortNames"] == ["rc"] and rc["categories"] == ["all"]
    assert set(rc["verbs"]) >= {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert resources["replicationcontrollers/status"]["kind"] == "ReplicationController"
    assert resources["replicationcontrollers/scale"]["kind"] == "Scale"
    assert resources["replicationcontrollers/scale"]["group"] == "autoscaling"

    revisions = {r["name"]: r for r in raw(cluster, "/apis/apps/v1")["resources"]}["controllerrevisions"]
    assert revisions["kind"] == "ControllerRevision" and revisions["namespaced"] is True


def test_create_defaults_selector_labels_and_replicas_from_the_template(cluster: ClusterInfo) -> None:
    created = core(cluster).create_namespaced_replication_controller("default", RC)
    assert created.spec.selector == {"app": "web", "tier": "front"}
    assert created.metadata.labels == {"app": "web", "tier": "front"}
    assert created.spec.replicas == 1
    assert created.status.replicas == 0
    assert created.metadata.generation == 1
    assert created.spec.template.spec.restart_policy == "Always"

    # an explicit selector and labels are kept
    explicit = json.loads(json.dumps(RC))
    explicit["metadata"] = {"name": "web2", "labels": {"owner": "me"}}
    explicit["spec"]["selector"] = {"app": "web"}
    explicit["spec"]["replicas"] = 0
    kept = core(cluster).create_namespaced_replication_controller("default", explicit)
    assert kept.spec.selector == {"app": "web"} and kept.metadata.labels == {"owner": "me"}
    assert kept.spec.replicas == 0


def test_selector_that_does_not_match_the_template_is_a_422_naming_the_field(cluster: ClusterInfo) -> None:
    bad = json.loads(json.dumps(RC))
    bad["spec"]["selector"] = {"app": "other"}
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_replication_controller("default", bad)
    causes = invalid_causes(exc.value)
    assert "`selector` does not match template `labels`" in causes["spec.template.metadata.labels"]

    unlabelled = {"metadata": {"name": "bare"},
                  "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_replication_controller("default", unlabelled)
    assert invalid_causes(exc.value)["spec.selector"] == "Required value"

    no_template = {"metadata": {"name": "empty"}, "spec": {"selector": {"app": "x"}}}
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_replication_controller("default", no_template)
    assert invalid_causes(exc.value)["spec.template"] == "Required value"

    never = json.loads(json.dumps(RC))
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_replication_controller("default", never)
    assert 'supported values: "Always"' in invalid_causes(exc.value)["spec.template.spec.restartPolicy"]

    negative = json.loads(json.dumps(RC))
    negative["spec"]["replicas"] = -1
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_replication_controller("default", negative)
    assert "must be greater than or equal to 0" in invalid_causes(exc.value)["spec.replicas"]


def test_scale_subresource_reads_and_writes_replicas(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_replication_controller("default", RC)
    scale = api.read_namespaced_replication_controller_scale("web", "default")
    assert (scale.spec.replicas, scale.status.replicas) == (1, 0)
    assert scale.status.selector == "app=web,tier=front"
    scaled = api.patch_namespaced_replication_controller_scale("web", "default", {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    rc = api.read_namespaced_replication_controller("web", "default")
    assert rc.spec.replicas == 4 and rc.metadata.generation == 2


def test_status_is_written_only_through_the_status_subresource(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_replication_controller("default", RC)
    api.patch_namespaced_replication_controller("web", "default", {"status": {"replicas": 9}})
    assert api.read_namespaced_replication_controller("web", "default").status.replicas == 0
    api.patch_namespaced_replication_controller_status(
        "web", "default", {"status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1}})
    status = api.read_namespaced_replication_controller("web", "default").status
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (2, 1, 1)


def test_kubectl_get_rc_columns_and_multi_document_yaml(kubectl: Kubectl) -> None:
    out = kubectl("apply", "-f", "-", input=WEB_RC)
    assert "replicationcontroller/web created" in out and "service/web created" in out
    rows = table(kubectl("get", "rc"))
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rows[1][:4] == ["web", "3", "0", "0"]
    wide = table(kubectl("get", "replicationcontroller", "web", "-o", "wide"))
    assert wide[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][5:] == ["web", "nginx:1.25", "app=web"]
    assert "replicationcontroller/web" in kubectl("get", "all", "-o", "name")
    kubectl("scale", "rc", "web", "--replicas=5")
    assert kubectl("get", "rc", "web", "-o", "jsonpath={.spec.replicas}") == "5"


# ---------------------------------------------------------------------------- ControllerRevisions
def revision(name: str, number: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "x"}},
            "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}}, "revision": number}


def test_controllerrevisions_crud_list_and_watch(cluster: ClusterInfo) -> None:
    api = apps(cluster)
    events: list[tuple[str, str]] = []
    start = api.list_namespaced_controller_revision("default").metadata.resource_version

    def follow() -> None:
        w = watch.Watch()
        for event in w.stream(api.list_namespaced_controller_revision, "default", resource_version=start,
                              timeout_seconds=5):
            events.append((event["type"], event["object"].metadata.name))
            if len(events) == 3:
                w.stop()

    watcher = threading.Thread(target=follow)
    watcher.start()
    created = api.create_namespaced_controller_revision("default", revision("x-1"))
    assert created.revision == 1 and created.data["spec"]["template"]["$patch"] == "replace"
    assert created.metadata.generation is None
    renumbered = api.patch_namespaced_controller_revision("x-1", "default", {"revision": 3})
    assert renumbered.revision == 3
    listed = api.list_namespaced_controller_revision("default", label_selector="app=x")
    assert [r.metadata.name for r in listed.items] == ["x-1"]
    api.delete_namespaced_controller_revision("x-1", "default")
    watcher.join(10)
    assert events == [("ADDED", "x-1"), ("MODIFIED", "x-1"), ("DELETED", "x-1")]


def test_controllerrevision_data_is_immutable_and_required(cluster: ClusterInfo) -> None:
    api = apps(cluster)
    api.create_namespaced_controller_revision("default", revision("x-1"))
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_controller_revision("x-1", "default", {"data": {"spec": {"other": 1}}})
    assert "field is immutable" in invalid_causes(exc.value)["data"]
    no_data = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "nodata"}, "revision": 1}
    answer = post(cluster, "/apis/apps/v1/namespaces/default/controllerrevisions", no_data)
    assert causes_of(answer.json(), answer.status_code)["data"] == "Required value: data is mandatory"
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_controller_revision("default", revision("negative", -1))
    assert "must be greater than or equal to 0" in invalid_causes(exc.value)["revision"]


def test_kubectl_get_controllerrevisions_columns(kubectl: Kubectl, cluster: ClusterInfo) -> None:
    owned = revision("ds-abc", 2)
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds",
                                             "uid": "00000000-0000-0000-0000-000000000001", "controller": True}]
    apps(cluster).create_namespaced_controller_revision("default", owned)
    apps(cluster).create_namespaced_controller_revision("default", revision("loose", 1))
    rows = table(kubectl("get", "controllerrevisions"))
    assert rows[0] == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert [r[:3] for r in rows[1:]] == [["ds-abc", "daemonset.apps/ds", "2"], ["loose", "<none>", "1"]]


def test_daemonset_template_generation_follows_template_changes(cluster: ClusterInfo) -> None:
    api = apps(cluster)
    ds = {"metadata": {"name": "agent", "annotations": {"deprecated.daemonset.template.generation": "7"}},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}}
    created = api.create_namespaced_daemon_set("default", ds)
    generation = "deprecated.daemonset.template.generation"
    assert created.metadata.annotations[generation] == "1"  # the server's, not the client's
    relabelled = api.patch_namespaced_daemon_set("agent", "default", {"metadata": {"labels": {"x": "y"}}})
    assert relabelled.metadata.annotations[generation] == "1"
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "agent:2"}]}}}}
    updated = api.patch_namespaced_daemon_set("agent", "default", patch)
    assert updated.metadata.annotations[generation] == "2" and updated.metadata.generation == 2


def test_unknown_fields_of_the_new_kinds_are_pruned(cluster: ClusterInfo) -> None:
    body = json.loads(json.dumps(RC))
    body["spec"]["bogus"] = 1
    answer = post(cluster, "/api/v1/namespaces/default/replicationcontrollers",
                  {"apiVersion": "v1", "kind": "ReplicationController", **body})
    assert answer.status_code == 201, answer.text
    assert "bogus" not in answer.json()["spec"]
