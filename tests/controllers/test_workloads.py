"""Embedded clusters behave like clusters: nodes, Deployments, ReplicaSets and StatefulSets driven by
a real kubectl (oldest and newest, see `live_kubectl`), with the simulated controllers on.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from kubernetes import client

from clusterset.apiserver.http.openapi import KUBE_VERSION
from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.controllers import condition, get_json, in_network, items, settings, table_rows, wait_until

ZONES = {"zone-a", "zone-b", "zone-c"}


def pods_of(kubectl: Kubectl, selector: str) -> list[dict[str, Any]]:
    return items(kubectl, "pods", "-l", selector)


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def create_deployment(kubectl: Kubectl, name: str, image: str, replicas: int) -> None:
    kubectl("create", "deployment", name, f"--image={image}", f"--replicas={replicas}")
    kubectl("wait", "--for=condition=Available", f"deployment/{name}", "--timeout=30s")


# ---------------------------------------------------------------------------- nodes
def test_nodes_are_ready_spread_over_zones_with_leases(live_kubectl: Kubectl, live_cluster: ClusterInfo,
                                                       server: ServerThread) -> None:
    names = [f"{live_cluster.name}-node-{i}" for i in (1, 2, 3)]
    wait_until(lambda: len(items(live_kubectl, "nodes")) == 3, message="three nodes")
    rows = table_rows(live_kubectl("get", "nodes", "-L", "topology.kubernetes.io/zone"))
    assert [r[0] for r in rows] == names
    assert {r[1] for r in rows} == {"Ready"}
    assert {r[4] for r in rows} == {KUBE_VERSION}
    assert {r[5] for r in rows} == ZONES

    pod_cidr = settings(server, live_cluster)["podCIDR"]
    nodes = items(live_kubectl, "nodes")
    ips = set()
    for node in nodes:
        node_labels = node["metadata"]["labels"]
        assert node_labels["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert node_labels["kubernetes.io/os"] == "linux"
        assert node_labels["kubernetes.io/arch"] == "amd64"
        status = node["status"]
        assert status["capacity"]["pods"] == "110" and status["allocatable"]["cpu"]
        assert status["nodeInfo"]["kubeletVersion"] == KUBE_VERSION
        assert condition(node, "Ready")["status"] == "True"
        assert condition(node, "MemoryPressure")["status"] == "False"
        internal = [a["address"] for a in status["addresses"] if a["type"] == "InternalIP"]
        hostname = [a["address"] for a in status["addresses"] if a["type"] == "Hostname"]
        assert hostname == [node["metadata"]["name"]]
        ips.update(internal)
        assert in_network(node["spec"]["podCIDR"].split("/")[0], pod_cidr)
    assert len(ips) == 3

    leases = wait_until(lambda: items(live_kubectl, "leases", "-n", "kube-node-lease") or None, message="leases")
    assert sorted(lease["metadata"]["name"] for lease in leases) == names
    assert all(lease["spec"]["holderIdentity"] == lease["metadata"]["name"] for lease in leases)


def test_add_cluster_with_one_node(server: ServerThread) -> None:
    info = server.add_cluster(controllers=True, nodes=1, pod_ready_delay=0)
    apps, core = client.AppsV1Api(info.api_client()), client.CoreV1Api(info.api_client())
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "solo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "solo"}},
                 "template": {"metadata": {"labels": {"app": "solo"}},
                              "spec": {"containers": [{"name": "c", "image": "solo"}]}}}})
    wait_until(lambda: apps.read_namespaced_deployment("solo", "default").status.available_replicas == 2,
               message="available")
    assert [n.metadata.name for n in core.list_node().items] == [f"{info.name}-node-1"]
    assert {p.spec.node_name for p in core.list_namespaced_pod("default").items} == {f"{info.name}-node-1"}


def test_node_count_follows_the_cluster_setting(live_kubectl: Kubectl, live_cluster: ClusterInfo,
                                               server: ServerThread) -> None:
    wait_until(lambda: len(items(live_kubectl, "nodes")) == 3, message="three nodes")
    server.call(server.server.configure_cluster(live_cluster.name, nodes=5))
    live_kubectl("label", "node", f"{live_cluster.name}-node-1", "poke=1")  # any node event re-reconciles
    five = wait_until(lambda: (lambda n: n if len(n) == 5 else None)(items(live_kubectl, "nodes")),
                      message="five nodes")
    zones = [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in five]
    assert zones == ["zone-a", "zone-b", "zone-c", "zone-a", "zone-b"]

    server.call(server.server.configure_cluster(live_cluster.name, nodes=2))
    live_kubectl("label", "node", f"{live_cluster.name}-node-1", "poke=2", "--overwrite")
    wait_until(lambda: [n["metadata"]["name"] for n in items(live_kubectl, "nodes")]
               == [f"{live_cluster.name}-node-1", f"{live_cluster.name}-node-2"], message="two nodes")

    # a deleted node re-registers, as a running kubelet's would
    node2 = f"{live_cluster.name}-node-2"
    uid = get_json(live_kubectl, "node", node2)["metadata"]["uid"]
    live_kubectl("delete", "node", node2)
    wait_until(lambda: {n["metadata"]["name"]: n["metadata"]["uid"] for n in items(live_kubectl, "nodes")}
               .get(node2, uid) != uid, message="node-2 back")


def test_node_ranges_differ_between_clusters(server: ServerThread, live_cluster: ClusterInfo) -> None:
    other = server.add_cluster(controllers=True)
    api_a, api_b = client.CoreV1Api(live_cluster.api_client()), client.CoreV1Api(other.api_client())

    def addresses(api: client.CoreV1Api) -> set[str]:
        nodes = api.list_node().items
        return {a.address for n in nodes for a in n.status.addresses or [] if a.type == "InternalIP"}

    first = wait_until(lambda: len(addresses(api_a)) == 3 and addresses(api_a), message="nodes of cluster a")
    second = wait_until(lambda: len(addresses(api_b)) == 3 and addresses(api_b), message="nodes of cluster b")
    assert not first & second


# ---------------------------------------------------------------------------- deployments
def test_create_deployment_gives_running_ready_pods_spread_over_zones(
        live_kubectl: Kubectl, live_cluster: ClusterInfo, server: ServerThread) -> None:
    create_deployment(live_kubectl, "hello", "hello", 3)

    rows = table_rows(live_kubectl("get", "pods", "-o", "wide"))
    assert len(rows) == 3
    pod_cidr = settings(server, live_cluster)["podCIDR"]
    for row in rows:
        assert row[1:3] == ["1/1", "Running"], row
        assert in_network(row[5], pod_cidr), row
    assert len({row[5] for row in rows}) == 3
    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"]["topology.kubernetes.io/zone"]
               for n in items(live_kubectl, "nodes")}
    assert {zone_of[row[6]] for row in rows} == ZONES

    (rs,) = items(live_kubectl, "replicasets")
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"hello-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "hello", "pod-template-hash": pod_hash}
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    deployment = get_json(live_kubectl, "deployment", "hello")
    (ref,) = rs["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment", deployment["metadata"]["uid"], True, True)
    assert rs["status"]["replicas"] == rs["status"]["readyReplicas"] == rs["status"]["availableReplicas"] == 3

    for pod in items(live_kubectl, "pods"):
        assert re.fullmatch(rf"hello-{pod_hash}-[a-z0-9]{{5}}", pod["metadata"]["name"])
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["metadata"]["labels"]["pod-template-hash"] == pod_hash

    status = deployment["status"]
    assert status["observedGeneration"] == deployment["metadata"]["generation"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (
        3, 3, 3, 3)
    available, progressing = condition(deployment, "Available"), condition(deployment, "Progressing")
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert progressing["message"] == f'ReplicaSet "hello-{pod_hash}" has successfully progressed.'
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert "successfully rolled out" in live_kubectl("rollout", "status", "deployment/hello", "--timeout=30s")


def test_scale_deployment_up_and_down(live_kubectl: Kubectl) -> None:
    create_deployment(live_kubectl, "web", "nginx", 2)
    live_kubectl("scale", "deployment/web", "--replicas=5")
    live_kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    live_kubectl("wait", "--for=jsonpath={.status.readyReplicas}=5", "deployment/web", "--timeout=30s")
    pods = live(pods_of(live_kubectl, "app=web"))
    assert len(pods) == 5
    per_node: dict[str, int] = {}
    for pod in pods:
        per_node[pod["spec"]["nodeName"]] = per_node.get(pod["spec"]["nodeName"], 0) + 1
    assert sorted(per_node.values()) == [1, 2, 2]

    live_kubectl("scale", "deployment/web", "--replicas=1")
    wait_until(lambda: len(pods_of(live_kubectl, "app=web")) == 1, message="scale down to one pod")
    deployment = get_json(live_kubectl, "deployment", "web")
    wait_until(lambda: get_json(live_kubectl, "deployment", "web")["status"].get("replicas") == 1,
               message="status.replicas 1")
    assert deployment["spec"]["replicas"] == 1
    (rs,) = items(live_kubectl, "replicasets")
    assert rs["spec"]["replicas"] == 1
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"


def test_set_image_rolls_out_within_surge_and_unavailability(live_kubectl: Kubectl, live_cluster: ClusterInfo
                                                              ) -> None:
    live_kubectl("create", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec: {containers: [{name: hello, image: "hello:v1"}]}
""")
    live_kubectl("wait", "--for=condition=Available", "deployment/hello", "--timeout=30s")
    (old_rs,) = items(live_kubectl, "replicasets")

    # sample the pods while the rollout runs: never more than replicas+maxSurge, never fewer ready than replicas
    core = client.CoreV1Api(live_cluster.api_client())
    samples: list[tuple[int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            current = [p for p in core.list_namespaced_pod("default").items if not p.metadata.deletion_timestamp]
            ready = [p for p in current if any(c.type == "Ready" and c.status == "True"
                                               for c in p.status.conditions or [])]
            samples.append((len(current), len(ready)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        live_kubectl("set", "image", "deployment/hello", "hello=hello:v2")
        out = live_kubectl("rollout", "status", "deployment/hello", "--timeout=60s")
    finally:
        done.set()
        sampler.join()
    assert "successfully rolled out" in out
    assert samples and max(n for n, _ in samples) <= 4
    assert min(r for _, r in samples) >= 3

    def rolled() -> list[dict[str, Any]] | None:
        pods = pods_of(live_kubectl, "app=hello")
        images = [p["spec"]["containers"][0]["image"] for p in pods]
        return pods if images == ["hello:v2"] * 3 else None

    pods = wait_until(rolled, message="only new pods")
    assert all(p["status"]["containerStatuses"][0]["image"] == "docker.io/library/hello:v2" for p in pods)
    rss = {rs["metadata"]["name"]: rs for rs in items(live_kubectl, "replicasets")}
    assert len(rss) == 2
    old = rss.pop(old_rs["metadata"]["name"])
    (new,) = rss.values()
    assert old["spec"]["replicas"] == 0 and old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert new["spec"]["replicas"] == 3 and new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    deployment = get_json(live_kubectl, "deployment", "hello")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    history = live_kubectl("rollout", "history", "deployment/hello")
    assert re.search(r"^1\s", history, re.M) and re.search(r"^2\s", history, re.M)

    # a rollback reuses the first ReplicaSet, under a new revision
    live_kubectl("rollout", "undo", "deployment/hello")
    assert "successfully rolled out" in live_kubectl("rollout", "status", "deployment/hello", "--timeout=60s")
    back = get_json(live_kubectl, "replicaset", old_rs["metadata"]["name"])
    assert back["spec"]["replicas"] == 3
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    wait_until(lambda: [p["spec"]["containers"][0]["image"] for p in pods_of(live_kubectl, "app=hello")]
               == ["hello:v1"] * 3, message="pods back on v1")


def test_old_replicasets_beyond_revision_history_limit_are_deleted(live_kubectl: Kubectl) -> None:
    create_deployment(live_kubectl, "hist", "app:v0", 1)
    live_kubectl("patch", "deployment", "hist", "-p", '{"spec": {"revisionHistoryLimit": 1}}')
    for version in (1, 2, 3):
        live_kubectl("set", "image", "deployment/hist", f"app=app:v{version}")
        live_kubectl("rollout", "status", "deployment/hist", "--timeout=60s")
    rss = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(items(live_kubectl, "replicasets")),
                     message="two ReplicaSets left")
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in rss)
    assert revisions == ["3", "4"]


def test_recreate_strategy_replaces_all_pods(live_kubectl: Kubectl) -> None:
    live_kubectl("create", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: re}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: re}}
  template:
    metadata: {labels: {app: re}}
    spec: {containers: [{name: app, image: "app:v1"}]}
