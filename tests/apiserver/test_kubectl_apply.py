"""kubectl apply (client-side and server-side), patch (strategic, merge, JSON), scale and diff against
the embedded API server, on built-in kinds and on custom resources."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo
from tests.helpers import apps, core, custom, wait_until

if TYPE_CHECKING:
    from tests.conftest import Kubectl

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
CR_415 = ("the body of the request was in an unknown format - accepted media types include: "
          "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")


# ---------------------------------------------------------------------------- helpers
def live(kubectl: Kubectl, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
    """The object as kubectl shows it, managedFields included."""
    result: dict[str, Any] = json.loads(
        kubectl("get", kind, name, "-n", namespace, "-o", "json", "--show-managed-fields"))
    return result


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """managedFields by (manager, operation)."""
    return {(m["manager"], m["operation"]): m.get("fieldsV1", {}) for m in obj["metadata"].get("managedFields", [])}


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)
    return found


GADGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.apply.example.com"},
    "spec": {
        "group": "apply.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "color": {"type": "string"},
                        "size": {"type": "integer"},
                        "note": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    }},
                },
            }},
        }],
    },
}


def install_gadget_crd(kubectl: Kubectl) -> None:
    """Creates the Gadget CRD through the Python client and waits until kubectl can use it."""
    custom(kubectl.info).create_cluster_custom_object("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                                      GADGET_CRD)
    wait_until(lambda: kubectl.run("get", "gadgets", check=False).returncode == 0, timeout=20,
               message="the gadgets resource to be served")


def gadget(info: ClusterInfo, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom(info).get_namespaced_custom_object("apply.example.com", "v1", "default",
                                                                     "gadgets", name)
    return obj


# ---------------------------------------------------------------------------- client-side apply
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  labels: {app: web}
data:
  a: "1"
  b: "2"
"""


def test_apply_creates_then_reports_unchanged(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", "-", input=CONFIGMAP).strip() == "configmap/cfg created"
    api = core(kubectl.info)
    first = api.read_namespaced_config_map("cfg", "default")
    assert first.data == {"a": "1", "b": "2"}
    last_applied = json.loads(first.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["data"] == {"a": "1", "b": "2"}
    assert ("kubectl-client-side-apply", "Update") in managers(live(kubectl, "cm", "cfg"))

    assert kubectl("apply", "-f", "-", input=CONFIGMAP).strip() == "configmap/cfg unchanged"
    assert api.read_namespaced_config_map("cfg", "default").metadata.resource_version == \
        first.metadata.resource_version


def test_apply_configmap_removes_dropped_keys_and_keeps_live_ones(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=CONFIGMAP)
    api = core(kubectl.info)
    api.patch_namespaced_config_map("cfg", "default", {"data": {"live": "x"}, "metadata": {"labels": {"l": "y"}}},
                                    _content_type=MERGE)
    changed = CONFIGMAP.replace('  b: "2"\n', '  c: "3"\n').replace("{app: web}", "{app: api}")
    assert kubectl("apply", "-f", "-", input=changed).strip() == "configmap/cfg configured"
    cm = api.read_namespaced_config_map("cfg", "default")
    assert cm.data == {"a": "1", "c": "3", "live": "x"}
    assert cm.metadata.labels == {"app": "api", "l": "y"}


DEPLOYMENT_V1 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: sidecar
        image: envoy:1.30
"""

DEPLOYMENT_V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.28
        ports:
        - containerPort: 80
        - containerPort: 443
        env:
        - {name: A, value: "1"}
"""


def test_client_side_apply_deployment_uses_strategic_merge(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", "-", input=DEPLOYMENT_V1).strip() == "deployment.apps/web created"
    # Changes made outside the manifest: a label, an annotation, an env var in a merge-keyed list.
    kubectl("label", "deployment", "web", "extra=yes")
    kubectl("annotate", "deployment", "web", "owner=ops")
    apps(kubectl.info).patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "C", "value": "3"}]}]}}}}, _content_type=STRATEGIC)
    env = [e["name"] for e in container(live(kubectl, "deploy", "web"), "web")["env"]]
    assert env == ["A", "B", "C"] or env == ["C", "A", "B"]  # SMP merged the list by name

    out = kubectl("apply", "-f", "-", input=DEPLOYMENT_V2)
    assert out.strip() == "deployment.apps/web configured"
    obj = live(kubectl, "deploy", "web")
    assert obj["metadata"]["labels"] == {"app": "web", "extra": "yes"}  # tier dropped, extra kept
    assert obj["metadata"]["annotations"]["owner"] == "ops"
    assert obj["spec"]["replicas"] == 1  # dropped from the manifest: deleted, then defaulted again
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]  # sidecar deleted
    web = container(obj, "web")
    assert web["image"] == "nginx:1.28"
    assert sorted(e["name"] for e in web["env"]) == ["A", "C"]  # B deleted, the live-only C kept
    assert [p["containerPort"] for p in web["ports"]] == [80, 443]
    assert web["terminationMessagePath"] == "/dev/termination-log"  # defaults survive
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert obj["metadata"]["generation"] >= 2

    # Re-applying: the live-only env var C makes kubectl send a `$setElementOrder/env` patch ("configured"),
    # but the result equals the stored object, so nothing is written.
    rv = obj["metadata"]["resourceVersion"]
    again = kubectl("apply", "-f", "-", input=DEPLOYMENT_V2).strip()
    assert again in ("deployment.apps/web unchanged", "deployment.apps/web configured")
    assert live(kubectl, "deploy", "web")["metadata"]["resourceVersion"] == rv


