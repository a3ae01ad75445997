"""OpenAPI v3 index and documents, the minimal v2 protobuf, and the generated built-in schemas."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from clusterset.apiserver.http.openapi import (
    OPENAPI_V2_PROTOBUF_TYPE,
    openapi_hash,
    openapi_v2_json,
    openapi_v2_protobuf,
    openapi_v3_document,
    openapi_v3_index,
    schema_name,
)
from clusterset.apiserver.kinds.apiextensions import CRD_TYPE
from clusterset.apiserver.kinds.builtins import BUILTINS
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.schema import builtin as builtin_schemas
from clusterset.apiserver.schema.builtin import builtin_schema

SMP = "application/strategic-merge-patch+json"
BUILTIN_RTS = [rt for rt, _ in BUILTINS] + [CRD_TYPE]


def group_version(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in BUILTIN_RTS if rt.group == group and rt.version == version]


def crontab(schema: dict[str, Any] | None = None) -> ResourceType:
    return ResourceType(
        "stable.example.com", "v1", "crontabs", "crontab", "CronTab", True, subresources=("status", "scale"),
        is_crd=True, printer_columns=[],
        schema=schema or {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}, "replicas": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}},
    )


def patch_ops(doc: dict[str, Any], gvk: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item["patch"]) for path, item in doc["paths"].items()
            if "patch" in item and item["patch"]["x-kubernetes-group-version-kind"] == gvk]


def kubectl_supports_field_validation(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """kubectl's supportsQueryParamV3: the first PATCH operation for the GVK must list the parameter."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])
    return False


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for key, value in node.items():
            if key != "$ref":
                out += all_refs(value)
        return out
    if isinstance(node, list):
        return [r for item in node for r in all_refs(item)]
    return []


# ---------------------------------------------------------------------------- index and hash
def test_index_urls_carry_base_path_and_hash() -> None:
    index = openapi_v3_index("/clusters/hub", {"apis/apps/v1": "ABC", "api/v1": "DEF"})
    assert index == {"paths": {
        "api/v1": {"serverRelativeURL": "/clusters/hub/openapi/v3/api/v1?hash=DEF"},
        "apis/apps/v1": {"serverRelativeURL": "/clusters/hub/openapi/v3/apis/apps/v1?hash=ABC"},
    }}
    assert list(index["paths"]) == ["api/v1", "apis/apps/v1"]


def test_hash_is_uppercase_sha512_and_follows_the_document() -> None:
    doc = openapi_v3_document("stable.example.com", "v1", [crontab()])
    digest = openapi_hash(doc)
    assert re.fullmatch(r"[0-9A-F]{128}", digest)
    assert openapi_hash(copy.deepcopy(doc)) == digest
    reordered = dict(reversed(list(doc.items())))
    assert openapi_hash(reordered) == digest  # canonical: key order does not matter
    changed_schema = crontab({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "cronSpec": {"type": "string"}, "image": {"type": "string"}}}}})
    assert openapi_hash(openapi_v3_document("stable.example.com", "v1", [changed_schema])) != digest


