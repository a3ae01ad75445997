"""The inventory as a user drives it: `clusterset up`, `status`, `join`, `agent`, `leave`, and kubectl."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.client import ClientConfig, ClusterClient
from clusterset.fleet.hub import HubOptions, hub_controllers
from clusterset.testing import ServerThread
from tests.conftest import KUBECTLS
from tests.helpers import custom, wait_until
from tests.test_cli import _clusterset, _free_port, _wait_for, fleet  # noqa: F401  (the `fleet` fixture)

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
        # the hub context's namespace is the ClusterSet's: no -A needed
        out = subprocess.run([binary, f"--kubeconfig={state / 'kubeconfig'}", f"--cache-dir={tmp_path / version}",
                              "--context", "hub", "get", "clusterprofiles"], capture_output=True, text=True, timeout=60)
        assert [line.split()[:2] for line in out.stdout.splitlines()] == [
            ["NAME", "DISPLAY"], ["member-1", "member-1"], ["member-2", "member-2"]], (version, out.stderr)


def test_a_cluster_added_to_a_running_fleet_joins_it(fleet: Fleet) -> None:  # noqa: F811
    state, _proc, _log = fleet
    assert run("cluster", "add", "member-3", "--state-dir", str(state)).returncode == 0
    rows = wait_status(state, lambda r: r.get("member-3", [""])[1:3] == ["True", "True"])
    assert "cluster.clusterset.k8s.io=member-3" in rows["member-3"][-1]
    described = json.loads((state / "fleet.json").read_text())
    assert [c["name"] for c in described["clusters"]] == ["hub", "member-1", "member-2", "member-3"]
    # removed, left, and added again under its name: a new cluster (new token, new uid) that joins again
    assert run("cluster", "remove", "member-3", "--state-dir", str(state)).returncode == 0
    left = run("leave", "--id", "member-3", "--state-dir", str(state))
    assert left.returncode == 0, left.stderr
    wait_status(state, lambda r: "member-3" not in r)
    assert run("cluster", "add", "member-3", "--state-dir", str(state)).returncode == 0
    wait_status(state, lambda r: r.get("member-3", [""])[1:3] == ["True", "True"])


class Plain:
    """Plain API servers (no fleet): clusterset's commands as separate processes, as on real clusters."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.server = ServerThread(tmp_path / "server")
        self.procs: list[subprocess.Popen[str]] = []
        for name in ("hub", "m1", "m2"):
            self.server.add_cluster(name, controllers=False)
        kubeconfig = tmp_path / "kubeconfig"
        self.server.server.write_kubeconfig(kubeconfig, ["hub", "m1", "m2"], "hub")
        self.flags = ["--kubeconfig", str(kubeconfig), "--state-dir", str(tmp_path)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, *self.flags)

    def start(self, name: str, *args: str) -> subprocess.Popen[str]:
        with (self.tmp_path / f"{name}.log").open("w") as out:
            proc = subprocess.Popen(_clusterset(*args, *self.flags), stdout=out, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    def profile(self, name: str) -> dict[str, Any] | None:
        try:
            cp: dict[str, Any] = custom(self.server.info("hub")).get_namespaced_custom_object(
                "multicluster.x-k8s.io", "v1alpha1", "clusterset", "clusterprofiles", name)
        except ApiException:
            return None
        return cp

    def condition(self, name: str, type_: str) -> str | None:
        cp = self.profile(name) or {}
        found = [c["status"] for c in cp.get("status", {}).get("conditions", []) if c["type"] == type_]
        return found[0] if found else None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(20)
        self.server.stop()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Plain]:
    setup = Plain(tmp_path)
    try:
        yield setup
    finally:
        setup.stop()