GADGET_V1 = """\
apiVersion: apply.example.com/v1
kind: Gadget
metadata:
  name: g1
spec:
  color: red
  size: 3
  tags: [a, b]
"""

GADGET_V2 = """\
apiVersion: apply.example.com/v1
kind: Gadget
metadata:
  name: g1
spec:
  color: red
  tags: [c]
"""


def test_client_side_apply_custom_resource(kubectl: Kubectl) -> None:
    install_gadget_crd(kubectl)
    assert kubectl("apply", "-f", "-", input=GADGET_V1).strip() == "gadget.apply.example.com/g1 created"
    custom(kubectl.info).patch_namespaced_custom_object("apply.example.com", "v1", "default", "gadgets", "g1",
                                                        {"spec": {"note": "live"}}, _content_type=MERGE)
    assert kubectl("apply", "-f", "-", input=GADGET_V2).strip() == "gadget.apply.example.com/g1 configured"
    assert gadget(kubectl.info, "g1")["spec"] == {"color": "red", "tags": ["c"], "note": "live"}
    assert kubectl("apply", "-f", "-", input=GADGET_V2).strip() == "gadget.apply.example.com/g1 unchanged"


# ---------------------------------------------------------------------------- server-side apply
def test_server_side_apply_create_and_noop(kubectl: Kubectl) -> None:
    out = kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    assert out.strip() == "configmap/cfg serverside-applied"
    first = live(kubectl, "cm", "cfg")
    assert first["data"] == {"a": "1", "b": "2"}
    owned = managers(first)
    assert list(owned) == [("kubectl", "Apply")]
    assert owned[("kubectl", "Apply")] == {"f:data": {".": {}, "f:a": {}, "f:b": {}},
                                           "f:metadata": {"f:labels": {".": {}, "f:app": {}}}} or \
        owned[("kubectl", "Apply")] == {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}

    again = kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    assert again.strip() == "configmap/cfg serverside-applied"
    second = live(kubectl, "cm", "cfg")
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # a no-op writes nothing
    assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]


def test_server_side_apply_prunes_fields_removed_from_the_manifest(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    core(kubectl.info).patch_namespaced_config_map("cfg", "default", {"data": {"other": "x"}}, _content_type=MERGE)
    kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP.replace('  b: "2"\n', ""))
    assert live(kubectl, "cm", "cfg")["data"] == {"a": "1", "other": "x"}  # b pruned, the other owner's key kept


def test_server_side_apply_conflict_and_force(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    changed = CONFIGMAP.replace('a: "1"', 'a: "changed"')

    refused = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", "-", input=changed, check=False)
    assert refused.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.a' in refused.stderr
    assert live(kubectl, "cm", "cfg")["data"]["a"] == "1"

    # The same value is no conflict: the field becomes shared.
    same = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", "-", input=CONFIGMAP, check=False)
    assert same.returncode == 0, same.stderr

    forced = kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-", input=changed)
    assert forced.strip() == "configmap/cfg serverside-applied"
    obj = live(kubectl, "cm", "cfg")
    assert obj["data"]["a"] == "changed"
    owned = managers(obj)
    assert "f:a" in owned[("other", "Apply")]["f:data"]
    assert "f:a" not in owned[("kubectl", "Apply")].get("f:data", {})  # ownership moved to the forcing manager


def test_switch_from_client_side_to_server_side_apply(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=CONFIGMAP)
    out = kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    assert out.strip() == "configmap/cfg serverside-applied"
    # kubectl migrated the client-side-apply ownership into its Apply entry (a JSON patch of managedFields) ...
    owned = managers(live(kubectl, "cm", "cfg"))
    assert ("kubectl", "Apply") in owned
    assert ("kubectl-client-side-apply", "Update") not in owned
    # ... so a key dropped from the manifest is pruned by the next server-side apply.
    kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP.replace('  b: "2"\n', ""))
    assert live(kubectl, "cm", "cfg")["data"] == {"a": "1"}


