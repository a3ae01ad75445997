"""kubectl, as a user drives it, against the embedded API server: get, create, label, annotate,
delete (with cascading), discovery commands, watch, wait and namespace deletion.

Setup and assertions go through the official Python client where that is simpler; the command
under test always goes through a real kubectl (1.27 and 1.33, see the `kubectl` fixture).
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from clusterset.testing import ClusterInfo
from tests.helpers import apps, core, gone, table, wait_until

if TYPE_CHECKING:
    from tests.conftest import Kubectl

MERGE = "application/merge-patch+json"


# ---------------------------------------------------------------------------- helpers
def names(text: str) -> set[str]:
    """The lines of `-o name` output."""
    return {line.strip() for line in text.splitlines() if line.strip()}


def kubectl_cmd(kubectl: Kubectl, *args: str) -> list[str]:
    return [kubectl.binary, f"--kubeconfig={kubectl.info.kubeconfig}", f"--cache-dir={kubectl.cache_dir}", *args]


class Stream:
    """A long-running kubectl whose stdout and stderr lines are collected by reader threads."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self.proc = subprocess.Popen(kubectl_cmd(kubectl, *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[str] = []
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line.rstrip("\n"))

    def expect(self, wanted: str, timeout: float = 15.0) -> None:
        """Waits for the stdout line `wanted` (lines before it are consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line {wanted!r} within {timeout}s; saw {self.seen!r}; "
                                     f"stderr: {self.errors!r}")
            try:
                line = self.lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.strip() == wanted:
                return

    def expect_stderr(self, fragment: str, timeout: float = 15.0) -> None:
        """Waits for a stderr line containing `fragment` (e.g. a request logged at -v=6)."""
        wait_until(lambda: any(fragment in line for line in list(self.errors)), timeout,
                   message=f"stderr line with {fragment!r}")

    def finish(self, timeout: float = 40.0) -> tuple[int, str]:
        """Waits for the process to exit; returns its exit code and the stdout lines not yet consumed."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return code, "\n".join(rest)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def streaming(kubectl: Kubectl, *args: str) -> Iterator[Stream]:
    stream = Stream(kubectl, *args)
    try:
        yield stream
    finally:
        stream.close()


def make_deployment(info: ClusterInfo, name: str = "web", namespace: str = "default", replicas: int = 2
                    ) -> dict[str, Any]:
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
        },
    }
    api = apps(info)
    created: dict[str, Any] = api.api_client.sanitize_for_serialization(
        api.create_namespaced_deployment(namespace, body))
    return created


