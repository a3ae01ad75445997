"""The inventory as a user drives it: `clusterset up`, `status`, `join`, `agent`, `leave`, and kubectl."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ServerThread
from tests.conftest import KUBECTLS
from tests.helpers import custom, wait_until
from tests.test_cli import _clusterset, _wait_for, fleet  # noqa: F401  (the `fleet` fixture)

Fleet = tuple[Path, "subprocess.Popen[str]", Path]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_clusterset(*args), capture_output=True, text=True, timeout=timeout)


def status_rows(state: Path) -> dict[str, list[str]]:
    result = run("status", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["CLUSTER", "HEALTHY", "JOINED", "VERSION"]
    return {line.split()[0]: line.split() for line in lines[1:]}


def wait_status(state: Path, predicate: object, timeout: float = 30) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    rows: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        rows = status_rows(state)
        if predicate(rows):  # type: ignore[operator]
            return rows
        time.sleep(0.2)
    raise AssertionError(f"status never matched; last: {rows}")


def test_up_shows_a_healthy_fleet(fleet: Fleet) -> None:  # noqa: F811
    state, _proc, log = fleet
    text = log.read_text()
    assert "joining 2 member(s)" in text and "fleet ready" in text
    rows = status_rows(state)
    assert sorted(rows) == ["member-1", "member-2"]
    assert all(r[1] == "True" and r[2] == "True" and r[3] == "1.30.0" for r in rows.values())
    assert "cluster.clusterset.k8s.io=member-1" in rows["member-1"][-1]


@pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed")
def test_kubectl_lists_clusterprofiles_with_printer_columns(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    state, _proc, _log = fleet
    for version, binary in KUBECTLS.items():
        out = subprocess.run([binary, f"--kubeconfig={state / 'kubeconfig'}", f"--cache-dir={tmp_path / version}",
                              "--context", "hub", "get", "clusterprofiles", "-A"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (version, out.stderr)
        lines = out.stdout.splitlines()
        assert lines[0].split() == ["NAMESPACE", "NAME", "DISPLAY", "VERSION", "HEALTHY", "JOINED", "AGE"], version
        assert [line.split()[:6] for line in lines[1:]] == [
            ["clusterset", "member-1", "member-1", "1.30.0", "True", "True"],
            ["clusterset", "member-2", "member-2", "1.30.0", "True", "True"]], version


def test_join_agent_and_leave_as_separate_processes(fleet: Fleet, tmp_path: Path) -> None:  # noqa: F811
    state, _proc, _log = fleet
    assert run("cluster", "add", "member-3", "--state-dir", str(state)).returncode == 0
    refused = run("join", "member-3", "--state-dir", str(state))
    assert refused.returncode == 1 and "has no ClusterProperty cluster.clusterset.k8s.io" in refused.stderr
    taken = run("join", "member-3", "--id", "member-1", "--state-dir", str(state))
    assert taken.returncode == 1 and "already used by another member" in taken.stderr, taken.stderr
    joined = run("join", "member-3", "--id", "member-3", "--state-dir", str(state))
    assert joined.returncode == 0, joined.stderr
    rows = wait_status(state, lambda r: "member-3" in r)
    assert rows["member-3"][2] == "False"  # registered, but no agent yet
    with (tmp_path / "agent.log").open("w") as out:
        agent = subprocess.Popen(_clusterset("agent", "--context", "member-3", "--state-dir", str(state),
                                             "--heartbeat", "1"), stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(tmp_path / "agent.log", agent, "reporting to")
        wait_status(state, lambda r: r["member-3"][1:3] == ["True", "True"])
    finally:
        agent.send_signal(signal.SIGINT)
        assert agent.wait(20) == 0
    left = run("leave", "member-3", "--state-dir", str(state))
    assert left.returncode == 0, left.stderr
    wait_status(state, lambda r: "member-3" not in r)


def test_hub_replicas_elect_one_leader_and_fail_over(tmp_path: Path) -> None:
    """Real-cluster mode: `join`, `agent` and two `hub` replicas as processes against plain API servers."""
    server = ServerThread(tmp_path / "server")
    procs: list[subprocess.Popen[str]] = []
    try:
        server.add_cluster("hub", controllers=False)
        server.add_cluster("m1", controllers=False)
        kubeconfig = tmp_path / "kubeconfig"
        server.server.write_kubeconfig(kubeconfig, ["hub", "m1"], "hub")
        base = ["--kubeconfig", str(kubeconfig), "--state-dir", str(tmp_path)]
        joined = run("join", "m1", "--id", "m1", *base)
        assert joined.returncode == 0, joined.stderr

        def start(name: str, *args: str) -> subprocess.Popen[str]:
            with (tmp_path / f"{name}.log").open("w") as out:
                proc = subprocess.Popen(_clusterset(*args, *base), stdout=out, stderr=subprocess.STDOUT, text=True)
            procs.append(proc)
            return proc

        replicas = [start(f"hub{i}", "hub", "--context", "hub") for i in range(2)]
        start("agent", "agent", "--context", "m1", "--heartbeat", "1")
        api = custom(server.info("hub"))

        def healthy() -> bool:
            try:
                cp = api.get_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", "clusterset",
                                                      "clusterprofiles", "m1")
            except ApiException:
                return False
            return [c["status"] for c in cp.get("status", {}).get("conditions", [])
                    if c["type"] == "ControlPlaneHealthy"] == ["True"]

        wait_until(healthy, timeout=60)
        coordination = client.CoordinationV1Api(server.info("hub").api_client())
        holder = coordination.read_namespaced_lease("clusterset-hub", "clusterset").spec.holder_identity
        leader = next(p for p in replicas if holder.endswith(f"_{p.pid}"))
        leader.send_signal(signal.SIGINT)
        assert leader.wait(20) == 0
        follower = next(p for p in replicas if p is not leader)
        wait_until(lambda: coordination.read_namespaced_lease("clusterset-hub", "clusterset").spec.holder_identity
                   not in (None, "", holder), timeout=30)
        assert follower.poll() is None
        # the new leader keeps the profile current
        custom(server.info("m1")).create_cluster_custom_object(
            "about.k8s.io", "v1beta1", "clusterproperties", {"metadata": {"name": "zone.example.com"},
                                                             "spec": {"value": "z1"}})

        def mirrored() -> bool:
            cp = api.get_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", "clusterset",
                                                  "clusterprofiles", "m1")
            return any(p["name"] == "zone.example.com" for p in cp["status"].get("properties", []))

        wait_until(mirrored, timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(20)
        server.stop()
