"""Restarts lose nothing (clean stop and kill -9); logical clusters are isolated from each other."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo, ServerThread


def core(info: ClusterInfo) -> client.CoreV1Api:
    return client.CoreV1Api(info.api_client())


def test_restart_keeps_objects_versions_and_watch_history(tmp_path: Path) -> None:
    first = ServerThread(tmp_path)
    info = first.add_cluster("keep")
    api = core(info)
    start_rv = api.list_namespaced_config_map("default").metadata.resource_version
    created = api.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"v": "1"}})
    api.patch_namespaced_config_map("a", "default", {"data": {"v": "2"}})
    last = api.read_namespaced_config_map("a", "default")
    first.stop()

    second = ServerThread(tmp_path)
    try:
        info2 = second.info("keep")
        assert info2.token == info.token  # the same credentials keep working
        api2 = core(info2)
        again = api2.read_namespaced_config_map("a", "default")
        assert again.metadata.uid == created.metadata.uid
        assert again.metadata.resource_version == last.metadata.resource_version
        assert again.data == {"v": "2"}
        # a watch resumed from a version seen before the restart replays the retained history
        seen = []
        for ev in watch.Watch().stream(api2.list_namespaced_config_map, "default", resource_version=start_rv,
                                       timeout_seconds=5):
            seen.append((ev["type"], (ev["object"].data or {}).get("v")))
            if len(seen) == 2:
                break
        assert seen == [("ADDED", "1"), ("MODIFIED", "2")]
        # versions keep increasing after the restart
        newer = api2.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        assert int(newer.metadata.resource_version) > int(last.metadata.resource_version)
        # the service IP allocator remembers what was taken
        svc = api2.read_namespaced_service("kubernetes", "default")
        with pytest.raises(ApiException) as exc:
            api2.create_namespaced_service("default", {"metadata": {"name": "dup"}, "spec": {
                "clusterIP": svc.spec.cluster_ip, "ports": [{"port": 80}]}})
        assert exc.value.status == 422
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_process(state: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clusterset.cli.main", "apiserver", "--state-dir", str(state), "--port", str(port),
         "--cluster", "crash", *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if (state / "kubeconfig").exists():
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else b''!r}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start within 30 s")


def _cluster_from_kubeconfig(state: Path) -> ClusterInfo:
    config = yaml.safe_load((state / "kubeconfig").read_text())
    return ClusterInfo("crash", config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"],
                       str(state / "pki" / "ca.crt"), state / "kubeconfig")


def test_process_crash_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """kill -9 right after the last acknowledged write: every acknowledged object is there after restart."""
    port = _free_port()
    proc = _start_process(tmp_path, port)
    try:
        api = core(_cluster_from_kubeconfig(tmp_path))
        acknowledged = []
        for i in range(200):
            cm = api.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}})
            acknowledged.append((cm.metadata.name, cm.metadata.resource_version))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    proc = _start_process(tmp_path, port)
    try:
        api = core(_cluster_from_kubeconfig(tmp_path))
        listed = {i.metadata.name: i.metadata.resource_version for i in api.list_namespaced_config_map("default").items}
        for name, rv in acknowledged:
            assert listed.get(name) == rv, name
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_clusters_are_isolated(server: ServerThread) -> None:
    a, b = server.add_cluster(), server.add_cluster()
    core(a).create_namespaced_config_map("default", {"metadata": {"name": "only-in-a"}})
    ext = client.ApiextensionsV1Api(a.api_client())
    ext.create_custom_resource_definition({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}})
    with pytest.raises(ApiException) as exc:
        core(b).read_namespaced_config_map("only-in-a", "default")
    assert exc.value.status == 404
    assert client.ApiextensionsV1Api(b.api_client()).list_custom_resource_definition().items == []
    groups = client.ApisApi(b.api_client()).get_api_versions().groups
    assert "example.com" not in [g.name for g in groups]
    # the same namespace names, different uids
    assert core(a).read_namespace("default").metadata.uid != core(b).read_namespace("default").metadata.uid


def test_token_of_one_cluster_is_rejected_by_others(server: ServerThread) -> None:
    a, b = server.add_cluster(), server.add_cluster()
    http = urllib3.PoolManager(ca_certs=a.ca_file)
    wrong = http.request("GET", f"{b.server}/api/v1/namespaces", headers={"Authorization": f"Bearer {a.token}"})
    assert wrong.status == 401
    assert json.loads(wrong.data)["reason"] == "Unauthorized"
    anonymous = http.request("GET", f"{b.server}/api/v1/namespaces")
    assert anonymous.status == 401
    health = http.request("GET", f"{b.server}/readyz")
    assert health.status == 200 and health.data == b"ok"
    right = http.request("GET", f"{b.server}/api/v1/namespaces", headers={"Authorization": f"Bearer {b.token}"})
    assert right.status == 200


def test_service_ranges_differ_between_clusters(server: ServerThread) -> None:
    a, b = server.add_cluster(), server.add_cluster()
    ip_a = core(a).read_namespaced_service("kubernetes", "default").spec.cluster_ip
    ip_b = core(b).read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert ip_a != ip_b


def test_clusters_can_be_removed(server: ServerThread) -> None:
    gone = server.add_cluster()
    server.remove_cluster(gone.name)
    http = urllib3.PoolManager(ca_certs=gone.ca_file)
    resp = http.request("GET", f"{gone.server}/api/v1/namespaces", headers={"Authorization": f"Bearer {gone.token}"})
    assert resp.status == 401
