"""The About API's well-known rules and ClusterProfile's immutable manager, enforced by the embedded server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.api import crds
from clusterset.api.inventory import CLUSTER_ID_PROPERTY, CLUSTERSET_PROPERTY
from clusterset.testing import ClusterInfo
from tests.helpers import custom, install

GROUP, VERSION, PLURAL = "about.k8s.io", "v1beta1", "clusterproperties"


def prop(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterProperty", "metadata": {"name": name},
            "spec": {"value": value}}


def refused(call: Any, status: int) -> dict[str, Any]:
    with pytest.raises(ApiException) as exc:
        call()
    assert exc.value.status == status, exc.value.body
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


def test_cluster_id_must_be_a_dns_label(member: ClusterInfo) -> None:
    api = custom(member)
    bad = prop(CLUSTER_ID_PROPERTY, "Member_1")
    body = refused(lambda: api.create_cluster_custom_object(GROUP, VERSION, PLURAL, bad), 422)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.value"
    assert "RFC 1123 DNS label" in body["message"]
    api.create_cluster_custom_object(GROUP, VERSION, PLURAL, prop(CLUSTER_ID_PROPERTY, "member-1"))


def test_joining_needs_an_id(member: ClusterInfo) -> None:
    api = custom(member)
    early = prop(CLUSTERSET_PROPERTY, "fleet")
    body = refused(lambda: api.create_cluster_custom_object(GROUP, VERSION, PLURAL, early), 422)
    assert CLUSTER_ID_PROPERTY in body["message"]


def test_id_is_immutable_while_a_member(member: ClusterInfo) -> None:
    api = custom(member)
    api.create_cluster_custom_object(GROUP, VERSION, PLURAL, prop(CLUSTER_ID_PROPERTY, "member-1"))
    # not a member yet: the id may change
    api.patch_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY, {"spec": {"value": "member-2"}})
    api.create_cluster_custom_object(GROUP, VERSION, PLURAL, prop(CLUSTERSET_PROPERTY, "fleet"))

    body = refused(lambda: api.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY, {"spec": {"value": "member-3"}}), 422)
    assert "member of ClusterSet 'fleet'" in body["message"] and "clusterset leave" in body["message"]
    body = refused(lambda: api.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, CLUSTERSET_PROPERTY, {"spec": {"value": "other"}}), 422)
    assert "may not change" in body["message"]
    body = refused(lambda: api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY), 403)
    assert body["reason"] == "Forbidden" and "leave the ClusterSet first" in body["message"]
    # the alpha version is the same storage and obeys the same rules
    body = refused(lambda: api.patch_cluster_custom_object(
        GROUP, "v1alpha1", PLURAL, CLUSTER_ID_PROPERTY, {"spec": {"value": "member-3"}}), 422)

    # nothing was lost, and after leaving the id may change again
    assert api.get_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY)["spec"]["value"] == "member-2"
    api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTERSET_PROPERTY)
    api.patch_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY, {"spec": {"value": "member-3"}})
    api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, CLUSTER_ID_PROPERTY)


def test_cluster_manager_is_immutable(cluster: ClusterInfo) -> None:
    install(cluster, crds.hub_crds())
    client.CoreV1Api(cluster.api_client()).create_namespace({"metadata": {"name": "fleet"}})
    api = custom(cluster)
    cp = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
          "metadata": {"name": "m1", "namespace": "fleet"},
          "spec": {"displayName": "m1", "clusterManager": {"name": "clusterset"}}}
    api.create_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", "fleet", "clusterprofiles", cp)
    body = refused(lambda: api.patch_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1alpha1", "fleet", "clusterprofiles", "m1",
        {"spec": {"clusterManager": {"name": "other"}}}), 422)
    assert body["details"]["causes"][0]["field"] == "spec.clusterManager"
    assert "ClusterManager is immutable" in body["message"]
    # other spec fields stay mutable
    api.patch_namespaced_custom_object("multicluster.x-k8s.io", "v1alpha1", "fleet", "clusterprofiles", "m1",
                                       {"spec": {"displayName": "renamed"}})
