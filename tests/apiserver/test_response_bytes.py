"""Response bodies in kube-apiserver's bytes, read raw over HTTPS: Go's field order (Status, StatusDetails,
StatusCause; a built-in object's envelope and ObjectMeta; a custom resource's sorted keys), json.Encoder's
trailing newline, its escapes of `<`, `>` and `&`, and `/version` as WriteRawJSON writes it.

Clients quote these bodies in their errors, so a byte that differs is a difference users see."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import urllib3

from clusterset.testing import ClusterInfo
from tests.apiserver.test_tokens import token_for
from tests.helpers import core, wait_until

if TYPE_CHECKING:
    from tests.conftest import Kubectl

CM = "/api/v1/namespaces/default/configmaps"
OBJECT_META_ORDER = ["name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations",
                     "finalizers", "managedFields"]


class RawBytes:
    """Requests whose answer is the body exactly as sent."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.http = urllib3.PoolManager(ca_certs=info.ca_file)

    def __call__(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token or self.info.token}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        resp = self.http.request(method, self.info.server + path, body=data, headers=headers, timeout=30)
        return resp.status, resp.data


@pytest.fixture
def raw(cluster: ClusterInfo) -> RawBytes:
    return RawBytes(cluster)


def configmap(name: str) -> dict[str, Any]:
    """Fields deliberately out of Go's order, as a client may send them."""
    return {"data": {"k": "v"}, "metadata": {"finalizers": ["example.com/hold"], "annotations": {"a": "1"},
                                             "labels": {"l": "1"}, "name": name}, "kind": "ConfigMap",
            "apiVersion": "v1"}


def test_not_found_is_status_in_go_order_with_a_newline(raw: RawBytes) -> None:
    assert raw("GET", f"{CM}/nope") == (404, (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"nope\\" not found","reason":"NotFound",'
        b'"details":{"name":"nope","kind":"configmaps"},"code":404}\n'))


def test_already_exists_is_status_in_go_order_with_a_newline(raw: RawBytes) -> None:
    assert raw("POST", "/apis/apps/v1/namespaces/default/deployments", _deployment("d"))[0] == 201
    assert raw("POST", "/apis/apps/v1/namespaces/default/deployments", _deployment("d")) == (409, (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"d\\" already exists","reason":"AlreadyExists",'
        b'"details":{"name":"d","group":"apps","kind":"deployments"},"code":409}\n'))


def test_invalid_lists_causes_in_go_order_and_escapes_html_as_go(raw: RawBytes) -> None:
    status, body = raw("POST", CM, {"metadata": {"name": "bad", "labels": {"k": "a<b&c>"}}})
    assert status == 422 and body.endswith(b"}\n") and body.count(b"\n") == 1
    assert b"<" not in body and b"&" not in body and b'\\"a\\u003cb\\u0026c\\u003e\\"' in body
    parsed = json.loads(body)
    assert list(parsed) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert list(parsed["details"]) == ["name", "kind", "causes"]
    assert [list(cause) for cause in parsed["details"]["causes"]] == [["reason", "message", "field"]]
    assert parsed["message"].startswith('ConfigMap "bad" is invalid: metadata.labels: Invalid value: "a<b&c>"')


def test_forbidden_is_status_in_go_order_with_a_newline(cluster: ClusterInfo, raw: RawBytes) -> None:
    core(cluster).create_namespaced_service_account("default", {"metadata": {"name": "bot"}})
    bot = token_for(cluster, "bot")
    user = "system:serviceaccount:default:bot"
    assert raw("GET", f"{CM}/x", token=bot) == (403, (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"x\\" is forbidden: User \\"' + user.encode() + b'\\" cannot get resource '
        b'\\"configmaps\\" in API group \\"\\" in the namespace \\"default\\"","reason":"Forbidden",'
        b'"details":{"name":"x","kind":"configmaps"},"code":403}\n'))
    assert raw("GET", "/foo", token=bot) == (403, (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"forbidden: User \\"' + user.encode() + b'\\" cannot get path \\"/foo\\"",'
        b'"reason":"Forbidden","details":{},"code":403}\n'))