# ---------------------------------------------------------------------------- built-in documents
def test_core_v1_document_namespace_patch_has_field_validation() -> None:
    doc = openapi_v3_document("", "v1", group_version("", "v1"))
    assert doc["openapi"] == "3.0.0"
    assert doc["info"] == {"title": "Kubernetes", "version": "v1.30.0"}
    namespace_gvk = {"group": "", "kind": "Namespace", "version": "v1"}
    assert kubectl_supports_field_validation(doc, namespace_gvk)
    op = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "fieldManager", "force", "dryRun"} <= names
    assert op["x-kubernetes-action"] == "patch"
    assert op["x-kubernetes-group-version-kind"] == namespace_gvk
    assert set(op["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml", SMP}
    # every PATCH of every kind (status subresources included) lists fieldValidation
    for item in doc["paths"].values():
        if "patch" in item:
            assert "fieldValidation" in {p["name"] for p in item["patch"]["parameters"]}


def test_core_v1_paths_actions_and_verbs() -> None:
    doc = openapi_v3_document("", "v1", group_version("", "v1"))
    paths = doc["paths"]
    cm = paths["/api/v1/namespaces/{namespace}/configmaps"]
    assert cm["get"]["x-kubernetes-action"] == "list"
    assert cm["post"]["x-kubernetes-action"] == "post"
    assert cm["delete"]["x-kubernetes-action"] == "deletecollection"
    assert paths["/api/v1/configmaps"]["get"]["operationId"] == "listCoreV1ConfigMapForAllNamespaces"
    item = paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    assert {m: item[m]["x-kubernetes-action"] for m in ("get", "put", "patch", "delete")} == {
        "get": "get", "put": "put", "patch": "patch", "delete": "delete"}
    assert item["patch"]["operationId"] == "patchCoreV1NamespacedConfigMap"
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    # namespaces do not serve deletecollection; cluster-scoped paths have no {namespace}
    assert "delete" not in paths["/api/v1/namespaces"]
    assert "/api/v1/nodes/{name}/status" in paths
    assert set(paths["/api/v1/namespaces/{name}/finalize"]) == {"put", "parameters"}
    token = paths["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"]
    assert token["x-kubernetes-group-version-kind"] == {
        "group": "authentication.k8s.io", "kind": "TokenRequest", "version": "v1"}
    assert "io.k8s.api.authentication.v1.TokenRequest" in doc["components"]["schemas"]


def test_apps_document_schemas_scale_and_merge_metadata() -> None:
    doc = openapi_v3_document("apps", "v1", group_version("apps", "v1"))
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == ["name"]
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    # Quantity and IntOrString are upstream-named definitions, so `kubectl explain` names them
    assert schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]["additionalProperties"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}]}
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"] is True
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"][
        "x-kubernetes-list-type"] == "set"
    list_schema = schemas["io.k8s.api.apps.v1.DeploymentList"]
    assert list_schema["x-kubernetes-group-version-kind"][0]["kind"] == "DeploymentList"
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert SMP in scale["requestBody"]["content"]
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas


@pytest.mark.parametrize(("group", "version"), sorted({(rt.group, rt.version) for rt in BUILTIN_RTS}))
def test_every_builtin_document_is_self_contained(group: str, version: str) -> None:
    resources = group_version(group, version)
    doc = openapi_v3_document(group, version, resources)
    schemas = doc["components"]["schemas"]
    for ref in all_refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for rt in resources:
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        if "patch" in rt.verbs:  # the create-only reviews have no PATCH operation, as upstream
            assert kubectl_supports_field_validation(doc, gvk), rt.kind
        assert all(SMP in op["requestBody"]["content"] for _, op in patch_ops(doc, gvk))
        assert gvk in schemas[schema_name(rt)]["x-kubernetes-group-version-kind"]


