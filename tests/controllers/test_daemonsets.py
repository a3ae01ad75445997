"""DaemonSets put one pod on each node that should run it, roll out through ControllerRevisions, and follow
nodes as they come and go, driven by a real kubectl (oldest and newest) with the simulated controllers on."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.controllers import get_json, items, table_rows, wait_until

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  STRATEGY
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "agent:1"}]
"""
ROLLING = "updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}"
NOT_READY = "clusterset.io/simulate-ready"
# new pods that never become ready: a rollout stalls where its limits say
UNREADY_TEMPLATE = json.dumps({"spec": {"template": {"metadata": {"annotations": {NOT_READY: "false"}}}}})


def daemonset(strategy: str = ROLLING) -> str:
    return DAEMONSET.replace("STRATEGY", strategy)


def live_pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    return [p for p in items(kubectl, "pods", "-l", "app=agent") if not p["metadata"].get("deletionTimestamp")]


def nodes_of(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["spec"].get("nodeName", "") for p in pods)


def node_names(info: ClusterInfo, count: int = 3) -> list[str]:
    return [f"{info.name}-node-{i}" for i in range(1, count + 1)]


def images(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p["spec"]["containers"][0]["image"] for p in pods)


def rolled_out(kubectl: Kubectl, name: str = "agent") -> str:
    return kubectl("rollout", "status", f"daemonset/{name}", "--timeout=60s")


def test_daemonset_runs_one_pod_per_node_as_upstream(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    live_kubectl("apply", "-f", "-", input=daemonset())
    out = rolled_out(live_kubectl)
    assert 'daemon set "agent" successfully rolled out' in out

    pods = live_pods(live_kubectl)
    assert nodes_of(pods) == node_names(live_cluster)
    ds = get_json(live_kubectl, "daemonset", "agent")
    (revision,) = items(live_kubectl, "controllerrevisions")
    pod_hash = revision["metadata"]["labels"]["controller-revision-hash"]
    assert revision["metadata"]["name"] == f"agent-{pod_hash}" and revision["revision"] == 1
    assert revision["metadata"]["labels"]["app"] == "agent"
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    for pod in pods:
        assert pod["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": pod_hash,
                                             "pod-template-generation": "1"}
        (ref,) = pod["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("DaemonSet", "agent", True)
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]
        tolerations = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert tolerations == {
            ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule")}
        assert pod["status"]["phase"] == "Running"

    status = ds["status"]
    assert {k: status.get(k) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                       "numberAvailable", "updatedNumberScheduled", "numberMisscheduled")} == {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 3, "numberAvailable": 3,
        "updatedNumberScheduled": 3, "numberMisscheduled": 0}
    assert status["observedGeneration"] == ds["metadata"]["generation"]
    rows = table_rows(live_kubectl("get", "ds"))
    assert rows[0][:6] == ["agent", "3", "3", "3", "3", "3"]
    assert "daemonset.apps/agent" in live_kubectl("get", "all", "-o", "name")

    # a deleted daemon pod comes back on its node
    victim = pods[0]
    live_kubectl("delete", "pod", victim["metadata"]["name"], "--wait=false")
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == node_names(live_cluster)
               and victim["metadata"]["name"] not in {p["metadata"]["name"] for p in live_pods(live_kubectl)},
               message="a replacement on the same node")


def test_rolling_update_history_and_undo(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    live_kubectl("apply", "-f", "-", input=daemonset())
    rolled_out(live_kubectl)
    live_kubectl("set", "image", "daemonset/agent", "agent=agent:2")
    assert "successfully rolled out" in rolled_out(live_kubectl)
    pods = live_pods(live_kubectl)
    assert images(pods) == ["agent:2"] * 3 and nodes_of(pods) == node_names(live_cluster)
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}

    history = live_kubectl("rollout", "history", "daemonset/agent")
    assert [r[0] for r in table_rows(history.split("\n", 1)[1])] == ["1", "2"]
    detail = live_kubectl("rollout", "history", "daemonset/agent", "--revision=1")
    assert "agent:1" in detail

    live_kubectl("rollout", "undo", "daemonset/agent")
    rolled_out(live_kubectl)
    wait_until(lambda: images(live_pods(live_kubectl)) == ["agent:1"] * 3, message="rolled back pods")
    # the first revision is reused, renumbered as the newest
    revisions = {r["metadata"]["name"]: r["revision"] for r in items(live_kubectl, "controllerrevisions")}
    assert sorted(revisions.values()) == [2, 3] and len(revisions) == 2
    history = live_kubectl("rollout", "history", "daemonset/agent")
    assert [r[0] for r in table_rows(history.split("\n", 1)[1])] == ["2", "3"]