def make_owned_replicaset(info: ClusterInfo, owner: dict[str, Any], finalizers: list[str] | None = None) -> str:
    """A ReplicaSet the way the deployment controller would create it (there is no such controller here).

    Returns its name. The raw response is parsed: the point of these tests is deletion, not decoding.
    """
    name = owner["metadata"]["name"]
    meta: dict[str, Any] = {
        "name": f"{name}-5d4f8b9c7",
        "labels": {"app": name},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                             "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
    }
    if finalizers:
        meta["finalizers"] = finalizers
    body = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
    }
    response = apps(info).create_namespaced_replica_set(owner["metadata"]["namespace"], body,
                                                        _preload_content=False)
    created: dict[str, Any] = json.loads(response.data)
    assert created["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
    return str(created["metadata"]["name"])


def live(kubectl: Kubectl, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
    """The object as `kubectl get -o json` shows it, or None if it does not exist."""
    out = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def wait_for_namespace_ready(info: ClusterInfo, namespace: str) -> None:
    """Pods need the namespace's `default` ServiceAccount, which the server creates asynchronously."""
    api = core(info)
    wait_until(lambda: not gone(lambda: api.read_namespaced_service_account("default", namespace)),
               message=f"serviceaccount default in {namespace}")


# ---------------------------------------------------------------------------- get
def test_get_yaml_and_json_show_the_stored_object(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    created = api.create_namespaced_config_map(
        "default", {"metadata": {"name": "cfg", "labels": {"app": "web"}}, "data": {"a": "1", "b": "2"}})

    as_yaml = yaml.safe_load(kubectl("get", "configmap", "cfg", "-o", "yaml"))
    assert as_yaml["apiVersion"] == "v1" and as_yaml["kind"] == "ConfigMap"
    assert as_yaml["metadata"]["name"] == "cfg" and as_yaml["metadata"]["namespace"] == "default"
    assert as_yaml["metadata"]["uid"] == created.metadata.uid
    assert as_yaml["metadata"]["resourceVersion"] == created.metadata.resource_version
    assert as_yaml["metadata"]["labels"] == {"app": "web"}
    assert as_yaml["data"] == {"a": "1", "b": "2"}

    as_json = json.loads(kubectl("get", "cm", "cfg", "-o", "json"))
    assert as_json["metadata"]["uid"] == created.metadata.uid and as_json["data"] == {"a": "1", "b": "2"}

    listed = json.loads(kubectl("get", "cm", "-o", "json"))
    assert listed["kind"] == "List"
    assert "cfg" in {item["metadata"]["name"] for item in listed["items"]}
    assert all(item["kind"] == "ConfigMap" for item in listed["items"])


def test_get_table_shows_server_columns(kubectl: Kubectl) -> None:
    core(kubectl.info).create_namespaced_config_map("default", {"metadata": {"name": "cfg"},
                                                               "data": {"a": "1", "b": "2"}})
    rows = table(kubectl("get", "configmap", "cfg"))
    assert rows[0] == ["NAME", "DATA", "AGE"]
    assert rows[1][:2] == ["cfg", "2"]
    assert re.fullmatch(r"\d+s", rows[1][2]), rows[1]


def test_get_wide_adds_priority_columns(kubectl: Kubectl) -> None:
    make_deployment(kubectl.info, "web", replicas=2)
    rows = table(kubectl("get", "deployments", "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["NAME"] == "web"
    assert row["READY"] == "0/2"
    assert row["CONTAINERS"] == "nginx" and row["IMAGES"] == "nginx:1.27" and row["SELECTOR"] == "app=web"
    narrow = table(kubectl("get", "deployments"))
    assert narrow[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


def test_get_with_label_selectors(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    for name, labels in (("prod-web", {"env": "prod", "tier": "web"}), ("prod-db", {"env": "prod", "tier": "db"}),
                         ("dev-web", {"env": "dev", "tier": "web"}), ("plain", {})):
        api.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    assert names(kubectl("get", "cm", "-l", "env=prod", "-o", "name")) == {"configmap/prod-web", "configmap/prod-db"}
    assert names(kubectl("get", "cm", "-l", "env=prod,tier=web", "-o", "name")) == {"configmap/prod-web"}
    assert names(kubectl("get", "cm", "-l", "tier in (db, web),env!=prod", "-o", "name")) == {"configmap/dev-web"}
    # `!=` and `notin` also match objects without the key (kube-root-ca.crt, plain).
    assert names(kubectl("get", "cm", "-l", "env notin (prod)", "-o", "name")) == {
        "configmap/dev-web", "configmap/plain", "configmap/kube-root-ca.crt"}
    assert names(kubectl("get", "cm", "-l", "!tier", "-o", "name")) == {"configmap/plain", "configmap/kube-root-ca.crt"}
    assert names(kubectl("get", "cm", "-l", "tier", "-o", "name")) == {
        "configmap/prod-web", "configmap/prod-db", "configmap/dev-web"}

    bad = kubectl.run("get", "cm", "-l", "a b", check=False)
    assert bad.returncode != 0
    assert "unable to parse requirement" in bad.stderr


def test_get_all_namespaces(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    for ns in ("team-a", "team-b"):
        api.create_namespace({"metadata": {"name": ns}})
        api.create_namespaced_config_map(ns, {"metadata": {"name": f"{ns}-cfg", "labels": {"mine": "yes"}}})

    rows = table(kubectl("get", "cm", "-A", "-l", "mine=yes"))
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert {(row[0], row[1]) for row in rows[1:]} == {("team-a", "team-a-cfg"), ("team-b", "team-b-cfg")}

    listed = json.loads(kubectl("get", "cm", "--all-namespaces", "-o", "json"))
    pairs = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]}
    assert {("team-a", "team-a-cfg"), ("team-b", "team-b-cfg")} <= pairs
    assert ("default", "kube-root-ca.crt") in pairs

    only_a = names(kubectl("get", "cm", "-n", "team-a", "-l", "mine=yes", "-o", "name"))
    assert only_a == {"configmap/team-a-cfg"}


def test_get_with_field_selectors(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "one"}})
    api.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    api.create_namespaced_secret("default", {"metadata": {"name": "opaque"}, "stringData": {"k": "v"}})
    api.create_namespaced_secret("default", {"metadata": {"name": "basic"}, "type": "kubernetes.io/basic-auth",
                                             "stringData": {"username": "u", "password": "p"}})

    assert names(kubectl("get", "cm", "--field-selector", "metadata.name=two", "-o", "name")) == {"configmap/two"}
    assert "configmap/two" not in names(kubectl("get", "cm", "--field-selector", "metadata.name!=two", "-o", "name"))
    assert names(kubectl("get", "secrets", "--field-selector", "type=kubernetes.io/basic-auth", "-o", "name")) == {
        "secret/basic"}
    across = names(kubectl("get", "cm", "-A", "--field-selector", "metadata.namespace=default,metadata.name=one",
                           "-o", "name"))
    assert across == {"configmap/one"}

    bad = kubectl.run("get", "cm", "--field-selector", "spec.x=1", check=False)
    assert bad.returncode != 0
    assert "field label not supported: spec.x" in bad.stderr


def test_get_missing_object_is_not_found(kubectl: Kubectl) -> None:
    result = kubectl.run("get", "cm", "nope", check=False)
    assert result.returncode != 0
    assert 'Error from server (NotFound): configmaps "nope" not found' in result.stderr
    ignored = kubectl.run("get", "cm", "nope", "--ignore-not-found", check=False)
    assert ignored.returncode == 0 and ignored.stdout == ""


# ---------------------------------------------------------------------------- create
CREATE_MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: app
        image: shop:1.0
        ports:
        - containerPort: 8080
"""


def test_create_from_stdin(kubectl: Kubectl) -> None:
    out = kubectl("create", "-f", "-", input=CREATE_MANIFESTS)
    assert out.splitlines() == ["namespace/shop created", "configmap/settings created", "secret/creds created",
                                "deployment.apps/shop created"]
    api = core(kubectl.info)
    assert api.read_namespace("shop").status.phase == "Active"
    assert api.read_namespaced_config_map("settings", "shop").data == {"color": "blue"}
    secret = api.read_namespaced_secret("creds", "shop")
    assert secret.data == {"password": "aHVudGVyMg=="} and secret.type == "Opaque"
    deployment = apps(kubectl.info).read_namespaced_deployment("shop", "shop")
    assert deployment.spec.replicas == 3
    assert deployment.spec.template.spec.containers[0].ports[0].container_port == 8080
    assert deployment.metadata.generation == 1

    again = kubectl.run("create", "-f", "-", input=CREATE_MANIFESTS, check=False)
    assert again.returncode != 0
    assert 'namespaces "shop" already exists' in again.stderr
    assert 'configmaps "settings" already exists' in again.stderr
    assert 'deployments.apps "shop" already exists' in again.stderr


def test_create_configmap_generator(kubectl: Kubectl) -> None:
    out = kubectl("create", "configmap", "app-config", "--from-literal=color=blue", "--from-literal=size=2")
    assert out.strip() == "configmap/app-config created"
    cm = core(kubectl.info).read_namespaced_config_map("app-config", "default")
    assert cm.data == {"color": "blue", "size": "2"}
    assert any(m.manager == "kubectl-create" for m in cm.metadata.managed_fields or [])


def test_create_secret_generator(kubectl: Kubectl) -> None:
    out = kubectl("create", "secret", "generic", "db", "--from-literal=user=admin")
    assert out.strip() == "secret/db created"
    secret = core(kubectl.info).read_namespaced_secret("db", "default")
    assert secret.type == "Opaque" and secret.data == {"user": "YWRtaW4="}


def test_create_namespace_generator(kubectl: Kubectl) -> None:
    out = kubectl("create", "namespace", "blue")
    assert out.strip() == "namespace/blue created"
    ns = core(kubectl.info).read_namespace("blue")
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": "blue"}
    assert ns.spec.finalizers == ["kubernetes"]


def test_create_deployment_generator(kubectl: Kubectl) -> None:
    out = kubectl("create", "deployment", "api", "--image=api:2.1", "--replicas=2", "--port=8080")
    assert out.strip() == "deployment.apps/api created"
    deployment = apps(kubectl.info).read_namespaced_deployment("api", "default")
    assert deployment.spec.replicas == 2
    assert deployment.spec.selector.match_labels == {"app": "api"}
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "api:2.1" and container.ports[0].container_port == 8080
    assert deployment.spec.strategy.type == "RollingUpdate"  # defaulted by the server


# ---------------------------------------------------------------------------- label / annotate
def test_label_add_overwrite_remove(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "cfg", "labels": {"keep": "me"}}})

    assert kubectl("label", "cm", "cfg", "env=prod").strip() == "configmap/cfg labeled"
    assert api.read_namespaced_config_map("cfg", "default").metadata.labels == {"keep": "me", "env": "prod"}

    refused = kubectl.run("label", "cm", "cfg", "env=dev", check=False)
    assert refused.returncode != 0
    assert "'env' already has a value (prod), and --overwrite is false" in refused.stderr
    assert api.read_namespaced_config_map("cfg", "default").metadata.labels["env"] == "prod"

    assert kubectl("label", "cm", "cfg", "env=dev", "--overwrite").strip() == "configmap/cfg labeled"
    assert api.read_namespaced_config_map("cfg", "default").metadata.labels == {"keep": "me", "env": "dev"}

    assert kubectl("label", "cm", "cfg", "env-").strip() == "configmap/cfg unlabeled"
    assert api.read_namespaced_config_map("cfg", "default").metadata.labels == {"keep": "me"}


def test_label_with_stale_resource_version_conflicts(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    first = api.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    api.patch_namespaced_config_map("cfg", "default", {"data": {"x": "1"}}, _content_type=MERGE)
    stale = first.metadata.resource_version
    result = kubectl.run("label", "cm", "cfg", "a=b", f"--resource-version={stale}", check=False)
    assert result.returncode != 0
    assert "the object has been modified" in result.stderr
    assert not api.read_namespaced_config_map("cfg", "default").metadata.labels


def test_label_many_by_selector(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        api.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"team": team}}})
    out = kubectl("label", "cm", "-l", "team=x", "reviewed=true")
    assert sorted(out.splitlines()) == ["configmap/a labeled", "configmap/b labeled"]
    labelled = {cm.metadata.name for cm in api.list_namespaced_config_map("default", label_selector="reviewed").items}
    assert labelled == {"a", "b"}


def test_annotate_add_overwrite_remove(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "cfg", "annotations": {"keep": "me"}}})

    out = kubectl("annotate", "cm", "cfg", "owner=team-a", "example.com/ticket=OPS-1")
    assert out.strip() in ("configmap/cfg annotated", "configmap/cfg annotate")  # kubectl 1.27 says "annotate"
    assert api.read_namespaced_config_map("cfg", "default").metadata.annotations == {
        "keep": "me", "owner": "team-a", "example.com/ticket": "OPS-1"}

    refused = kubectl.run("annotate", "cm", "cfg", "owner=team-b", check=False)
    assert refused.returncode != 0
    assert "--overwrite is false" in refused.stderr and "'owner' already has a value (team-a)" in refused.stderr
    assert api.read_namespaced_config_map("cfg", "default").metadata.annotations["owner"] == "team-a"

    kubectl("annotate", "cm", "cfg", "owner=team-b", "--overwrite")
    assert api.read_namespaced_config_map("cfg", "default").metadata.annotations["owner"] == "team-b"

    kubectl("annotate", "cm", "cfg", "owner-", "example.com/ticket-")
    assert api.read_namespaced_config_map("cfg", "default").metadata.annotations == {"keep": "me"}


# ---------------------------------------------------------------------------- delete
def test_delete_plain(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "doomed"}})
    out = kubectl("delete", "configmap", "doomed")
    assert out.strip() == 'configmap "doomed" deleted'
    assert gone(lambda: api.read_namespaced_config_map("doomed", "default"))

    missing = kubectl.run("delete", "configmap", "doomed", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): configmaps "doomed" not found' in missing.stderr
    assert kubectl.run("delete", "configmap", "doomed", "--ignore-not-found", check=False).returncode == 0


def test_delete_by_label_selector(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    for name, labels in (("a", {"tmp": "yes"}), ("b", {"tmp": "yes"}), ("c", {})):
        api.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})
    out = kubectl("delete", "cm", "-l", "tmp=yes")
    assert sorted(out.splitlines()) == ['configmap "a" deleted', 'configmap "b" deleted']
    remaining = {cm.metadata.name for cm in api.list_namespaced_config_map("default").items}
    assert "c" in remaining and not {"a", "b"} & remaining


def test_delete_waits_for_finalizers(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    out = kubectl("delete", "cm", "held", "--wait=false")
    assert out.strip() == 'configmap "held" deleted'
    held = api.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]

    timed_out = kubectl.run("delete", "cm", "held", "--timeout=1s", check=False)
    assert timed_out.returncode != 0  # kubectl waited for the object to disappear and gave up

    api.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}}, _content_type=MERGE)
    wait_until(lambda: gone(lambda: api.read_namespaced_config_map("held", "default")), message="held to go")


def test_delete_cascade_background(kubectl: Kubectl) -> None:
    owner = make_deployment(kubectl.info)
    rs = make_owned_replicaset(kubectl.info, owner)
    out = kubectl("delete", "deployment", "web", "--cascade=background")
    assert out.strip() == 'deployment.apps "web" deleted'
    assert live(kubectl, "deployment", "web") is None
    wait_until(lambda: live(kubectl, "replicaset", rs) is None,
               message="the garbage collector to delete the ReplicaSet")


def test_delete_cascade_foreground_deletes_dependents_first(kubectl: Kubectl) -> None:
    owner = make_deployment(kubectl.info)
    rs = make_owned_replicaset(kubectl.info, owner)
    out = kubectl("delete", "deployment", "web", "--cascade=foreground")
    assert out.strip() == 'deployment.apps "web" deleted'
    # kubectl waited for the Deployment to go; Foreground removes it only after its blocking dependents.
    assert live(kubectl, "deployment", "web") is None
    assert live(kubectl, "replicaset", rs) is None


def test_delete_cascade_foreground_waits_for_a_blocking_dependent(kubectl: Kubectl) -> None:
    owner = make_deployment(kubectl.info)
    rs = make_owned_replicaset(kubectl.info, owner, finalizers=["example.com/hold"])
    kubectl("delete", "deployment", "web", "--cascade=foreground", "--wait=false")

    def dependent_deleting() -> bool:
        state = live(kubectl, "replicaset", rs)
        return bool(state and state["metadata"].get("deletionTimestamp"))

    wait_until(dependent_deleting, message="the garbage collector to delete the ReplicaSet")
    deployment = live(kubectl, "deployment", "web")  # still there: its dependent blocks it
    assert deployment is not None
    assert deployment["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in deployment["metadata"].get("finalizers", [])

    kubectl("patch", "replicaset", rs, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    wait_until(lambda: live(kubectl, "replicaset", rs) is None, message="the ReplicaSet to go")
    wait_until(lambda: live(kubectl, "deployment", "web") is None, message="the Deployment to go")


def test_delete_cascade_orphan_keeps_dependents(kubectl: Kubectl) -> None:
    owner = make_deployment(kubectl.info)
    rs = make_owned_replicaset(kubectl.info, owner)
    out = kubectl("delete", "deployment", "web", "--cascade=orphan")
    assert out.strip() == 'deployment.apps "web" deleted'
    assert live(kubectl, "deployment", "web") is None
    # The orphan finalizer is released only after the dependents' ownerReferences are stripped.
    orphan = live(kubectl, "replicaset", rs)
    assert orphan is not None
    assert not orphan["metadata"].get("deletionTimestamp")
    assert not orphan["metadata"].get("ownerReferences")
    assert "orphan" not in orphan["metadata"].get("finalizers", [])


# ---------------------------------------------------------------------------- discovery
def test_api_resources(kubectl: Kubectl) -> None:
    rows = table(kubectl("api-resources"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["configmaps"] == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    assert by_name["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by_name["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert by_name["secrets"] == ["secrets", "", "v1", "true", "Secret"]  # no short name: a blank cell
    assert by_name["customresourcedefinitions"][2] == "apiextensions.k8s.io/v1"

    apps_only = names(kubectl("api-resources", "--api-group=apps", "-o", "name"))
    assert {"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps"} <= apps_only
    assert "configmaps" not in apps_only
    cluster_scoped = names(kubectl("api-resources", "--namespaced=false", "-o", "name"))
    assert "namespaces" in cluster_scoped and "nodes" in cluster_scoped and "configmaps" not in cluster_scoped
    wide = table(kubectl("api-resources", "-o", "wide"))
    assert wide[0][:7] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    verbs = {row[0]: row[5] for row in wide[1:]}
    categories = {row[0]: row[6] for row in wide[1:]}
    assert categories["deployments"] == "all" and categories["configmaps"] == ""
    assert verbs["configmaps"] == "create,delete,deletecollection,get,list,patch,update,watch"
    assert verbs["namespaces"] == "create,delete,get,list,patch,update,watch"


def test_api_versions(kubectl: Kubectl) -> None:
    versions = names(kubectl("api-versions"))
    assert {"v1", "apps/v1", "apiextensions.k8s.io/v1", "rbac.authorization.k8s.io/v1",
            "coordination.k8s.io/v1", "discovery.k8s.io/v1"} <= versions


def test_version(kubectl: Kubectl) -> None:
    info = json.loads(kubectl("version", "-o", "json"))
    server = info["serverVersion"]
    assert server["major"] == "1"
    assert re.fullmatch(r"v1\.\d+\.\d+", server["gitVersion"])
    assert server["gitVersion"] == f"v{server['major']}.{server['minor']}.0"
    assert info["clientVersion"]["major"] == "1"


# ---------------------------------------------------------------------------- watch
def test_get_watch_prints_events(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    # `-o name` prints only `configmap/x` for every event (the name printer unwraps WatchEvents), so a
    # JSONPath template shows the event type too.
    template = 'jsonpath={.type} {.object.metadata.name} {.object.data.v}{"\\n"}'
    with streaming(kubectl, "get", "configmaps", "--watch", "--output-watch-events", "-o", template) as watch:
        watch.expect("ADDED before")  # the initial list has arrived; everything after is a watch event
        api.create_namespaced_config_map("default", {"metadata": {"name": "live"}, "data": {"v": "1"}})
        watch.expect("ADDED live 1")
        api.patch_namespaced_config_map("live", "default", {"data": {"v": "2"}}, _content_type=MERGE)
        watch.expect("MODIFIED live 2")
        api.delete_namespaced_config_map("live", "default")
        watch.expect("DELETED live 2")


def test_get_watch_names(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    with streaming(kubectl, "get", "cm", "-w", "--output-watch-events", "-o", "name") as watch:
        watch.expect("configmap/kube-root-ca.crt")
        api.create_namespaced_config_map("default", {"metadata": {"name": "fresh"}})
        watch.expect("configmap/fresh")
        api.delete_namespaced_config_map("fresh", "default")
        watch.expect("configmap/fresh")
        assert watch.seen.count("configmap/fresh") == 2


def test_get_watch_single_object_by_name(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "target"}, "data": {"v": "0"}})
    api.create_namespaced_config_map("default", {"metadata": {"name": "other"}, "data": {"v": "0"}})
    template = 'jsonpath={.object.metadata.name}={.object.data.v}{"\\n"}'
    with streaming(kubectl, "get", "cm", "target", "-w", "--output-watch-events", "-o", template,
                   "-v=6") as watch:
        watch.expect("target=0")
        # For one object kubectl watches from resourceVersion 0 and hides the synthetic ADDED event that
        # starts such a watch, so change the object only once the watch is open.
        watch.expect_stderr("watch=true")
        api.patch_namespaced_config_map("other", "default", {"data": {"v": "9"}}, _content_type=MERGE)
        api.patch_namespaced_config_map("target", "default", {"data": {"v": "1"}}, _content_type=MERGE)
        watch.expect("target=1")
        assert not any(line.startswith("other") for line in watch.seen)  # metadata.name field selector on watch


# ---------------------------------------------------------------------------- wait
def test_wait_for_condition_ready(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    wait_for_namespace_ready(kubectl.info, "default")
    api.create_namespaced_pod("default", {"metadata": {"name": "p"},
                                          "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})

    not_yet = kubectl.run("wait", "--for=condition=Ready", "pod/p", "--timeout=1s", check=False)
    assert not_yet.returncode != 0
    assert "timed out waiting for the condition" in not_yet.stderr

    with streaming(kubectl, "wait", "--for=condition=Ready", "pod/p", "--timeout=30s", "-v=6") as waiter:
        waiter.expect_stderr("watch=true")  # not ready yet: kubectl watches the pod
        assert waiter.proc.poll() is None
        status = {"status": {"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}
        api.patch_namespaced_pod_status("p", "default", status, _content_type=MERGE)
        code, stdout = waiter.finish()
    assert code == 0, waiter.errors
    assert stdout.strip() == "pod/p condition met"

    # Condition values can be matched too; once Ready, waiting for Ready=False times out.
    done = kubectl("wait", "--for=condition=Ready=true", "pod/p", "--timeout=10s")
    assert done.strip() == "pod/p condition met"
    assert kubectl.run("wait", "--for=condition=Ready=false", "pod/p", "--timeout=1s", check=False).returncode != 0


def test_wait_for_delete(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    with streaming(kubectl, "wait", "--for=delete", "configmap/held", "--timeout=30s", "-v=6") as waiter:
        waiter.expect_stderr("watch=true")  # kubectl found the object and is watching it
        api.delete_namespaced_config_map("held", "default")
        # deletionTimestamp set, finalizer pending: the object still exists, so kubectl keeps waiting.
        assert api.read_namespaced_config_map("held", "default").metadata.deletion_timestamp is not None
        assert waiter.proc.poll() is None
        api.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}}, _content_type=MERGE)
        code, stdout = waiter.finish()
    assert code == 0, waiter.errors
    assert stdout.strip() == "configmap/held condition met"

    # For an object that does not exist, --for=delete succeeds at once.
    assert kubectl.run("wait", "--for=delete", "configmap/held", "--timeout=5s", check=False).returncode == 0


# ---------------------------------------------------------------------------- namespaces
def test_delete_namespace_empties_and_removes_it(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespace({"metadata": {"name": "scratch"}})
    api.create_namespaced_config_map("scratch", {"metadata": {"name": "cfg"}})
    api.create_namespaced_secret("scratch", {"metadata": {"name": "sec"}, "stringData": {"k": "v"}})
    make_deployment(kubectl.info, "app", namespace="scratch")
    assert "namespace/scratch" in names(kubectl("get", "ns", "-o", "name"))

    out = kubectl.run("delete", "namespace", "scratch", timeout=90).stdout
    assert out.strip() == 'namespace "scratch" deleted'
    # kubectl returns once the namespace is gone, i.e. after the namespace controller emptied it.
    missing = kubectl.run("get", "ns", "scratch", check=False)
    assert missing.returncode != 0 and 'namespaces "scratch" not found' in missing.stderr
    assert api.list_namespaced_config_map("scratch").items == []
    assert api.list_namespaced_secret("scratch").items == []
    assert apps(kubectl.info).list_namespaced_deployment("scratch").items == []


def test_protected_namespace_cannot_be_deleted(kubectl: Kubectl) -> None:
    result = kubectl.run("delete", "namespace", "kube-system", check=False)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr and "may not be deleted" in result.stderr
    assert core(kubectl.info).read_namespace("kube-system").status.phase == "Active"


def test_creating_in_a_terminating_namespace_is_refused(kubectl: Kubectl) -> None:
    api = core(kubectl.info)
    api.create_namespace({"metadata": {"name": "closing"}})
    api.create_namespaced_config_map("closing", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})

    out = kubectl("delete", "namespace", "closing", "--wait=false")
    assert out.strip() == 'namespace "closing" deleted'
    assert kubectl("get", "ns", "closing", "-o", "jsonpath={.status.phase}") == "Terminating"
    wait_until(lambda: api.read_namespaced_config_map("held", "closing").metadata.deletion_timestamp,
               message="the namespace controller to delete the held ConfigMap")

    refused = kubectl.run("create", "-f", "-", check=False, input=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: closing\n"))
    assert refused.returncode != 0
    assert ('configmaps "late" is forbidden: unable to create new content in namespace closing '
            "because it is being terminated") in refused.stderr

    def remaining_condition() -> str:
        conditions = api.read_namespace("closing").status.conditions or []
        return next((c.message for c in conditions if c.type == "NamespaceContentRemaining"), "")

    assert "configmaps" in wait_until(remaining_condition, message="NamespaceContentRemaining condition")

    api.patch_namespaced_config_map("held", "closing", {"metadata": {"finalizers": None}}, _content_type=MERGE)
    wait_until(lambda: gone(lambda: api.read_namespace("closing")), timeout=30, message="namespace to go")
    assert kubectl.run("get", "ns", "closing", check=False).returncode != 0


@pytest.mark.parametrize("resource", ["configmaps", "cm", "configmap", "ConfigMap"])
def test_resource_name_forms(kubectl: Kubectl, resource: str) -> None:
    core(kubectl.info).create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    assert names(kubectl("get", resource, "cfg", "-o", "name")) == {"configmap/cfg"}