def test_join_agent_and_leave_as_separate_processes(plain: Plain) -> None:
    metrics_port = _free_port()
    plain.start("hub", "hub", "--context", "hub", "--no-leader-elect", "--metrics-port", str(metrics_port))
    refused = plain.run("join", "m1")
    assert refused.returncode == 1 and "has no ClusterProperty cluster.clusterset.k8s.io" in refused.stderr
    assert plain.run("join", "m1", "--id", "m1").returncode == 0
    taken = plain.run("join", "m2", "--id", "m1")
    assert taken.returncode == 1 and "already used by another member" in taken.stderr, taken.stderr
    wait_until(lambda: plain.condition("m1", "Joined") == "False", timeout=30)  # registered, no agent yet
    # `clusterset hub` runs the controllers that fleet/hub.py names, as the embedded fleet does (test_fleet.py)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
        queues = re.findall(r'^workqueue_depth\{name="([^"]+)"\}', resp.read().decode(), re.MULTILINE)
    hub = plain.server.info("hub")
    hub_side = hub_controllers(ClusterClient(ClientConfig(server=hub.server, token=hub.token)), HubOptions())
    assert sorted(queues) == sorted(c.name for c in hub_side)
    agent = plain.start("agent", "agent", "--context", "m1", "--heartbeat", "1")
    _wait_for(plain.tmp_path / "agent.log", agent, "reporting to")
    wait_until(lambda: plain.condition("m1", "Joined") == "True" and
               plain.condition("m1", "ControlPlaneHealthy") == "True", timeout=30)
    agent.send_signal(signal.SIGINT)
    assert agent.wait(20) == 0
    left = plain.run("leave", "m1")
    assert left.returncode == 0, left.stderr
    wait_until(lambda: plain.profile("m1") is None, timeout=30)
    # the member is no longer in a ClusterSet (KEP-2149: clusterset.k8s.io exists exactly while it is); its id stays
    props = custom(plain.server.info("m1")).list_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties")
    assert {p["metadata"]["name"]: p["spec"]["value"] for p in props["items"]} == {"cluster.clusterset.k8s.io": "m1"}


def test_hub_replicas_elect_one_leader_and_fail_over(plain: Plain) -> None:
    assert plain.run("join", "m1", "--id", "m1").returncode == 0
    replicas = [plain.start(f"hub{i}", "hub", "--context", "hub") for i in range(2)]
    plain.start("agent", "agent", "--context", "m1", "--heartbeat", "1")
    wait_until(lambda: plain.condition("m1", "ControlPlaneHealthy") == "True", timeout=60)
    coordination = client.CoordinationV1Api(plain.server.info("hub").api_client())
    holder = coordination.read_namespaced_lease("clusterset-hub", "clusterset").spec.holder_identity
    leader = next(p for p in replicas if holder.endswith(f"_{p.pid}"))
    leader.send_signal(signal.SIGINT)
    assert leader.wait(20) == 0
    follower = next(p for p in replicas if p is not leader)
    wait_until(lambda: coordination.read_namespaced_lease("clusterset-hub", "clusterset").spec.holder_identity
               not in (None, "", holder), timeout=30)
    assert follower.poll() is None
    # the new leader keeps the profile current
    custom(plain.server.info("m1")).create_cluster_custom_object(
        "about.k8s.io", "v1beta1", "clusterproperties", {"metadata": {"name": "zone.example.com"},
                                                         "spec": {"value": "z1"}})
    wait_until(lambda: any(p["name"] == "zone.example.com"
                           for p in ((plain.profile("m1") or {}).get("status") or {}).get("properties", [])),
               timeout=30)


def test_an_agent_takes_a_new_join_and_stops_when_its_member_is_gone(plain: Plain) -> None:
    plain.start("hub", "hub", "--context", "hub", "--no-leader-elect")
    assert plain.run("join", "m1", "--id", "m1").returncode == 0
    agent = plain.start("agent", "agent", "--context", "m1", "--heartbeat", "1")
    wait_until(lambda: plain.condition("m1", "ControlPlaneHealthy") == "True", timeout=30)
    # leave revokes the agent's token; a new join writes another into the member, which the agent takes
    assert plain.run("leave", "m1").returncode == 0
    wait_until(lambda: plain.profile("m1") is None, timeout=30)
    assert plain.run("join", "m1").returncode == 0
    wait_until(lambda: plain.condition("m1", "Joined") == "True", timeout=20)
    assert agent.poll() is None
    # its cluster goes: the agent says so once, and exits 1
    plain.server.remove_cluster("m1")
    assert agent.wait(30) == 1
    log = (plain.tmp_path / "agent.log").read_text()
    assert log.count("agent stopped, its member is gone cluster=m1") == 1, log
    wait_until(lambda: plain.condition("m1", "ControlPlaneHealthy") == "False", timeout=20)