# ---------------------------------------------------------------------------- custom resources
def test_custom_resource_document() -> None:
    doc = openapi_v3_document("stable.example.com", "v1", [crontab()])
    schemas = doc["components"]["schemas"]
    cr = schemas["com.example.stable.v1.CronTab"]
    assert cr["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]
    assert set(cr["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert cr["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert cr["properties"]["spec"]["properties"]["cronSpec"] == {"type": "string"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert schemas["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"]["allOf"] == [
        {"$ref": "#/components/schemas/com.example.stable.v1.CronTab"}]
    for ref in all_refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas

    gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ops = patch_ops(doc, gvk)
    assert sorted(path for path, _ in ops) == [
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}",
        "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"]
    for _, op in ops:
        assert set(op["requestBody"]["content"]) == {
            "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
    scale = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale"]["patch"]
    assert SMP not in scale["requestBody"]["content"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["get"]["operationId"] == (
        "listStableExampleComV1NamespacedCronTab")


def test_custom_resource_schema_is_not_mutated_and_metadata_is_replaced() -> None:
    schema = {"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 10}}}, "spec": {"type": "object"}}}
    before = copy.deepcopy(schema)
    doc = openapi_v3_document("stable.example.com", "v1", [crontab(schema)])
    assert schema == before
    assert "allOf" in doc["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]["metadata"]


# ---------------------------------------------------------------------------- v2
def read_protobuf(data: bytes) -> list[tuple[int, bytes]]:
    """Length-delimited fields only (all the gnostic Document uses here)."""

    def varint(pos: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            pos += 1
            shift += 7
            if not byte & 0x80:
                return value, pos

    fields: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = varint(pos)
        assert key & 7 == 2, "only length-delimited fields expected"
        length, pos = varint(pos)
        fields.append((key >> 3, data[pos:pos + length]))
        pos += length
    assert pos == len(data)
    return fields


def test_v2_protobuf_document_decodes() -> None:
    data = openapi_v2_protobuf()
    fields = dict(read_protobuf(data))
    assert fields[1] == b"2.0"  # swagger
    assert dict(read_protobuf(fields[2])) == {1: b"Kubernetes", 2: b"v1.30.0"}  # info: title, version
    assert fields[8] == b"" and fields[9] == b""  # empty paths and definitions
    assert data == b"\n\x032.0\x12\x15\n\nKubernetes\x12\x07v1.30.0B\x00J\x00"
    assert openapi_v2_json()["swagger"] == "2.0"
    assert "@" not in OPENAPI_V2_PROTOBUF_TYPE  # Go's mime parser rejects the deprecated request form


# ---------------------------------------------------------------------------- built-in schemas
def test_builtin_schema_dialect() -> None:
    dep = builtin_schema("apps", "v1", "Deployment")
    assert dep is not None and dep["type"] == "object"
    spec = dep["properties"]["spec"]["properties"]
    rolling = spec["strategy"]["properties"]["rollingUpdate"]["properties"]
    assert rolling["maxSurge"]["x-kubernetes-int-or-string"] is True
    container = spec["template"]["properties"]["spec"]["properties"]["containers"]["items"]
    limits = container["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True  # resource.Quantity
    assert "type" not in limits["additionalProperties"]
    assert dep["properties"]["metadata"]["properties"]["creationTimestamp"]["format"] == "date-time"
    assert "description" in dep["properties"]["metadata"]["properties"]["name"]
    fields_v1 = dep["properties"]["metadata"]["properties"]["managedFields"]["items"]["properties"]["fieldsV1"]
    assert fields_v1["x-kubernetes-preserve-unknown-fields"] is True
    assert "$ref" not in str(dep) and "allOf" not in str(dep)
    assert builtin_schema("", "v1", "Secret")["properties"]["data"]["additionalProperties"]["format"] == "byte"  # type: ignore[index]
    assert builtin_schema("example.com", "v1", "Widget") is None


def test_builtin_schema_cuts_recursion_and_returns_fresh_copies() -> None:
    crd = builtin_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert crd is not None
    version = crd["properties"]["spec"]["properties"]["versions"]["items"]
    props = version["properties"]["schema"]["properties"]["openAPIV3Schema"]["properties"]
    assert props["type"]["type"] == "string"
    assert props["properties"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["default"] == {"description": props["default"]["description"],
                                "x-kubernetes-preserve-unknown-fields": True}
    crd["properties"].clear()
    again = builtin_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert again is not None and "spec" in again["properties"]


@pytest.mark.parametrize("gvk", [
    ("", "v1", "Namespace"), ("", "v1", "Service"), ("", "v1", "Endpoints"), ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"), ("", "v1", "ServiceAccount"), ("", "v1", "Event"), ("", "v1", "Pod"), ("", "v1", "Node"),
    ("", "v1", "Binding"), ("discovery.k8s.io", "v1", "EndpointSlice"), ("apps", "v1", "Deployment"),
    ("apps", "v1", "ReplicaSet"), ("apps", "v1", "StatefulSet"), ("apps", "v1", "DaemonSet"),
    ("coordination.k8s.io", "v1", "Lease"), ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "v1", "Role"), ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"), ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    ("autoscaling", "v1", "Scale"), ("events.k8s.io", "v1", "Event"), ("authentication.k8s.io", "v1", "TokenRequest"),
])
def test_every_listed_kind_has_a_schema(gvk: tuple[str, str, str]) -> None:
    schema = builtin_schema(*gvk)
    assert schema is not None
    assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])
    name = builtin_schemas.definition_name(*gvk)
    assert name is not None
    assert builtin_schemas.definitions()[name]["x-kubernetes-group-version-kind"] == [
        {"group": gvk[0], "kind": gvk[2], "version": gvk[1]}]


def test_core_and_events_event_are_distinct() -> None:
    assert builtin_schemas.definition_name("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert builtin_schemas.definition_name("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    core_props = builtin_schema("", "v1", "Event")["properties"]  # type: ignore[index]
    events_props = builtin_schema("events.k8s.io", "v1", "Event")["properties"]  # type: ignore[index]
    assert "involvedObject" in core_props and "regarding" in events_props


def test_json_is_small_and_runtime_does_not_import_kubernetes() -> None:
    schema_dir = Path(builtin_schemas.__file__).parent
    assert (schema_dir / "builtin_schemas.json").stat().st_size < 3 * 1024 * 1024
    apiserver = schema_dir.parent
    for module in apiserver.rglob("*.py"):
        source = module.read_text()
        assert not re.search(r"^\s*(import|from)\s+kubernetes\b", source, re.M), module
