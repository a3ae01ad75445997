"""A custom resource's managedFields follow its CRD's schema as it is now: the fields a create owns are remembered
per CRD version, and a changed schema (an atomic list made a map list) is not answered from what was remembered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ServerThread

GROUP, PLURAL = "example.com", "routes"


def _crd(list_type: str) -> dict[str, Any]:
    rules: dict[str, Any] = {"type": "array", "x-kubernetes-list-type": list_type, "items": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}
    if list_type == "map":
        rules["x-kubernetes-list-map-keys"] = ["name"]
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"rules": rules}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PLURAL}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": PLURAL, "singular": "route", "kind": "Route", "listKind": "RouteList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def _route(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Route", "metadata": {"name": name},
            "spec": {"rules": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[client.ApiClient]:
    server = ServerThread(tmp_path)
    try:
        yield server.add_cluster("crs", controllers=False).api_client()
    finally:
        server.stop()


def _create_when_served(objects: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        try:
            created: dict[str, Any] = objects.create_namespaced_custom_object(GROUP, "v1", "default", PLURAL, body)
            return created
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _rules_fields(obj: dict[str, Any]) -> dict[str, Any]:
    [entry] = obj["metadata"]["managedFields"]
    rules: dict[str, Any] = entry["fieldsV1"]["f:spec"]["f:rules"]
    return rules


def test_created_fields_follow_the_crd_schema_after_it_changes(api: client.ApiClient) -> None:
    crds, objects = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    crds.create_custom_resource_definition(_crd("atomic"))
    for name in ("first", "second"):  # the second is answered from what the first computed
        assert _rules_fields(_create_when_served(objects, _route(name))) == {}  # an atomic list is owned whole
    live = crds.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    crds.replace_custom_resource_definition(f"{PLURAL}.{GROUP}", {**_crd("map"), "metadata": {
        "name": f"{PLURAL}.{GROUP}", "resourceVersion": live.metadata.resource_version}})
    deadline = time.monotonic() + 10
    while True:  # the changed schema is served once the CRD's update is seen
        fields = _rules_fields(objects.create_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, _route(f"after-{int(time.monotonic() * 1000)}")))
        if fields:
            break
        assert time.monotonic() < deadline, "the CRD's map list was never used for managedFields"
        time.sleep(0.05)
    assert {'k:{"name":"a"}', 'k:{"name":"b"}'} <= set(fields)
    assert fields['k:{"name":"a"}'] == {".": {}, "f:name": {}, "f:port": {}}