def test_delete_answers_a_success_status_with_a_newline(raw: RawBytes) -> None:
    status, created = raw("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})
    assert status == 201
    uid = json.loads(created)["metadata"]["uid"]
    assert raw("DELETE", "/api/v1/namespaces/default/secrets/s") == (200, (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        b'"details":{"name":"s","kind":"secrets","uid":"' + uid.encode() + b'"}}\n'))


def test_objects_come_in_go_struct_order_from_create_get_list_and_watch(raw: RawBytes) -> None:
    status, created = raw("POST", CM, configmap("a"))
    assert status == 201 and created.endswith(b"}\n") and created.count(b"\n") == 1
    obj = json.loads(created)
    assert list(obj) == ["kind", "apiVersion", "metadata", "data"]
    assert list(obj["metadata"]) == OBJECT_META_ORDER
    status, got = raw("GET", f"{CM}/a")
    assert (status, got) == (200, created)  # the stored bytes, the same for every read
    status, listed = raw("GET", f"{CM}?fieldSelector=metadata.name%3Da")
    assert status == 200 and listed.endswith(b"]}\n") and listed.count(b"\n") == 1
    rv = json.loads(listed)["metadata"]["resourceVersion"]
    assert listed == (b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"' + rv.encode()
                      + b'"},"items":[' + created[:-1] + b"]}\n")
    status, event = raw("GET", f"{CM}?watch=true&resourceVersion=0&fieldSelector=metadata.name%3Da&timeoutSeconds=1")
    assert (status, event) == (200, b'{"type":"ADDED","object":' + created[:-1] + b"}\n")


def test_status_comes_last_in_a_built_in_object(raw: RawBytes) -> None:
    status, body = raw("POST", "/api/v1/namespaces", {"status": {}, "spec": {}, "metadata": {"name": "n"}})
    assert status == 201 and list(json.loads(body)) == ["kind", "apiVersion", "metadata", "spec", "status"]


def test_custom_resources_and_their_lists_have_sorted_keys(cluster: ClusterInfo, raw: RawBytes) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    path = "/apis/example.com/v1/namespaces/default/gadgets"
    wait_until(lambda: raw("GET", path)[0] == 200, message="the CRD served")
    gadget = {"spec": {"zeta": 1, "alpha": {"y": 2, "x": 1}}, "metadata": {"name": "g", "labels": {"b": "1", "a": "2"}},
              "kind": "Gadget", "apiVersion": "example.com/v1"}
    status, created = raw("POST", path, gadget)
    assert status == 201 and created.endswith(b"}\n")
    obj = json.loads(created)
    assert list(obj) == ["apiVersion", "kind", "metadata", "spec"]
    assert list(obj["metadata"]) == sorted(obj["metadata"])
    assert obj["spec"] == {"alpha": {"x": 1, "y": 2}, "zeta": 1} and list(obj["spec"]["alpha"]) == ["x", "y"]
    assert raw("GET", f"{path}/g") == (200, created)
    status, listed = raw("GET", f"{path}?limit=1")
    assert status == 200 and listed.endswith(b"}\n")
    assert list(json.loads(listed)) == ["apiVersion", "items", "kind", "metadata"]
    assert listed.startswith(b'{"apiVersion":"example.com/v1","items":[' + created[:-1] + b'],"kind":"GadgetList"')


def test_version_is_indented_without_a_newline_as_write_raw_json(raw: RawBytes) -> None:
    status, body = raw("GET", "/version")
    assert status == 200 and body.startswith(b'{\n  "major": "') and body.endswith(b'"\n}')


def test_kubectl_reads_and_quotes_the_bodies(kubectl: Kubectl) -> None:
    kubectl("create", "-f", "-", input=json.dumps(configmap("k")))
    prefix = urllib3.util.parse_url(kubectl.info.server).path or ""  # --raw takes the path from the host on
    raw_body = kubectl("get", "--raw", f"{prefix}/api/v1/namespaces/default/configmaps/k")
    assert raw_body.startswith('{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"k","namespace":"default"')
    assert raw_body.endswith("}\n") and raw_body.count("\n") == 1
    assert json.loads(kubectl("get", "configmap", "k", "-o", "json"))["data"] == {"k": "v"}
    missing = kubectl.run("get", "configmap", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'
    again = kubectl.run("create", "-f", "-", input=json.dumps(configmap("k")), check=False)
    assert again.returncode == 1 and again.stderr.strip() == (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "k" already exists')


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
