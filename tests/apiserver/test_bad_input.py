"""A corpus of malformed and hostile requests: each gets the right 4xx Status, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3

from clusterset.testing import ClusterInfo

CM = "/api/v1/namespaces/default/configmaps"
CRD_BODY = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                     "size": {"type": "integer", "minimum": 1},
                     "color": {"type": "string", "enum": ["red", "blue"]}}}}}}}]},
}


class Raw:
    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.http = urllib3.PoolManager(ca_certs=info.ca_file)

    def __call__(self, method: str, path: str, body: bytes | str | None = None,
                 content_type: str = "application/json", token: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token or self.info.token}", "Content-Type": content_type}
        data = body.encode() if isinstance(body, str) else body
        resp = self.http.request(method, self.info.server + path, body=data, headers=headers, timeout=30)
        try:
            parsed = json.loads(resp.data) if resp.data else {}
        except ValueError:
            parsed = {"_raw": resp.data.decode(errors="replace")}
        return resp.status, parsed


@pytest.fixture
def raw(cluster: ClusterInfo) -> Raw:
    return Raw(cluster)


def cm(name: str, **extra: Any) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra})


CORPUS: list[tuple[str, str, str, bytes | str, str, int, str]] = [
    # (id, method, path, body, content type, expected code, expected reason)
    ("truncated json", "POST", CM, '{"metadata": {"name": "x"', "application/json", 400, "BadRequest"),
    ("not an object", "POST", CM, "[1, 2, 3]", "application/json", 400, "BadRequest"),
    ("string body", "POST", CM, '"hello"', "application/json", 400, "BadRequest"),
    ("empty body", "POST", CM, "", "application/json", 400, "BadRequest"),
    ("binary garbage", "POST", CM, b"\xff\xfe\x00\x01garbage", "application/json", 400, "BadRequest"),
    ("bad yaml", "POST", CM, "metadata: [unclosed", "application/yaml", 400, "BadRequest"),
    ("wrong kind", "POST", CM, json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
     "application/json", 400, "BadRequest"),
    ("wrong apiVersion", "POST", CM, json.dumps({"apiVersion": "apps/v1", "kind": "ConfigMap",
                                                "metadata": {"name": "x"}}), "application/json", 400, "BadRequest"),
    ("metadata not an object", "POST", CM, json.dumps({"metadata": "x"}), "application/json", 400, "BadRequest"),
    ("missing name", "POST", CM, json.dumps({"metadata": {}}), "application/json", 422, "Invalid"),
    ("uppercase name", "POST", CM, cm("UPPER"), "application/json", 422, "Invalid"),
    ("name too long", "POST", CM, cm("a" * 254), "application/json", 422, "Invalid"),
    ("slash in name", "POST", CM, cm("a/b"), "application/json", 422, "Invalid"),
    ("bad label key", "POST", CM, json.dumps({"metadata": {"name": "x", "labels": {"-bad": "v"}}}),
     "application/json", 422, "Invalid"),
    ("label value too long", "POST", CM, json.dumps({"metadata": {"name": "x", "labels": {"k": "v" * 64}}}),
     "application/json", 422, "Invalid"),
    ("label value not a string", "POST", CM, json.dumps({"metadata": {"name": "x", "labels": {"k": 5}}}),
     "application/json", 422, "Invalid"),
    ("data value not a string", "POST", CM, cm("x", data={"k": 1}), "application/json", 422, "Invalid"),
    ("bad data key", "POST", CM, cm("x", data={"a b": "1"}), "application/json", 422, "Invalid"),
    ("namespace mismatch", "POST", CM, json.dumps({"metadata": {"name": "x", "namespace": "other"}}),
     "application/json", 400, "BadRequest"),
    ("unknown resource", "GET", "/api/v1/namespaces/default/widgets", "", "application/json", 404, "NotFound"),
    ("unknown group", "GET", "/apis/nope.example.com/v1", "", "application/json", 404, "NotFound"),
    ("too deep path", "GET", CM + "/a/b/c/d", "", "application/json", 404, "NotFound"),
    ("bad label selector", "GET", CM + "?labelSelector=a%20in%20(", "", "application/json", 400, "BadRequest"),
    ("bad field selector", "GET", CM + "?fieldSelector=data.x%3Dy", "", "application/json", 400, "BadRequest"),
    ("bad limit", "GET", CM + "?limit=abc", "", "application/json", 400, "BadRequest"),
    ("bad resourceVersion", "GET", CM + "?resourceVersion=abc&resourceVersionMatch=NotOlderThan", "",
     "application/json", 400, "BadRequest"),
    ("bad watch resourceVersion", "GET", CM + "?watch=true&resourceVersion=-5", "", "application/json", 400,
     "BadRequest"),
    ("unsupported patch type", "PATCH", CM + "/kube-root-ca.crt", "{}", "text/plain", 415, "UnsupportedMediaType"),
    ("json patch not a list", "PATCH", CM + "/kube-root-ca.crt", '{"op": "add"}', "application/json-patch+json",
     400, "BadRequest"),
    ("patch of missing object", "PATCH", CM + "/missing", "{}", "application/merge-patch+json", 404, "NotFound"),
    ("apply without fieldManager", "PATCH", CM + "/x", cm("x"), "application/apply-patch+yaml", 422, "Invalid"),
    ("force on merge patch", "PATCH", CM + "/kube-root-ca.crt?force=true", "{}", "application/merge-patch+json",
     422, "Invalid"),
    ("bad propagation policy", "DELETE", CM + "/kube-root-ca.crt?propagationPolicy=Sometimes", "",
     "application/json", 422, "Invalid"),
    ("bad dryRun", "POST", CM + "?dryRun=Some", cm("x"), "application/json", 400, "BadRequest"),
    ("bad fieldValidation", "POST", CM + "?fieldValidation=Maybe", cm("x"), "application/json", 400, "BadRequest"),
    ("method not allowed", "PUT", CM, cm("x"), "application/json", 405, "MethodNotAllowed"),
    ("name mismatch on update", "PUT", CM + "/kube-root-ca.crt", cm("other"), "application/json", 400, "BadRequest"),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type", "code", "reason"),
                         [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_corpus(raw: Raw, method: str, path: str, body: bytes | str, content_type: str, code: int,
                reason: str) -> None:
    status, result = raw(method, path, body or None, content_type)
    assert status == code, result
    assert result.get("kind") == "Status" and result.get("code") == code, result
    assert result.get("reason") == reason, result
    assert result.get("message"), result


def test_strict_field_validation_rejects_unknown_and_duplicate_fields(raw: Raw) -> None:
    status, result = raw("POST", CM + "?fieldValidation=Strict", cm("x", spec={"a": 1}))
    assert status == 400
    assert 'strict decoding error: unknown field "spec"' in result["message"]
    dup = '{"metadata": {"name": "x"}, "data": {"a": "1"}, "data": {"b": "2"}}'
    status, result = raw("POST", CM + "?fieldValidation=Strict", dup)
    assert status == 400 and "duplicate field" in result["message"]
    status, result = raw("POST", CM + "?fieldValidation=Ignore", cm("y", spec={"a": 1}))
    assert status == 201 and "spec" not in result


def test_huge_body_is_413(raw: Raw) -> None:
    status, result = raw("POST", CM, cm("big", data={"k": "x" * (4 * 1024 * 1024)}))
    assert status == 413
    assert result["reason"] == "RequestEntityTooLarge"


def test_a_large_body_under_the_limit_arrives_whole(raw: Raw) -> None:
    """Bodies bigger than one socket read (a 2 MiB ConfigMap: 1,000 KiB of data, the rest spaces before its
    closing brace) are read to the end, not cut short."""
    value = "x" * (1000 * 1024)
    body = cm("large", data={"k": value})
    status, result = raw("POST", CM, body[:-1] + " " * (1024 * 1024) + "}")
    assert status == 201, result
    assert len(result["data"]["k"]) == len(value)


def test_unauthenticated(raw: Raw) -> None:
    status, result = raw("GET", CM, token="not-a-token")
    assert status == 401 and result["reason"] == "Unauthorized"


def test_custom_resource_schema_violations(raw: Raw, cluster: ClusterInfo) -> None:
    import time

    status, _ = raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json.dumps(CRD_BODY))
    assert status == 201
    path = "/apis/example.com/v1/namespaces/default/gadgets"
    deadline = time.monotonic() + 10
    while raw("GET", path)[0] != 200:
        assert time.monotonic() < deadline, "CRD never became served"
        time.sleep(0.05)

    def gadget(spec: dict[str, Any]) -> str:
        return json.dumps({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec})

    status, result = raw("POST", path, gadget({"size": "big"}))
    assert status == 422
    assert "spec.size: Invalid value: \"string\": spec.size in body must be of type integer" in result["message"]
    status, result = raw("POST", path, gadget({"color": "red"}))
    assert status == 422 and "spec.size: Required value" in result["message"]
    status, result = raw("POST", path, gadget({"size": 1, "color": "pink"}))
    assert status == 422 and 'Unsupported value: "pink"' in result["message"]
    status, result = raw("POST", path, gadget({"size": 0}))
    assert status == 422 and "should be greater than or equal to 1" in result["message"]
    status, result = raw("POST", path + "?fieldValidation=Strict", gadget({"size": 1, "extra": True}))
    assert status == 400 and 'unknown field "spec.extra"' in result["message"]
    status, result = raw("POST", path, gadget({"size": 2, "extra": True}))  # Warn (default): pruned
    assert status == 201 and result["spec"] == {"size": 2}
    status, result = raw("PATCH", path + "/g", '{"spec": {"size": 3}}', "application/strategic-merge-patch+json")
    assert status == 415 and "application/apply-patch+yaml" in result["message"]
    status, result = raw("POST", path, gadget({"size": 2}).replace('"Gadget"', '"Gizmo"'))
    assert status == 400
