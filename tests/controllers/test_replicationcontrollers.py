"""ReplicationControllers keep their pods as upstream's ReplicationManager does, driven by a real kubectl
(oldest and newest) with the simulated controllers on."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl
from tests.controllers import get_json, items, table_rows, wait_until
from tests.helpers import WEB_RC


def live_pods(kubectl: Kubectl, selector: str) -> list[dict[str, Any]]:
    return [p for p in items(kubectl, "pods", "-l", selector) if not p["metadata"].get("deletionTimestamp")]


def rc_status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    status: dict[str, Any] = get_json(kubectl, "rc", name)["status"]
    return status


def test_rc_runs_its_pods_scales_and_reports_status(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=WEB_RC)
    wait_until(lambda: rc_status(live_kubectl, "web").get("availableReplicas") == 3, message="3 available")
    status = rc_status(live_kubectl, "web")
    assert (status["replicas"], status["fullyLabeledReplicas"], status["readyReplicas"]) == (3, 3, 3)
    assert status["observedGeneration"] == 1
    rows = table_rows(live_kubectl("get", "rc"))
    assert rows == [["web", "3", "3", "3", rows[0][4]]]

    pods = live_pods(live_kubectl, "app=web")
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-")
        (ref,) = pod["metadata"]["ownerReferences"]
        assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("v1", "ReplicationController", "web")
        assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
        assert pod["status"]["phase"] == "Running"
    assert "replicationcontroller/web" in live_kubectl("get", "all", "-o", "name")

    live_kubectl("scale", "rc", "web", "--replicas=1")
    wait_until(lambda: len(live_pods(live_kubectl, "app=web")) == 1, message="scaled down to one pod")
    wait_until(lambda: rc_status(live_kubectl, "web").get("replicas") == 1, message="status follows")
    assert rc_status(live_kubectl, "web")["observedGeneration"] == 2

    # a deleted pod is replaced
    (only,) = live_pods(live_kubectl, "app=web")
    live_kubectl("delete", "pod", only["metadata"]["name"], "--wait=false")
    wait_until(lambda: [p["metadata"]["name"] for p in live_pods(live_kubectl, "app=web")] not in
               ([], [only["metadata"]["name"]]), message="a replacement pod")

    # deleting the RC deletes its pods (garbage collection through the owner references)
    live_kubectl("delete", "rc", "web")
    wait_until(lambda: not items(live_kubectl, "pods", "-l", "app=web"), message="pods gone")


def test_rc_adopts_matching_orphans_and_releases_pods_that_stop_matching(live_cluster: ClusterInfo) -> None:
    core = client.CoreV1Api(live_cluster.api_client())
    core.create_namespaced_pod("default", {"metadata": {"name": "orphan", "labels": {"app": "db"}},
                                           "spec": {"containers": [{"name": "db", "image": "postgres"}]}})
    core.create_namespaced_replication_controller("default", {
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "selector": {"app": "db"},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}})

    def owner(pod: client.V1Pod) -> str | None:
        refs = pod.metadata.owner_references or []
        return refs[0].kind + "/" + refs[0].name if refs else None

    wait_until(lambda: owner(core.read_namespaced_pod("orphan", "default")) == "ReplicationController/db",
               message="orphan adopted")
    wait_until(lambda: len(core.list_namespaced_pod("default", label_selector="app=db").items) == 2,
               message="one more pod, not two")

    # a pod relabelled out of the selector is released and replaced
    core.patch_namespaced_pod("orphan", "default", {"metadata": {"labels": {"app": "debug"}}})
    wait_until(lambda: owner(core.read_namespaced_pod("orphan", "default")) is None, message="released")
    wait_until(lambda: len(core.list_namespaced_pod("default", label_selector="app=db").items) == 2,
               message="replaced")

