"""`pods/log` of simulated containers: the kubelet's log of the pod's lifecycle, PodLogOptions, upstream's errors,
and `kubectl logs` (with -f) as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import urllib3

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl
from tests.controllers import wait_until

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


class Logs:
    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.http = urllib3.PoolManager(ca_certs=info.ca_file)

    def get(self, pod: str, query: str = "", method: str = "GET") -> tuple[int, str, str]:
        resp = self.http.request(method, f"{self.info.server}/api/v1/namespaces/default/pods/{pod}/log?{query}",
                                 headers={"Authorization": f"Bearer {self.info.token}"}, timeout=30)
        return resp.status, resp.headers.get("Content-Type", ""), resp.data.decode()

    def error(self, pod: str, query: str = "") -> tuple[int, str]:
        status, _, body = self.get(pod, query)
        parsed: dict[str, Any] = json.loads(body)
        assert parsed["kind"] == "Status" and parsed["code"] == status
        return status, str(parsed["message"])


def run_pod(kubectl: Kubectl, name: str, containers: str = "[{name: main, image: busybox}]",
            annotations: str = "") -> None:
    kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{annotations}"
                                      f"spec:\n  containers: {containers}\n")


def ready(kubectl: Kubectl, name: str) -> None:
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")


def test_the_log_tells_the_pods_lifecycle(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    run_pod(live_kubectl, "web")
    ready(live_kubectl, "web")
    logs = Logs(live_cluster)
    status, content_type, text = logs.get("web")
    assert status == 200 and content_type.startswith("text/plain")
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert re.fullmatch(r"\[clusterset kubelet\] pod default/web scheduled to node \S+", lines[0])
    assert lines[1] == ('[clusterset kubelet] container "main" started from image busybox: simulated, it runs no '
                        'process')
    assert lines[2] == '[clusterset kubelet] container "main" is ready'

    _, _, stamped = logs.get("web", "timestamps=true")
    assert [line.split(" ", 1)[1] for line in stamped.splitlines()] == lines
    assert all(re.match(STAMP + " ", line) for line in stamped.splitlines())
    assert logs.get("web", "tailLines=1")[2] == lines[2] + "\n"
    assert logs.get("web", "tailLines=0")[2] == ""
    assert logs.get("web", "limitBytes=12")[2] == text[:12]
    assert logs.get("web", "sinceTime=2999-01-01T00:00:00Z")[2] == ""
    assert logs.get("web", "sinceTime=2000-01-01T00:00:00Z&container=main")[2] == text
    assert logs.get("web", "sinceSeconds=3600")[2] == text


def test_errors_as_upstream(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    run_pod(live_kubectl, "pair", "[{name: a, image: busybox}, {name: b, image: busybox}]")
    run_pod(live_kubectl, "stuck", annotations='  annotations: {"clusterset.io/simulate-phase": "Pending"}\n')
    ready(live_kubectl, "pair")
    logs = Logs(live_cluster)
    assert logs.error("pair") == (400, "a container name must be specified for pod pair, choose one of: [a b]")
    assert logs.error("pair", "container=c") == (400, "container c is not valid for pod pair")
    assert logs.error("pair", "container=a&previous=true") == (
        400, 'previous terminated container "a" in pod "pair" not found')
    assert logs.error("missing") == (404, 'pods "missing" not found')
    assert logs.error("pair", "container=a&tailLines=-1") == (
        422, 'PodLogOptions "pair" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0')
    status, message = logs.error("pair", "container=a&sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z")
    assert status == 422 and "at most one of `sinceTime` or `sinceSeconds` may be specified" in message
    assert logs.error("pair", "container=a&limitBytes=0")[0] == 422
    assert logs.error("pair", "container=a&tailLines=x")[0] == 400
    assert logs.get("pair", "container=a", method="POST")[0] == 405
    wait_until(lambda: logs.get("stuck")[0] == 400, message="the pending pod to be bound")
    assert logs.error("stuck") == (400, 'container "main" in pod "stuck" is waiting to start: ContainerCreating')


def test_kubectl_logs(live_kubectl: Kubectl) -> None:
    run_pod(live_kubectl, "app")
    ready(live_kubectl, "app")
    out = live_kubectl("logs", "app")
    assert 'container "main" started from image busybox' in out and 'container "main" is ready' in out
    assert live_kubectl("logs", "app", "--tail=1").strip() == '[clusterset kubelet] container "main" is ready'
    assert re.match(STAMP + r" \[clusterset kubelet\] pod default/app", live_kubectl("logs", "app", "--timestamps"))
    assert live_kubectl("logs", "app", "--since=1h", "-c", "main") == out
    failed = live_kubectl.run("logs", "app", "-c", "nope", check=False)
    assert failed.returncode == 1
    assert "container nope is not valid for pod app" in failed.stderr
    previous = live_kubectl.run("logs", "app", "--previous", check=False)
    assert previous.returncode == 1
    assert 'previous terminated container "main" in pod "app" not found' in previous.stderr


def test_kubectl_logs_follow_streams_until_the_pod_goes(live_kubectl: Kubectl) -> None:
    run_pod(live_kubectl, "tail")
    ready(live_kubectl, "tail")
    cmd = [live_kubectl.binary, f"--kubeconfig={live_kubectl.info.kubeconfig}",
           f"--cache-dir={live_kubectl.cache_dir}", "logs", "-f", "tail"]
    follower = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        first = [follower.stdout.readline() for _ in range(3)]
        assert first[2] == '[clusterset kubelet] container "main" is ready\n'
        live_kubectl("delete", "pod", "tail", "--wait=false")
        out, err = follower.communicate(timeout=30)  # the stream ends once the pod is gone
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert re.fullmatch(r'\[clusterset kubelet\] container "main" stopping: pod deleted, grace period 30s\n', out)


@pytest.mark.parametrize("query", ["follow=true", "follow=true&tailLines=1"])
def test_a_followed_log_of_a_finished_container_ends(live_kubectl: Kubectl, live_cluster: ClusterInfo,
                                                      query: str) -> None:
    run_pod(live_kubectl, "done", annotations='  annotations: {"clusterset.io/simulate-phase": "Succeeded"}\n')
    logs = Logs(live_cluster)
    text = wait_until(lambda: (r := logs.get("done", query))[0] == 200 and "terminated" in r[2] and r[2],
                      message="the terminated container's log")
    assert text.endswith('[clusterset kubelet] container "main" terminated: Completed (exit code 0)\n')
