"""`pods/exec`, `pods/attach`, `pods/portforward` of simulated containers: upgraded as kube-apiserver does (WebSocket),
then ended with a clear message; refused with that message before a SPDY upgrade. kubectl and the official
client's `stream` module print it instead of "the server could not find the requested resource"."""

from __future__ import annotations

import json
import subprocess

import urllib3
from kubernetes import client
from kubernetes.stream import portforward, stream

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl
from tests.helpers import wait_until

SIMULATED = "is simulated: clusterset's embedded kubelet runs no processes"


def running_pod(kubectl: Kubectl, name: str, annotations: str = "") -> None:
    kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{annotations}"
                                      "spec:\n  containers: [{name: main, image: busybox}]\n")
    kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")


def test_kubectl_exec_and_attach_print_that_the_container_is_simulated(live_kubectl: Kubectl) -> None:
    running_pod(live_kubectl, "web")
    result = live_kubectl.run("exec", "web", "--", "ls", "-l", check=False)
    assert result.returncode == 1
    assert (f'container "main" of pod default/web {SIMULATED}, so there is nothing to run \'ls -l\''
            in result.stderr), result.stderr
    attached = live_kubectl.run("attach", "web", check=False)
    assert attached.returncode == 1
    assert f"{SIMULATED}, so there is nothing to attach to" in attached.stderr, attached.stderr


def test_kubectl_port_forward_prints_that_nothing_listens(live_kubectl: Kubectl) -> None:
    running_pod(live_kubectl, "web")
    forward = subprocess.run(
        [live_kubectl.binary, f"--kubeconfig={live_kubectl.info.kubeconfig}", f"--cache-dir={live_kubectl.cache_dir}",
         "port-forward", "pod/web", "0:80"], capture_output=True, text=True, timeout=30)
    assert forward.returncode == 1
    assert f"pod default/web {SIMULATED}, so nothing listens to forward to" in forward.stderr, forward.stderr
    assert "could not find the requested resource" not in forward.stderr


def test_the_python_client_streams_get_the_message(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    running_pod(live_kubectl, "web")
    api = client.CoreV1Api(live_cluster.api_client())
    session = stream(api.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "echo hi"],
                     stderr=True, stdout=True, stdin=False, tty=False, _preload_content=False)
    session.run_forever(timeout=10)
    failure = json.loads(session.read_channel(3))
    assert failure["status"] == "Failure" and failure["reason"] == "InternalError"
    assert failure["message"].endswith(f"{SIMULATED}, so there is nothing to run 'sh -c echo hi'")
    assert session.read_stdout() == ""
    forwarded = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="80,8443")
    error = wait_until(lambda: forwarded.error(80), message="the error channel of port 80")  # read by a thread
    assert error == f"pod default/web {SIMULATED}, so nothing listens on port 80, 8443 to forward to"


def test_a_request_that_does_not_upgrade_is_refused(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    running_pod(live_kubectl, "web")
    http = urllib3.PoolManager(ca_certs=live_cluster.ca_file)
    url = f"{live_cluster.server}/api/v1/namespaces/default/pods/web/exec?command=ls"
    headers = {"Authorization": f"Bearer {live_cluster.token}"}
    resp = http.request("POST", url, headers=headers)
    assert resp.status == 400 and json.loads(resp.data)["message"] == "Upgrade request required"
    assert http.request("PUT", url, headers=headers).status == 405


def test_upstream_checks_before_the_upgrade(live_kubectl: Kubectl, live_cluster: ClusterInfo) -> None:
    live_kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Pod\nmetadata:\n  name: done\n  annotations: "
                                           '{"clusterset.io/simulate-phase": "Succeeded"}\nspec:\n'
                                           "  containers: [{name: main, image: busybox}]\n")
    live_kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/done", "--timeout=30s")
    http = urllib3.PoolManager(ca_certs=live_cluster.ca_file)
    headers = {"Authorization": f"Bearer {live_cluster.token}", "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
               "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    base = f"{live_cluster.server}/api/v1/namespaces/default/pods"
    done = http.request("POST", f"{base}/done/exec?command=ls&stdout=true", headers=headers)
    assert done.status == 400
    assert json.loads(done.data)["message"] == ("cannot exec into a container in a completed pod; current phase is "
                                                "Succeeded")
    missing = http.request("POST", f"{base}/missing/exec?command=ls", headers=headers)
    assert missing.status == 404 and json.loads(missing.data)["message"] == 'pods "missing" not found'


def test_discovery_lists_the_pod_subresources(cluster: ClusterInfo) -> None:
    http = urllib3.PoolManager(ca_certs=cluster.ca_file)
    auth = {"Authorization": f"Bearer {cluster.token}"}
    legacy = json.loads(http.request("GET", f"{cluster.server}/api/v1", headers=auth).data)
    found = {r["name"]: (r["kind"], r["verbs"]) for r in legacy["resources"] if r["name"].startswith("pods/")}
    assert found == {"pods/status": ("Pod", ["get", "patch", "update"]), "pods/log": ("Pod", ["get"]),
                     "pods/exec": ("PodExecOptions", ["create", "get"]),
                     "pods/attach": ("PodAttachOptions", ["create", "get"]),
                     "pods/portforward": ("PodPortForwardOptions", ["create", "get"])}
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    aggregated = json.loads(http.request("GET", f"{cluster.server}/api", headers={**auth, "Accept": accept}).data)
    pods = next(r for r in aggregated["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["exec"]["responseKind"]["kind"] == "PodExecOptions" and subs["exec"]["verbs"] == ["create", "get"]
    assert subs["log"]["verbs"] == ["get"]
