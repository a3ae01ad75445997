"""The Multi-Cluster Services CRDs (mcs-api v0.5.0) as the embedded server, kubectl and the fleet see them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from clusterset.fleet.embedded import FleetOptions
from clusterset.testing import ClusterInfo, FleetThread
from tests.conftest import Kubectl
from tests.helpers import custom, table, wait_until
from tests.inventory.test_about_admission import refused

GROUP = "multicluster.x-k8s.io"
NAMESPACE = "default"
MCS_CRDS = ("serviceexports.multicluster.x-k8s.io", "serviceimports.multicluster.x-k8s.io")


def condition(type_: str, status: str, reason: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def service_import(name: str, version: str = "v1beta1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{version}", "kind": "ServiceImport", "metadata": {"name": name},
            "spec": {"type": "ClusterSetIP", "ports": [{"name": "http", "protocol": "TCP", "port": 80}], **spec}}


def service_export(name: str, version: str = "v1beta1") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{version}", "kind": "ServiceExport", "metadata": {"name": name}}


def test_both_versions_are_served_from_one_v1beta1_storage(member: ClusterInfo) -> None:
    api = custom(member)
    api.create_namespaced_custom_object(GROUP, "v1alpha1", NAMESPACE, "serviceimports",
                                        service_import("from-alpha", "v1alpha1", ips=["10.42.0.1"]))
    api.create_namespaced_custom_object(GROUP, "v1beta1", NAMESPACE, "serviceexports", service_export("from-beta"))

    as_beta = api.get_namespaced_custom_object(GROUP, "v1beta1", NAMESPACE, "serviceimports", "from-alpha")
    assert as_beta["apiVersion"] == f"{GROUP}/v1beta1"
    assert as_beta["spec"]["ips"] == ["10.42.0.1"] and as_beta["spec"]["type"] == "ClusterSetIP"
    as_alpha = api.get_namespaced_custom_object(GROUP, "v1alpha1", NAMESPACE, "serviceexports", "from-beta")
    assert as_alpha["apiVersion"] == f"{GROUP}/v1alpha1"

    ext = client.ApiextensionsV1Api(member.api_client())
    for name in MCS_CRDS:
        crd = ext.read_custom_resource_definition(name)
        assert [(v.name, v.served, v.storage) for v in crd.spec.versions] == [
            ("v1alpha1", True, False), ("v1beta1", True, True)]
        assert crd.status.stored_versions == ["v1beta1"]


def test_short_names_and_namespaced_scope_in_discovery(member: ClusterInfo) -> None:
    for version in ("v1alpha1", "v1beta1"):
        resources = custom(member).get_api_resources(GROUP, version).resources
        by_name = {r.name: r for r in resources}
        assert by_name["serviceexports"].short_names == ["svcex", "svcexport"]
        assert by_name["serviceimports"].short_names == ["svcim", "svcimport"]
        assert by_name["serviceexports"].namespaced and by_name["serviceimports"].namespaced
        assert {"serviceexports/status", "serviceimports/status"} <= set(by_name)


def test_status_is_written_only_through_the_status_subresource(member: ClusterInfo) -> None:
    api = custom(member)
    created = api.create_namespaced_custom_object(
        GROUP, "v1beta1", NAMESPACE, "serviceexports",
        {**service_export("web"), "status": {"conditions": [condition("Valid", "True", "Valid")]}})
    assert "status" not in created

    main = api.patch_namespaced_custom_object(
        GROUP, "v1beta1", NAMESPACE, "serviceexports", "web",
        {"spec": {"exportedLabels": {"tier": "web"}}, "status": {"conditions": [condition("Valid", "True", "Valid")]}})
    assert main["spec"] == {"exportedLabels": {"tier": "web"}} and "status" not in main

    conflict = condition("Conflict", "True", "PortConflict,TypeConflict")
    through_status = api.patch_namespaced_custom_object_status(
        GROUP, "v1beta1", NAMESPACE, "serviceexports", "web",
        {"spec": {"exportedLabels": {"tier": "other"}}, "status": {"conditions": [conflict]}})
    assert through_status["status"]["conditions"] == [conflict]
    assert through_status["spec"] == {"exportedLabels": {"tier": "web"}}


@pytest.mark.parametrize(("write", "field", "detail"), [
    pytest.param(lambda api: api.create_namespaced_custom_object(
        GROUP, "v1beta1", NAMESPACE, "serviceimports", service_import("lb", type="LoadBalancer")),
        "spec.type", 'supported values: "ClusterSetIP", "Headless"', id="type-not-in-enum"),
    pytest.param(lambda api: api.create_namespaced_custom_object(
        GROUP, "v1alpha1", NAMESPACE, "serviceimports",
        service_import("three", "v1alpha1", ips=["10.0.0.1", "10.0.0.2", "10.0.0.3"])),
        "spec.ips", "must have at most 2 items", id="three-ips"),
    pytest.param(lambda api: api.create_namespaced_custom_object(
        GROUP, "v1beta1", NAMESPACE, "serviceimports", {**service_import("portless"), "spec": {"type": "Headless"}}),
        "spec.ports", "Required value", id="ports-missing"),
    pytest.param(lambda api: api.patch_namespaced_custom_object_status(
        GROUP, "v1beta1", NAMESPACE, "serviceexports", "web",
        {"status": {"conditions": [condition("Conflict", "True", "Port Conflict")]}}),
        "status.conditions[0].reason", "should match", id="condition-reason-with-a-space"),
])
def test_the_schema_refuses_what_upstream_refuses(member: ClusterInfo, write: Callable[[client.CustomObjectsApi], Any],
                                                  field: str, detail: str) -> None:
    api = custom(member)
    api.create_namespaced_custom_object(GROUP, "v1beta1", NAMESPACE, "serviceexports", service_export("web"))
    body = refused(lambda: write(api), 422)
    assert body["reason"] == "Invalid"
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == [field], causes
    assert detail in causes[0]["message"]


def clusterset_crds(side: str) -> str:
    done = subprocess.run([sys.executable, "-m", "clusterset.cli.main", "crds", "--side", side],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_clusterset_crds_prints_them_for_members_only() -> None:
    member_side = [d["metadata"]["name"] for d in yaml.safe_load_all(clusterset_crds("member"))]
    hub_side = [d["metadata"]["name"] for d in yaml.safe_load_all(clusterset_crds("hub"))]
    assert set(MCS_CRDS) <= set(member_side)
    assert not set(MCS_CRDS) & set(hub_side)


def test_kubectl_applies_the_printed_crds_and_shows_the_columns(kubectl: Kubectl) -> None:
    """What a user of a real cluster does: `clusterset crds | kubectl apply -f -`, then `kubectl get`."""
    kubectl("apply", "-f", "-", input=clusterset_crds("member"))
    kubectl("wait", "--for=condition=Established", "--timeout=30s", *(f"crd/{n}" for n in MCS_CRDS))
    api = custom(kubectl.info)
    api.create_namespaced_custom_object(GROUP, "v1beta1", NAMESPACE, "serviceexports", service_export("web"))
    api.patch_namespaced_custom_object_status(GROUP, "v1beta1", NAMESPACE, "serviceexports", "web", {"status": {
        "conditions": [condition("Valid", "True", "Valid"), condition("Ready", "False", "Pending"),
                       condition("Conflict", "False", "NoConflicts")]}})
    api.create_namespaced_custom_object(GROUP, "v1alpha1", NAMESPACE, "serviceimports",
                                        service_import("web", "v1alpha1", ips=["10.42.42.42", "fd00::42"]))
    api.patch_namespaced_custom_object_status(GROUP, "v1beta1", NAMESPACE, "serviceimports", "web", {"status": {
        "clusters": [{"cluster": "cluster-a"}, {"cluster": "cluster-b"}]}})

    exports = table(kubectl("get", "svcex"))
    assert exports[0] == ["NAME", "VALID", "READY", "CONFLICT", "AGE"]
    assert exports[1][:4] == ["web", "True", "False", "False"]
    imports = table(kubectl("get", "svcim"))
    assert imports[0] == ["NAME", "TYPE", "IPS", "CLUSTERS", "AGE"]
    assert imports[1][:4] == ["web", "ClusterSetIP", "[10.42.42.42 fd00::42]",
                              "[map[cluster:cluster-a] map[cluster:cluster-b]]"]
    both = kubectl("get", "serviceexports,serviceimports")
    assert "serviceexport.multicluster.x-k8s.io/web" in both and "serviceimport.multicluster.x-k8s.io/web" in both
    as_json = json.loads(kubectl("get", "svcimport", "web", "-o", "json"))
    assert as_json["apiVersion"] == f"{GROUP}/v1beta1"


def crds_of(info: ClusterInfo) -> dict[str, bool]:
    """Each CRD of `info` and whether it is Established (served)."""
    items = client.ApiextensionsV1Api(info.api_client()).list_custom_resource_definition().items
    return {c.metadata.name: any(cond.type == "Established" and cond.status == "True"
                                 for cond in c.status.conditions or []) for c in items}


def test_members_of_the_embedded_fleet_get_them_and_the_hub_does_not(tmp_path: Path) -> None:
    fleet = FleetThread(FleetOptions(tmp_path / "fleet", members=1))
    try:
        wait_until(lambda: all(crds_of(fleet.info("member-1")).get(name) for name in MCS_CRDS), timeout=30)
        assert not set(MCS_CRDS) & set(crds_of(fleet.info("hub")))
        created = custom(fleet.info("member-1")).create_namespaced_custom_object(
            GROUP, "v1beta1", NAMESPACE, "serviceexports", service_export("web"))
        assert created["metadata"]["uid"]
    finally:
        fleet.stop()