""")
    live_kubectl("wait", "--for=condition=Available", "deployment/re", "--timeout=30s")
    live_kubectl("set", "image", "deployment/re", "app=app:v2")
    assert "successfully rolled out" in live_kubectl("rollout", "status", "deployment/re", "--timeout=60s")
    pods = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(pods_of(live_kubectl, "app=re")),
                      message="two pods")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"app:v2"}


def test_paused_deployment_rolls_out_on_resume(live_kubectl: Kubectl) -> None:
    create_deployment(live_kubectl, "hold", "app:v1", 2)
    live_kubectl("rollout", "pause", "deployment/hold")
    live_kubectl("set", "image", "deployment/hold", "app=app:v2")
    paused = wait_until(lambda: (lambda d: d if condition(d, "Progressing").get("reason") == "DeploymentPaused"
                                 else None)(get_json(live_kubectl, "deployment", "hold")), message="paused")
    assert condition(paused, "Progressing")["status"] == "Unknown"
    assert len(items(live_kubectl, "replicasets")) == 1  # no rollout while paused
    live_kubectl("rollout", "resume", "deployment/hold")
    assert "successfully rolled out" in live_kubectl("rollout", "status", "deployment/hold", "--timeout=60s")
    assert len(items(live_kubectl, "replicasets")) == 2


def test_rollout_restart_replaces_pods(live_kubectl: Kubectl) -> None:
    create_deployment(live_kubectl, "again", "app", 2)
    before = {p["metadata"]["name"] for p in items(live_kubectl, "pods")}
    live_kubectl("rollout", "restart", "deployment/again")
    assert "successfully rolled out" in live_kubectl("rollout", "status", "deployment/again", "--timeout=60s")
    after = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(
        {p["metadata"]["name"] for p in items(live_kubectl, "pods")}), message="two pods")
    assert not before & after


def test_deleting_a_namespace_with_workloads_completes(live_kubectl: Kubectl) -> None:
    live_kubectl("create", "namespace", "team")
    live_kubectl("-n", "team", "create", "deployment", "hello", "--image=hello", "--replicas=3")
    live_kubectl("-n", "team", "apply", "-f", "-", input=STATEFULSET.replace("POLICY", "Parallel"))
    live_kubectl("-n", "team", "wait", "--for=condition=Available", "deployment/hello", "--timeout=30s")
    wait_until(lambda: len(items(live_kubectl, "-n", "team", "pods")) == 6, message="six pods")
    live_kubectl("delete", "namespace", "team", "--timeout=60s")
    assert "team" not in {n["metadata"]["name"] for n in items(live_kubectl, "namespaces")}


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_deleting_a_deployment_cascades_to_replicasets_and_pods(live_kubectl: Kubectl, cascade: str) -> None:
    create_deployment(live_kubectl, "hello", "hello", 3)
    assert len(items(live_kubectl, "pods")) == 3
    live_kubectl("delete", "deployment", "hello", f"--cascade={cascade}", "--timeout=60s")
    wait_until(lambda: not items(live_kubectl, "replicasets") and not items(live_kubectl, "pods"),
               message="ReplicaSets and pods gone")
    assert not items(live_kubectl, "deployments")


def test_deleted_pod_is_replaced(live_kubectl: Kubectl) -> None:
    create_deployment(live_kubectl, "hello", "hello", 2)
    victim = items(live_kubectl, "pods")[0]["metadata"]["name"]
    live_kubectl("delete", "pod", victim, "--wait=false")

    def replaced() -> bool:
        names = [p["metadata"]["name"] for p in live(items(live_kubectl, "pods"))]
        return len(names) == 2 and victim not in names

    wait_until(replaced, message="a replacement pod")
    live_kubectl("wait", "--for=jsonpath={.status.availableReplicas}=2", "deployment/hello", "--timeout=30s")


# ---------------------------------------------------------------------------- statefulsets
STATEFULSET = """
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: POLICY
  selector: {matchLabels: {app: db}}
  template:
    metadata:
      labels: {app: db}
      annotations: {clusterset.io/simulate-ready: "false"}
    spec: {containers: [{name: db, image: "postgres:16"}]}
