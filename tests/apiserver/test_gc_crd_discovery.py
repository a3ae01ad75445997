"""Garbage collection, CRD lifecycle and discovery, over HTTP with the official client."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo
from tests.helpers import core, wait_until


def exists(api: client.CoreV1Api, name: str) -> bool:
    try:
        api.read_namespaced_config_map(name, "default")
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        raise


def owner_and_dependents(api: client.CoreV1Api, n: int = 2) -> str:
    owner = api.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
           "blockOwnerDeletion": True}
    for i in range(n):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"dep{i}", "ownerReferences": [ref]}})
    return str(owner.metadata.uid)


def test_background_deletion_collects_dependents(cluster: ClusterInfo) -> None:
    api = core(cluster)
    owner_and_dependents(api)
    api.delete_namespaced_config_map("owner", "default", propagation_policy="Background")
    assert not exists(api, "owner")
    wait_until(lambda: not exists(api, "dep0") and not exists(api, "dep1"), message="dependents to be collected")


def test_dependent_with_another_live_owner_survives(cluster: ClusterInfo) -> None:
    api = core(cluster)
    uid = owner_and_dependents(api, 1)
    other = api.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other.metadata.uid}]
    api.create_namespaced_config_map("default", {"metadata": {"name": "shared", "ownerReferences": refs}})
    api.delete_namespaced_config_map("owner", "default")
    wait_until(lambda: not exists(api, "dep0"), message="the sole-owned dependent to go")
    wait_until(lambda: len(api.read_namespaced_config_map("shared", "default").metadata.owner_references) == 1,
               message="the dead owner's reference to be removed")
    assert exists(api, "shared")


def test_orphan_deletion_keeps_dependents_without_references(cluster: ClusterInfo) -> None:
    api = core(cluster)
    owner_and_dependents(api)
    api.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    wait_until(lambda: not exists(api, "owner"), message="the owner to go")
    for name in ("dep0", "dep1"):
        assert not api.read_namespaced_config_map(name, "default").metadata.owner_references


def test_foreground_deletion_waits_for_dependents(cluster: ClusterInfo) -> None:
    api = core(cluster)
    owner_and_dependents(api)
    api.create_namespaced_config_map("default", {"metadata": {
        "name": "blocker", "finalizers": ["example.com/hold"], "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
             "uid": api.read_namespaced_config_map("owner", "default").metadata.uid, "blockOwnerDeletion": True}]}})
    api.delete_namespaced_config_map("owner", "default", propagation_policy="Foreground")
    owner = api.read_namespaced_config_map("owner", "default")
    assert owner.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in owner.metadata.finalizers
    wait_until(lambda: not exists(api, "dep0") and not exists(api, "dep1"), message="dependents to go")
    assert exists(api, "owner")  # the blocker still holds it
    api.patch_namespaced_config_map("blocker", "default", {"metadata": {"finalizers": None}})
    wait_until(lambda: not exists(api, "owner"), message="the owner to go once every dependent is gone")


def test_delete_collection_with_selector(cluster: ClusterInfo) -> None:
    api = core(cluster)
    for i in range(4):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"b{i}", "labels": {"batch": str(i % 2)}}})
    api.delete_collection_namespaced_config_map("default", label_selector="batch=0")
    left = sorted(i.metadata.name for i in api.list_namespaced_config_map("default", label_selector="batch").items)
    assert left == ["b1", "b3"]


CRD = {
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {"group": "stable.example.com", "scope": "Namespaced",
             "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                    "statusReplicasPath": ".status.replicas"}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "cron": {"type": "string"}, "replicas": {"type": "integer"}}},
                               "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}}]},
}


def test_crd_lifecycle(cluster: ClusterInfo) -> None:
    ext = client.ApiextensionsV1Api(cluster.api_client())
    custom = client.CustomObjectsApi(cluster.api_client())
    ext.create_custom_resource_definition(CRD)
    crd = wait_until(lambda: next((c for c in (ext.read_custom_resource_definition(CRD["metadata"]["name"])
                                                .status.conditions or []) if c.type == "Established"), None),
                     message="Established")
    assert crd.status == "True" and crd.reason == "InitialNamesAccepted"
    body = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c1"},
            "spec": {"cron": "* * * * *", "replicas": 1}, "status": {"replicas": 5}}
    created = custom.create_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", body)
    assert "status" not in created  # status subresource: create drops status
    assert created["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object_status("stable.example.com", "v1", "default", "crontabs", "c1",
                                                 {"status": {"replicas": 2}})
    scale = custom.get_namespaced_custom_object_scale("stable.example.com", "v1", "default", "crontabs", "c1")
    assert scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 2
    custom.patch_namespaced_custom_object_scale("stable.example.com", "v1", "default", "crontabs", "c1",
                                                {"spec": {"replicas": 4}})
    updated = custom.get_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs", "c1")
    assert updated["spec"]["replicas"] == 4 and updated["metadata"]["generation"] == 2
    # deleting the CRD deletes its objects and stops serving the resource
    ext.delete_custom_resource_definition(CRD["metadata"]["name"])

    def unserved() -> bool:
        try:
            custom.list_namespaced_custom_object("stable.example.com", "v1", "default", "crontabs")
            return False
        except ApiException as err:
            return err.status == 404
    wait_until(unserved, message="the resource to stop being served")
    wait_until(lambda: not ext.list_custom_resource_definition().items, message="the CRD to go")
    groups = [g.name for g in client.ApisApi(cluster.api_client()).get_api_versions().groups]
    assert "stable.example.com" not in groups


def test_crd_validation_error_names_the_field(cluster: ClusterInfo) -> None:
    ext = client.ApiextensionsV1Api(cluster.api_client())
    bad = json.loads(json.dumps(CRD))
    bad["metadata"]["name"] = "wrong.stable.example.com"
    with pytest.raises(ApiException) as exc:
        ext.create_custom_resource_definition(bad)
    assert exc.value.status == 422
    assert "metadata.name" in json.loads(exc.value.body)["message"]


def _get(info: ClusterInfo, path: str, accept: str = "application/json") -> tuple[int, dict[str, str], Any]:
    http = urllib3.PoolManager(ca_certs=info.ca_file)
    resp = http.request("GET", info.server + path, headers={"Authorization": f"Bearer {info.token}",
                                                              "Accept": accept})
    return resp.status, dict(resp.headers), json.loads(resp.data)


AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


def test_aggregated_discovery(cluster: ClusterInfo) -> None:
    status, headers, body = _get(cluster, "/api", AGGREGATED)
    assert status == 200
    assert headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert headers["Vary"] == "Accept"
    assert body["kind"] == "APIGroupDiscoveryList" and len(body["items"]) == 1
    assert body["items"][0]["metadata"]["name"] == ""
    pods = next(r for r in body["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced" and "status" in [s["subresource"] for s in pods["subresources"]]
    _, _, apis = _get(cluster, "/apis", AGGREGATED)
    apps = next(i for i in apis["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    # without the aggregated Accept, the legacy documents
    _, headers, legacy = _get(cluster, "/api")
    assert legacy["kind"] == "APIVersions" and legacy["versions"] == ["v1"]


def test_legacy_discovery_entries_are_complete(cluster: ClusterInfo) -> None:
    for path in ("/api/v1", "/apis/apps/v1", "/apis/discovery.k8s.io/v1"):
        status, _, body = _get(cluster, path)
        assert status == 200 and body["kind"] == "APIResourceList"
        for res in body["resources"]:
            assert {"name", "singularName", "namespaced", "kind", "verbs"} <= set(res), res


def test_openapi_index_points_into_the_cluster(cluster: ClusterInfo) -> None:
    status, _, index = _get(cluster, "/openapi/v3")
    assert status == 200
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith(f"/clusters/{cluster.name}/openapi/v3/api/v1?hash=")
    status, _, doc = _get(cluster, url.removeprefix(f"/clusters/{cluster.name}"))
    assert status == 200 and doc["openapi"].startswith("3.")
    patch = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert "fieldValidation" in [p.get("name") for p in patch.get("parameters", [])] + [
        p.get("name") for p in doc["paths"]["/api/v1/namespaces/{name}"].get("parameters", [])]


def test_version_and_health(cluster: ClusterInfo) -> None:
    status, _, version = _get(cluster, "/version")
    assert status == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")


def _hashes(info: ClusterInfo, path: str) -> dict[str, str | None]:
    _, _, body = _get(info, path)
    return {r["name"]: r.get("storageVersionHash") for r in body["resources"]}


def test_discovery_names_each_stored_resource_by_its_storage_version_hash(cluster: ClusterInfo) -> None:
    """kube-apiserver's values for the built-ins (base64 of sha256(group/version/kind)[:8]); none for what is never
    stored (reviews) nor for subresources; every served version of a CRD names its storage version."""
    core_v1 = _hashes(cluster, "/api/v1")
    assert core_v1["configmaps"] == "qFsyl6wFWjQ=" and core_v1["pods"] == "xPOwRZ+Yhw8="
    assert core_v1["namespaces"] == "Q3oi5N2YM8M=" and core_v1["pods/status"] is None
    assert _hashes(cluster, "/apis/apps/v1")["deployments"] == "8aSe+NMegvE="
    assert _hashes(cluster, "/apis/authorization.k8s.io/v1")["selfsubjectaccessreviews"] is None
    ext = client.ApiextensionsV1Api(cluster.api_client())
    versions = [{"name": v, "served": True, "storage": v == "v1beta1",
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                for v in ("v1alpha1", "v1beta1")]
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.hash.example.com"},
        "spec": {"group": "hash.example.com", "scope": "Namespaced", "versions": versions,
                 "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"}}})
    stored_beta = "hash.example.com/v1beta1/Gizmo"
    expected = base64.b64encode(hashlib.sha256(stored_beta.encode()).digest()[:8]).decode()
    wait_until(lambda: _get(cluster, "/apis/hash.example.com/v1alpha1")[0] == 200, message="the CRD served")
    assert _hashes(cluster, "/apis/hash.example.com/v1alpha1")["gizmos"] == expected
    assert _hashes(cluster, "/apis/hash.example.com/v1beta1")["gizmos"] == expected
