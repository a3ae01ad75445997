"""The simulated scheduler and kubelets: binding, pod IPs, readiness, phases, termination, restarts."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.controllers import condition, get_json, in_network, items, settings, table_rows, wait_until


def pod(kubectl: Kubectl, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(kubectl, "pod", name)
    return result


def apply(kubectl: Kubectl, text: str) -> None:
    kubectl("apply", "-f", "-", input=text)


def wait_ready(kubectl: Kubectl, *names: str) -> None:
    kubectl("wait", "--for=condition=Ready", *(f"pod/{n}" for n in names), "--timeout=30s")


def bare_pod(name: str, annotations: dict[str, str] | None = None, extra_spec: str = "") -> str:
    """A one-container pod manifest; `extra_spec` lines go under spec."""
    meta = f"  name: {name}\n"
    if annotations:
        meta += "  annotations:\n" + "".join(f'    {k}: "{v}"\n' for k, v in annotations.items())
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n{meta}spec:\n"
            f"  containers: [{{name: main, image: busybox}}]{extra_spec}\n")


# ---------------------------------------------------------------------------- running
def test_pod_runs_with_ip_host_ip_and_upstream_status(live_kubectl: Kubectl, live_cluster: ClusterInfo,
                                                      server: ServerThread) -> None:
    live_kubectl("run", "solo", "--image=busybox")
    wait_ready(live_kubectl, "solo")
    row = table_rows(live_kubectl("get", "pod", "solo", "-o", "wide"))[0]
    assert row[1:3] == ["1/1", "Running"]

    obj = pod(live_kubectl, "solo")
    status = obj["status"]
    assert status["phase"] == "Running"
    assert in_network(status["podIP"], settings(server, live_cluster)["podCIDR"])
    assert status["podIPs"] == [{"ip": status["podIP"]}]
    node = get_json(live_kubectl, "node", obj["spec"]["nodeName"])
    internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    assert status["hostIP"] == internal[0] and status["hostIPs"] == [{"ip": ip} for ip in internal]
    assert in_network(status["podIP"], node["spec"]["podCIDR"])
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" for c in status["conditions"])
    (cs,) = status["containerStatuses"]
    assert cs["name"] == "solo" and cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
    assert cs["image"] == "docker.io/library/busybox:latest"
    assert cs["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert cs["containerID"].startswith("containerd://")
    assert "startedAt" in cs["state"]["running"] and status["startTime"]


def test_ready_comes_after_the_configured_delay(server: ServerThread) -> None:
    info = server.add_cluster(controllers=True, pod_ready_delay=1.5)
    core = client.CoreV1Api(info.api_client())
    core.create_namespaced_pod("default", {"metadata": {"name": "slow"},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    running = wait_until(lambda: (lambda p: p if p.status.phase == "Running" else None)(
        core.read_namespaced_pod("slow", "default")), message="running")
    started = time.monotonic()
    assert not any(c.type == "Ready" and c.status == "True" for c in running.status.conditions)
    wait_until(lambda: any(c.type == "Ready" and c.status == "True"
                           for c in core.read_namespaced_pod("slow", "default").status.conditions),
               message="ready")
    assert time.monotonic() - started > 0.5


def test_simulate_ready_annotation_flips_readiness(live_kubectl: Kubectl) -> None:
    live_kubectl("run", "probe", "--image=busybox")
    wait_ready(live_kubectl, "probe")
    live_kubectl("annotate", "pod", "probe", "clusterset.io/simulate-ready=false")
    live_kubectl("wait", "--for=condition=Ready=false", "pod/probe", "--timeout=30s")
    obj = pod(live_kubectl, "probe")
    assert condition(obj, "Ready")["reason"] == "ContainersNotReady"
    assert condition(obj, "ContainersReady")["status"] == "False"
    assert obj["status"]["containerStatuses"][0]["ready"] is False
    assert obj["status"]["phase"] == "Running"
    assert table_rows(live_kubectl("get", "pod", "probe"))[0][1:3] == ["0/1", "Running"]

    live_kubectl("annotate", "pod", "probe", "clusterset.io/simulate-ready-")
    wait_ready(live_kubectl, "probe")


def test_simulate_failed_phase_and_replacement(live_kubectl: Kubectl) -> None:
    live_kubectl("create", "deployment", "app", "--image=app", "--replicas=2")
    live_kubectl("wait", "--for=condition=Available", "deployment/app", "--timeout=30s")
    victim = items(live_kubectl, "pods")[0]["metadata"]["name"]
    live_kubectl("annotate", "pod", victim, "clusterset.io/simulate-phase=Failed")
    live_kubectl("wait", "--for=jsonpath={.status.phase}=Failed", f"pod/{victim}", "--timeout=30s")
    failed = pod(live_kubectl, victim)
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert condition(failed, "Ready")["reason"] == "PodFailed"
    rows = {r[0]: r for r in table_rows(live_kubectl("get", "pods"))}
    assert rows[victim][2] == "Error"

    # the failed pod no longer counts: the ReplicaSet makes a new one
    def replaced() -> bool:
        running = [p for p in items(live_kubectl, "pods") if p["status"].get("phase") == "Running"]
        return len(running) == 2 and victim not in {p["metadata"]["name"] for p in running}

    wait_until(replaced, message="a replacement")
    live_kubectl("wait", "--for=jsonpath={.status.availableReplicas}=2", "deployment/app", "--timeout=30s")
    # removing the annotation does not resurrect a terminal pod
    live_kubectl("annotate", "pod", victim, "clusterset.io/simulate-phase-")
    assert pod(live_kubectl, victim)["status"]["phase"] == "Failed"


def test_succeeded_phase(live_kubectl: Kubectl) -> None:
    apply(live_kubectl, bare_pod("job", {"clusterset.io/simulate-phase": "Succeeded"}))
    live_kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/job", "--timeout=30s")
    assert table_rows(live_kubectl("get", "pod", "job"))[0][1:3] == ["0/1", "Completed"]


def test_readiness_gates_hold_ready(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    apply(live_kubectl, bare_pod("gated", extra_spec="\n  readinessGates: [{conditionType: example.com/ok}]"))
    live_kubectl("wait", "--for=condition=ContainersReady", "pod/gated", "--timeout=30s")
    obj = pod(live_kubectl, "gated")
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Ready")["reason"] == "ReadinessGatesNotReady"
    core = client.CoreV1Api(live_cluster.api_client())
    core.patch_namespaced_pod_status("gated", "default", {"status": {"conditions": [
        {"type": "example.com/ok", "status": "True"}]}})
    wait_ready(live_kubectl, "gated")
    assert condition(pod(live_kubectl, "gated"), "example.com/ok")["status"] == "True"


# ---------------------------------------------------------------------------- termination
def test_deleting_a_pod_waits_for_its_simulated_containers(live_kubectl: Kubectl) -> None:
    apply(live_kubectl, bare_pod("slow-stop", {"clusterset.io/simulate-termination-seconds": "2"}))
    apply(live_kubectl, bare_pod("quick-stop"))
    wait_ready(live_kubectl, "slow-stop", "quick-stop")

    started = time.monotonic()
    live_kubectl("delete", "pod", "quick-stop", "--timeout=30s")
    assert time.monotonic() - started < 10  # the 30 s grace period is not waited out

    live_kubectl("delete", "pod", "slow-stop", "--wait=false")
    rows = {r[0]: r for r in table_rows(live_kubectl("get", "pods"))}
    assert rows["slow-stop"][2] == "Terminating"
    live_kubectl("wait", "--for=delete", "pod/slow-stop", "--timeout=30s")
    assert not items(live_kubectl, "pods")


def test_grace_period_zero_deletes_at_once(live_kubectl: Kubectl) -> None:
    apply(live_kubectl, bare_pod("now"))
    wait_ready(live_kubectl, "now")
    live_kubectl("delete", "pod", "now", "--grace-period=0", "--force")
    assert not items(live_kubectl, "pods")


# ---------------------------------------------------------------------------- scheduling
def test_node_selector_is_respected_and_unschedulable_pods_wait(live_kubectl: Kubectl,
                                                                live_cluster: ClusterInfo) -> None:
    wait_until(lambda: len(items(live_kubectl, "nodes")) == 3, message="nodes")
    apply(live_kubectl, bare_pod("in-b", extra_spec="\n  nodeSelector: {topology.kubernetes.io/zone: zone-b}"))
    wait_ready(live_kubectl, "in-b")
    node = get_json(live_kubectl, "node", pod(live_kubectl, "in-b")["spec"]["nodeName"])
    assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "zone-b"

    apply(live_kubectl, bare_pod("nowhere", extra_spec="\n  nodeSelector: {disk: ssd}"))
    scheduled = wait_until(lambda: condition(pod(live_kubectl, "nowhere"), "PodScheduled") or None,
                           message="PodScheduled condition")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    assert pod(live_kubectl, "nowhere")["status"]["phase"] == "Pending"

    # a node that starts to match lets the pod schedule
    live_kubectl("label", "node", f"{live_cluster.name}-node-3", "disk=ssd")
    wait_ready(live_kubectl, "nowhere")
    assert pod(live_kubectl, "nowhere")["spec"]["nodeName"] == f"{live_cluster.name}-node-3"


def test_cordoned_and_not_ready_nodes_get_no_pods(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    wait_until(lambda: len(items(live_kubectl, "nodes")) == 3, message="nodes")
    node1, node2, node3 = (f"{live_cluster.name}-node-{i}" for i in (1, 2, 3))
    live_kubectl("cordon", node1)
    live_kubectl("annotate", "node", node2, "clusterset.io/simulate-ready=false")
    wait_until(lambda: condition(get_json(live_kubectl, "node", node2), "Ready").get("status") == "False",
               message="node-2 NotReady")
    statuses = {r[0]: r[1] for r in table_rows(live_kubectl("get", "nodes"))}
    assert statuses[node1] == "Ready,SchedulingDisabled" and statuses[node2] == "NotReady"
    live_kubectl("create", "deployment", "few", "--image=app", "--replicas=4")
    live_kubectl("wait", "--for=condition=Available", "deployment/few", "--timeout=30s")
    assert {p["spec"]["nodeName"] for p in items(live_kubectl, "pods")} == {node3}

    # pods on a node that stops being ready stop being ready
    live_kubectl("annotate", "node", node3, "clusterset.io/simulate-ready=false")
    wait_until(lambda: all(condition(p, "Ready").get("status") == "False" for p in items(live_kubectl, "pods")),
               message="pods not ready")
    live_kubectl("annotate", "node", node3, "clusterset.io/simulate-ready-")
    live_kubectl("wait", "--for=condition=Available", "deployment/few", "--timeout=30s")


# ---------------------------------------------------------------------------- addresses
def test_dual_stack_pods_get_both_families(server: ServerThread, tmp_path: Path) -> None:
    info = server.add_cluster(controllers=True, dual_stack=True)
    cfg = settings(server, info)
    core = client.CoreV1Api(info.api_client())
    core.create_namespaced_pod("default", {"metadata": {"name": "two"},
                                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    got = wait_until(lambda: (lambda p: p if p.status.pod_ips and len(p.status.pod_ips) == 2 else None)(
        core.read_namespaced_pod("two", "default")), message="two pod IPs")
    v4, v6 = (ip.ip for ip in got.status.pod_ips)
    assert in_network(v4, cfg["podCIDR"]) and in_network(v6, cfg["podCIDR6"])
    assert got.status.pod_ip == v4
    assert [ipaddress.ip_address(ip.ip).version for ip in got.status.host_ips] == [4, 6]


def test_pod_ips_are_unique_and_not_reused_while_live(live_kubectl: Kubectl) -> None:
    live_kubectl("create", "deployment", "many", "--image=app", "--replicas=12")
    live_kubectl("wait", "--for=condition=Available", "deployment/many", "--timeout=60s")
    first = {p["status"]["podIP"] for p in items(live_kubectl, "pods")}
    assert len(first) == 12
    live_kubectl("scale", "deployment/many", "--replicas=4")
    live_kubectl("scale", "deployment/many", "--replicas=12")
    live_kubectl("wait", "--for=jsonpath={.status.availableReplicas}=12", "deployment/many", "--timeout=60s")
    pods = [p for p in items(live_kubectl, "pods") if not p["metadata"].get("deletionTimestamp")]
    ips = [p["status"]["podIP"] for p in pods]
    assert len(ips) == len(set(ips)) == 12


# ---------------------------------------------------------------------------- restarts
def test_restart_keeps_nodes_pods_and_addresses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    running = ServerThread(state)
    try:
        info = running.add_cluster("restart", controllers=True)
        apps = client.AppsV1Api(info.api_client())
        apps.create_namespaced_deployment("default", {
            "metadata": {"name": "keep"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "keep"}},
                     "template": {"metadata": {"labels": {"app": "keep"}},
                                  "spec": {"containers": [{"name": "c", "image": "keep"}]}}}})
        wait_until(lambda: apps.read_namespaced_deployment("keep", "default").status.available_replicas == 3,
                   message="available before restart")
        before = {p.metadata.name: p.status.pod_ip
                  for p in client.CoreV1Api(info.api_client()).list_namespaced_pod("default").items}
    finally:
        running.stop()

    running = ServerThread(state)
    try:
        info = running.info("restart")
        core, apps = client.CoreV1Api(info.api_client()), client.AppsV1Api(info.api_client())
        assert len(core.list_node().items) == 3
        apps.patch_namespaced_deployment_scale("keep", "default", {"spec": {"replicas": 6}})
        wait_until(lambda: apps.read_namespaced_deployment("keep", "default").status.available_replicas == 6,
                   message="available after restart")
        after = {p.metadata.name: p.status.pod_ip for p in core.list_namespaced_pod("default").items}
        assert {k: after[k] for k in before} == before  # the same pods, the same addresses
        assert len(set(after.values())) == 6  # new pods got fresh addresses
        assert len(core.list_node().items) == 3
        assert len(apps.list_namespaced_replica_set("default").items) == 1
    finally:
        running.stop()