DEPLOYMENT_SSA = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
        - containerPort: 443
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"""

SIDECAR_SSA = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        env:
        - {name: INJECTED, value: "yes"}
      - name: sidecar
        image: envoy:1.30
"""


def test_server_side_apply_deployment_merges_lists_by_key(kubectl: Kubectl) -> None:
    assert kubectl("apply", "--server-side", "-f", "-",
                   input=DEPLOYMENT_SSA).strip() == "deployment.apps/web serverside-applied"
    kubectl("apply", "--server-side", "--field-manager=injector", "-f", "-", input=SIDECAR_SSA)
    obj = live(kubectl, "deploy", "web")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    assert [e["name"] for e in container(obj, "web")["env"]] == ["A", "B", "INJECTED"]

    trimmed = DEPLOYMENT_SSA.replace('        - {name: B, value: "2"}\n', "").replace(
        "        - containerPort: 443\n", "")
    kubectl("apply", "--server-side", "-f", "-", input=trimmed)
    obj = live(kubectl, "deploy", "web")
    web = container(obj, "web")
    assert [e["name"] for e in web["env"]] == ["A", "INJECTED"]  # B pruned; the injector's entry stays
    assert [p["containerPort"] for p in web["ports"]] == [80]
    assert web["ports"][0]["protocol"] == "TCP"
    assert container(obj, "sidecar")["image"] == "envoy:1.30"
    assert obj["spec"]["replicas"] == 2


def test_server_side_apply_conflicts_with_kubectl_scale(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT_SSA)
    assert kubectl("scale", "deployment", "web", "--replicas=5").strip() == "deployment.apps/web scaled"

    three = DEPLOYMENT_SSA.replace("replicas: 2", "replicas: 3")
    refused = kubectl.run("apply", "--server-side", "-f", "-", input=three, check=False)
    assert refused.returncode != 0
    assert "Apply failed with 1 conflict: conflict with " in refused.stderr
    assert ".spec.replicas" in refused.stderr
    assert live(kubectl, "deploy", "web")["spec"]["replicas"] == 5

    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=three)
    assert live(kubectl, "deploy", "web")["spec"]["replicas"] == 3


GADGET_SSA = """\
apiVersion: apply.example.com/v1
kind: Gadget
metadata:
  name: g2
spec:
  color: red
  size: 1
  tags: [a, b]
"""


def test_server_side_apply_custom_resource(kubectl: Kubectl) -> None:
    install_gadget_crd(kubectl)
    out = kubectl("apply", "--server-side", "-f", "-", input=GADGET_SSA)
    assert out.strip() == "gadget.apply.example.com/g2 serverside-applied"
    first = gadget(kubectl.info, "g2")
    assert first["spec"] == {"color": "red", "size": 1, "tags": ["a", "b"]}

    kubectl("apply", "--server-side", "-f", "-", input=GADGET_SSA)
    assert gadget(kubectl.info, "g2")["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    blue = "apiVersion: apply.example.com/v1\nkind: Gadget\nmetadata:\n  name: g2\nspec:\n  color: blue\n"
    refused = kubectl.run("apply", "--server-side", "--field-manager=painter", "-f", "-", input=blue, check=False)
    assert refused.returncode != 0
    assert 'conflict with "kubectl": .spec.color' in refused.stderr
    kubectl("apply", "--server-side", "--field-manager=painter", "--force-conflicts", "-f", "-", input=blue)
    assert gadget(kubectl.info, "g2")["spec"]["color"] == "blue"

    # Lists without x-kubernetes-list-type are atomic: the applier's list replaces the whole value.
    kubectl("apply", "--server-side", "-f", "-", input=GADGET_SSA.replace("  color: red\n", "").replace(
        "[a, b]", "[c]"))
    spec = gadget(kubectl.info, "g2")["spec"]
    assert spec["tags"] == ["c"] and spec["color"] == "blue" and spec["size"] == 1


# ---------------------------------------------------------------------------- patch
TWO_CONTAINERS = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "envoy:1.30"},
        ]}},
    },
}