def test_rolling_update_stays_within_max_unavailable(live_kubectl: Kubectl) -> None:
    """New pods that never become ready stall the rollout after maxUnavailable old pods are replaced."""
    live_kubectl("apply", "-f", "-", input=daemonset())
    rolled_out(live_kubectl)
    live_kubectl("patch", "daemonset", "agent", "--type=merge", "-p", UNREADY_TEMPLATE)
    stalled = wait_until(lambda: (lambda p: p if sorted(
        bool(x["metadata"].get("annotations", {}).get(NOT_READY)) for x in p) == [False, False, True] else None)(
        live_pods(live_kubectl)), message="one new (unready) pod next to two old ones")
    assert len(stalled) == 3
    status = get_json(live_kubectl, "daemonset", "agent")["status"]
    wait_until(lambda: get_json(live_kubectl, "daemonset", "agent")["status"].get("updatedNumberScheduled") == 1,
               message="status counts the updated pod")
    assert status["desiredNumberScheduled"] == 3
    assert len(live_pods(live_kubectl)) == 3  # still: nothing more was replaced

    # undo recovers
    live_kubectl("rollout", "undo", "daemonset/agent")
    rolled_out(live_kubectl)


def test_rolling_update_with_max_surge_starts_new_pods_next_to_old_ones(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=daemonset(
        "updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}"))
    rolled_out(live_kubectl)
    live_kubectl("patch", "daemonset", "agent", "--type=merge", "-p", UNREADY_TEMPLATE)

    def surged() -> list[dict[str, Any]] | None:
        pods = live_pods(live_kubectl)
        return pods if len(pods) == 4 else None

    pods = wait_until(surged, message="a fourth pod: one surge pod")
    new = [p for p in pods if p["metadata"].get("annotations", {}).get(NOT_READY)]
    assert len(new) == 1
    sharing = [p for p in pods if p["spec"].get("nodeName") == new[0]["spec"].get("nodeName")]
    assert len(sharing) == 2  # the old pod keeps running next to the unready new one
    live_kubectl("rollout", "undo", "daemonset/agent")
    rolled_out(live_kubectl)
    wait_until(lambda: len(live_pods(live_kubectl)) == 3, message="surge pod gone")


def test_on_delete_replaces_only_deleted_pods(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=daemonset("updateStrategy: {type: OnDelete}"))
    wait_until(lambda: len(live_pods(live_kubectl)) == 3, message="three pods")
    live_kubectl("set", "image", "daemonset/agent", "agent=agent:2")
    wait_until(lambda: get_json(live_kubectl, "daemonset", "agent")["status"].get("observedGeneration") == 2,
               message="update observed")
    assert images(live_pods(live_kubectl)) == ["agent:1"] * 3
    victim = live_pods(live_kubectl)[0]["metadata"]["name"]
    live_kubectl("delete", "pod", victim, "--wait=false")
    wait_until(lambda: images(live_pods(live_kubectl)) == ["agent:1", "agent:1", "agent:2"],
               message="only the deleted pod replaced, with the new template")