"""


def pod_names(kubectl: Kubectl, selector: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods_of(kubectl, selector))


def test_statefulset_creates_ordered_pods_with_stable_names(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=STATEFULSET.replace("POLICY", "OrderedReady"))
    # every pod starts not ready (the template says so): the next ordinal waits for the previous one
    for ordinal in range(3):
        name = f"db-{ordinal}"
        wait_until(lambda n=name: n in pod_names(live_kubectl, "app=db"), message=f"{name} created")
        live_kubectl("wait", "--for=jsonpath={.status.phase}=Running", f"pod/{name}", "--timeout=30s")
        sts = wait_until(lambda: (lambda s: s if s["status"].get("observedGeneration") else None)(
            get_json(live_kubectl, "statefulset", "db")), message="status observed")
        assert sts["status"]["replicas"] == ordinal + 1
        assert pod_names(live_kubectl, "app=db") == [f"db-{i}" for i in range(ordinal + 1)]
        live_kubectl("annotate", "pod", name, "clusterset.io/simulate-ready-")
        live_kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")

    out = live_kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
    assert "roll out complete" in out or "rolling update complete" in out
    sts = get_json(live_kubectl, "statefulset", "db")
    status = sts["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)
    assert status["currentRevision"] == status["updateRevision"]
    assert status["observedGeneration"] == sts["metadata"]["generation"]
    for ordinal in range(3):
        pod = get_json(live_kubectl, "pod", f"db-{ordinal}")
        assert pod["spec"]["hostname"] == f"db-{ordinal}" and pod["spec"]["subdomain"] == "db"
        pod_labels = pod["metadata"]["labels"]
        assert pod_labels["statefulset.kubernetes.io/pod-name"] == f"db-{ordinal}"
        assert pod_labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert pod_labels["controller-revision-hash"] == status["updateRevision"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("StatefulSet", "db", True)

    # scale down: highest ordinal first, one at a time
    live_kubectl("scale", "statefulset/db", "--replicas=1")
    seen = []
    while True:
        names = wait_until(lambda: (lambda n: n if len(n) < 3 else None)(pod_names(live_kubectl, "app=db")),
                           message="a pod gone")
        if not seen or seen[-1] != names:
            seen.append(names)
        if names == ["db-0"]:
            break
    assert seen[0] == ["db-0", "db-1"]


def test_statefulset_parallel_and_rolling_update(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=STATEFULSET.replace("POLICY", "Parallel"))
    # Parallel: all ordinals are created without waiting for readiness
    wait_until(lambda: pod_names(live_kubectl, "app=db") == ["db-0", "db-1", "db-2"], message="three pods")
    assert all(condition(p, "Ready").get("status") != "True" for p in pods_of(live_kubectl, "app=db"))

    # a new template (without the not-ready annotation) replaces the pods from the highest ordinal down
    live_kubectl("patch", "statefulset", "db", "--type=json", "-p",
                 '[{"op": "remove", "path": "/spec/template/metadata/annotations"},'
                 ' {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "postgres:17"}]')
    live_kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
    status = wait_until(lambda: (lambda s: s if s.get("currentRevision") == s.get("updateRevision")
                                 and s.get("readyReplicas") == 3 else None)(
        get_json(live_kubectl, "statefulset", "db")["status"]), message="update complete")
    pods = pods_of(live_kubectl, "app=db")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"postgres:17"}
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {status["updateRevision"]}