def test_patch_strategic_merges_containers_by_name(kubectl: Kubectl) -> None:
    apps(kubectl.info).create_namespaced_deployment("default", TWO_CONTAINERS)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1.31"}]}}}}
    out = kubectl("patch", "deployment", "web", "-p", json.dumps(patch))  # --type strategic is the default
    assert out.strip() == "deployment.apps/web patched"
    obj = live(kubectl, "deploy", "web")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    assert container(obj, "sidecar")["image"] == "envoy:1.31"
    assert container(obj, "web")["image"] == "nginx:1.27"
    assert ("kubectl-patch", "Update") in managers(obj)

    delete = {"spec": {"template": {"spec": {"containers": [{"$patch": "delete", "name": "sidecar"}]}}}}
    kubectl("patch", "deployment", "web", "--type", "strategic", "-p", json.dumps(delete))
    obj = live(kubectl, "deploy", "web")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert not any("$patch" in json.dumps(c) for c in obj["spec"]["template"]["spec"]["containers"])


def test_patch_merge_replaces_lists_and_null_deletes(kubectl: Kubectl) -> None:
    apps(kubectl.info).create_namespaced_deployment("default", TWO_CONTAINERS)
    patch = {"metadata": {"labels": {"tier": None, "team": "a"}},
             "spec": {"template": {"spec": {"containers": [{"name": "solo", "image": "solo:1"}]}}}}
    out = kubectl("patch", "deployment", "web", "--type", "merge", "-p", json.dumps(patch))
    assert out.strip() == "deployment.apps/web patched"
    obj = live(kubectl, "deploy", "web")
    assert obj["metadata"]["labels"] == {"app": "web", "team": "a"}
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["solo"]


def test_patch_json(kubectl: Kubectl) -> None:
    apps(kubectl.info).create_namespaced_deployment("default", TWO_CONTAINERS)
    ops = [{"op": "add", "path": "/metadata/labels/example.com~1team", "value": "blue"},
           {"op": "replace", "path": "/spec/replicas", "value": 4},
           {"op": "remove", "path": "/spec/template/spec/containers/1"}]
    out = kubectl("patch", "deployment", "web", "--type", "json", "-p", json.dumps(ops))
    assert out.strip() == "deployment.apps/web patched"
    obj = live(kubectl, "deploy", "web")
    assert obj["metadata"]["labels"]["example.com/team"] == "blue"
    assert obj["spec"]["replicas"] == 4
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]
    rv = obj["metadata"]["resourceVersion"]

    failing = [{"op": "replace", "path": "/spec/replicas", "value": 9},
               {"op": "test", "path": "/metadata/labels/app", "value": "not-web"}]
    refused = kubectl.run("patch", "deployment", "web", "--type", "json", "-p", json.dumps(failing), check=False)
    assert refused.returncode != 0
    assert "the server rejected our request due to an error in our request" in refused.stderr
    after = live(kubectl, "deploy", "web")
    assert after["spec"]["replicas"] == 4 and after["metadata"]["resourceVersion"] == rv  # all or nothing

    missing_parent = [{"op": "add", "path": "/metadata/annotations/x", "value": "y"}]  # no annotations yet
    assert kubectl.run("patch", "deployment", "web", "--type", "json", "-p", json.dumps(missing_parent),
                       check=False).returncode != 0


def test_patch_without_change(kubectl: Kubectl) -> None:
    core(kubectl.info).create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    before = live(kubectl, "cm", "cfg")["metadata"]["resourceVersion"]
    out = kubectl("patch", "cm", "cfg", "--type", "merge", "-p", '{"data":{"a":"1"}}')
    assert out.strip() == "configmap/cfg patched (no change)"
    assert live(kubectl, "cm", "cfg")["metadata"]["resourceVersion"] == before
    changed = kubectl("patch", "cm", "cfg", "--type", "merge", "-p", '{"data":{"a":"2"}}')
    assert changed.strip() == "configmap/cfg patched"