def test_node_selector_taints_cordons_and_labels(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    node1, node2, node3 = node_names(live_cluster)
    wait_until(lambda: len(items(live_kubectl, "nodes")) == 3, message="nodes")
    live_kubectl("label", "node", node1, "role=edge")
    live_kubectl("taint", "node", node2, "dedicated=db:NoSchedule")
    live_kubectl("cordon", node3)
    manifest = daemonset().replace("containers:", "nodeSelector: {}\n      containers:")
    live_kubectl("apply", "-f", "-", input=manifest)
    # the tainted node is skipped; the cordoned one still gets its daemon pod (tolerated, as upstream)
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == [node1, node3], message="pods on node-1 and node-3")
    rolled_out(live_kubectl)

    # only nodes with role=edge
    live_kubectl("patch", "daemonset", "agent", "--type=merge", "-p",
                 '{"spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}}}}}')
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == [node1], message="only node-1")
    live_kubectl("label", "node", node2, "role=edge")
    live_kubectl("taint", "node", node2, "dedicated-")
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == [node1, node2], message="node-2 labelled and untainted")
    live_kubectl("label", "node", node1, "role-")
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == [node2], message="node-1 unlabelled")
    rows = table_rows(live_kubectl("get", "ds", "agent"))
    assert rows[0][6] == "role=edge"


def test_nodes_added_and_removed_add_and_remove_daemon_pods(live_kubectl: Kubectl, live_cluster: ClusterInfo,
                                                           server: ServerThread) -> None:
    live_kubectl("apply", "-f", "-", input=daemonset())
    rolled_out(live_kubectl)
    server.call(server.server.configure_cluster(live_cluster.name, nodes=5))
    live_kubectl("label", "node", f"{live_cluster.name}-node-1", "poke=1")  # any node event re-reconciles
    wait_until(lambda: nodes_of(live_pods(live_kubectl)) == node_names(live_cluster, 5), message="five pods")
    rolled_out(live_kubectl)
    assert get_json(live_kubectl, "daemonset", "agent")["status"]["desiredNumberScheduled"] == 5

    server.call(server.server.configure_cluster(live_cluster.name, nodes=2))
    live_kubectl("label", "node", f"{live_cluster.name}-node-1", "poke=2", "--overwrite")
    wait_until(lambda: [p["spec"].get("nodeName") for p in items(live_kubectl, "pods", "-l", "app=agent")]
               and nodes_of(items(live_kubectl, "pods", "-l", "app=agent")) == node_names(live_cluster, 2),
               message="pods of removed nodes gone")
    wait_until(lambda: get_json(live_kubectl, "daemonset", "agent")["status"]["desiredNumberScheduled"] == 2,
               message="status follows")


def test_revision_history_limit_keeps_the_newest_revisions(live_cluster: ClusterInfo) -> None:
    apps = client.AppsV1Api(live_cluster.api_client())
    apps.create_namespaced_daemon_set("default", {
        "metadata": {"name": "agent"},
        "spec": {"revisionHistoryLimit": 1, "selector": {"matchLabels": {"app": "agent"}},
                 "updateStrategy": {"type": "OnDelete"},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}}})

    def revisions() -> list[int]:
        return sorted(r.revision for r in apps.list_namespaced_controller_revision("default").items)

    wait_until(lambda: revisions() == [1], message="first revision")
    for number, image in ((2, "agent:2"), (3, "agent:3"), (4, "agent:4")):
        apps.patch_namespaced_daemon_set("agent", "default", {"spec": {"template": {"spec": {
            "containers": [{"name": "agent", "image": image}]}}}})
        wait_until(lambda n=number: revisions()[-1] == n, message=f"revision {number}")
    # one old revision is kept beside the current one, but OnDelete pods still run revision 1, which is
    # never deleted: the old revisions in between go, oldest first
    wait_until(lambda: revisions() == [1, 4], message="history truncated")


def test_statefulset_keeps_controller_revisions(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:15"}]}
""")
    live_kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
    live_kubectl("set", "image", "statefulset/db", "db=postgres:16")
    live_kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
    sts = get_json(live_kubectl, "statefulset", "db")
    revisions = {r["metadata"]["name"]: r for r in items(live_kubectl, "controllerrevisions")}
    assert sts["status"]["updateRevision"] in revisions and len(revisions) == 2
    assert revisions[sts["status"]["updateRevision"]]["revision"] == 2
    history = live_kubectl("rollout", "history", "statefulset/db")
    assert [r[0] for r in table_rows(history.split("\n", 1)[1])] == ["1", "2"]
    live_kubectl("rollout", "undo", "statefulset/db")
    live_kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
    wait_until(lambda: images([p for p in items(live_kubectl, "pods", "-l", "app=db")]) == ["postgres:15"] * 2,
               message="rolled back")