def test_patch_status_subresource(kubectl: Kubectl) -> None:
    apps(kubectl.info).create_namespaced_deployment("default", TWO_CONTAINERS)
    patch = {"status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1}, "spec": {"replicas": 7}}
    kubectl("patch", "deployment", "web", "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    obj = live(kubectl, "deploy", "web")
    assert obj["status"]["readyReplicas"] == 1
    assert obj["spec"]["replicas"] == 2  # /status ignores spec


def test_patch_custom_resource(kubectl: Kubectl) -> None:
    install_gadget_crd(kubectl)
    custom(kubectl.info).create_namespaced_custom_object(
        "apply.example.com", "v1", "default", "gadgets",
        {"apiVersion": "apply.example.com/v1", "kind": "Gadget", "metadata": {"name": "g3"},
         "spec": {"color": "red", "tags": ["a"]}})

    refused = kubectl.run("patch", "gadget", "g3", "-p", '{"spec":{"color":"blue"}}', check=False)
    assert refused.returncode != 0
    assert CR_415 in refused.stderr
    assert gadget(kubectl.info, "g3")["spec"]["color"] == "red"

    kubectl("patch", "gadget", "g3", "--type", "merge", "-p", '{"spec":{"color":"blue","tags":["b"]}}')
    assert gadget(kubectl.info, "g3")["spec"] == {"color": "blue", "tags": ["b"]}
    kubectl("patch", "gadget", "g3", "--type", "json", "-p", '[{"op":"add","path":"/spec/tags/-","value":"c"}]')
    assert gadget(kubectl.info, "g3")["spec"]["tags"] == ["b", "c"]

    # kubectl patch sends no fieldValidation, so the server's default (Warn) applies: dropped, with a warning.
    unknown = kubectl.run("patch", "gadget", "g3", "--type", "merge", "-p", '{"spec":{"bogus":1}}')
    assert 'Warning: unknown field "spec.bogus"' in unknown.stderr
    assert unknown.stdout.strip() == "gadget.apply.example.com/g3 patched (no change)"
    assert "bogus" not in gadget(kubectl.info, "g3")["spec"]


# ---------------------------------------------------------------------------- scale
def test_scale_deployment(kubectl: Kubectl) -> None:
    apps(kubectl.info).create_namespaced_deployment("default", TWO_CONTAINERS)
    assert kubectl("scale", "deployment", "web", "--replicas=4").strip() == "deployment.apps/web scaled"
    obj = live(kubectl, "deploy", "web")
    assert obj["spec"]["replicas"] == 4
    assert obj["metadata"]["generation"] == 2

    refused = kubectl.run("scale", "deployment", "web", "--current-replicas=3", "--replicas=5", check=False)
    assert refused.returncode != 0
    assert "Expected replicas to be 3, was 4" in refused.stderr
    kubectl("scale", "deployment/web", "--current-replicas=4", "--replicas=0")
    assert live(kubectl, "deploy", "web")["spec"]["replicas"] == 0

    scale = json.loads(kubectl("get", "--raw", f"/clusters/{kubectl.info.name}/apis/apps/v1/namespaces/default/"
                                              "deployments/web/scale"))
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 0 and scale["status"]["selector"] == "app=web"


def test_scale_missing_deployment(kubectl: Kubectl) -> None:
    result = kubectl.run("scale", "deployment", "nope", "--replicas=1", check=False)
    assert result.returncode != 0
    assert "no objects passed to scale" in result.stderr  # kubectl's wording when the GET found nothing


# ---------------------------------------------------------------------------- diff
def test_diff_shows_changes_without_applying_them(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT_SSA)
    before = live(kubectl, "deploy", "web")

    same = kubectl.run("diff", "-f", "-", input=DEPLOYMENT_SSA, check=False)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""

    changed = DEPLOYMENT_SSA.replace("replicas: 2", "replicas: 5").replace("nginx:1.27", "nginx:1.28")
    diff = kubectl.run("diff", "-f", "-", input=changed, check=False)
    assert diff.returncode == 1, diff.stderr  # 1 = differences found
    assert re.search(r"^-\s+replicas: 2$", diff.stdout, re.M)
    assert re.search(r"^\+\s+replicas: 5$", diff.stdout, re.M)
    assert re.search(r"^\+\s+image: nginx:1.28$", diff.stdout, re.M)
    after = live(kubectl, "deploy", "web")
    assert after["spec"]["replicas"] == 2  # dry run: nothing stored
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_diff_server_side(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=CONFIGMAP)
    diff = kubectl.run("diff", "--server-side", "-f", "-", input=CONFIGMAP.replace('b: "2"', 'b: "3"'), check=False)
    assert diff.returncode == 1, diff.stderr
    assert re.search(r'^-\s+b: "2"$', diff.stdout, re.M) and re.search(r'^\+\s+b: "3"$', diff.stdout, re.M)
    assert live(kubectl, "cm", "cfg")["data"]["b"] == "2"


def test_apply_dry_run_server(kubectl: Kubectl) -> None:
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=CONFIGMAP)
    assert out.strip() == "configmap/cfg created (server dry run)"
    try:
        core(kubectl.info).read_namespaced_config_map("cfg", "default")
    except ApiException as err:
        assert err.status == 404
    else:
        raise AssertionError("a server dry run stored the object")
