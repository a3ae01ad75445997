"""The official `kubernetes` client against the embedded server: CRUD, metadata, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo


def core(info: ClusterInfo) -> client.CoreV1Api:
    return client.CoreV1Api(info.api_client())


def status_of(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body)
    return body


def test_create_sets_metadata_and_get_returns_it(cluster: ClusterInfo) -> None:
    api = core(cluster)
    created = api.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    meta = created.metadata
    assert meta.uid and len(meta.uid) == 36
    assert int(meta.resource_version) > 0
    assert meta.creation_timestamp is not None
    assert meta.generation is None  # ConfigMaps have no spec, so no generation
    fetched = api.read_namespaced_config_map("cfg", "default")
    assert fetched.metadata.resource_version == meta.resource_version
    assert fetched.data == {"a": "1"}


def test_resource_versions_increase_across_kinds(cluster: ClusterInfo) -> None:
    api = core(cluster)
    a = api.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    b = api.create_namespaced_secret("default", {"metadata": {"name": "b"}, "stringData": {"k": "v"}})
    c = api.patch_namespaced_config_map("a", "default", {"data": {"x": "y"}})
    assert int(a.metadata.resource_version) < int(b.metadata.resource_version) < int(c.metadata.resource_version)
    assert b.data == {"k": "dg=="}  # stringData merged into data, base64


def test_not_found_is_a_status_body(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).read_namespaced_config_map("missing", "default")
    assert exc.value.status == 404
    status = status_of(exc.value)
    assert status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "missing" not found'
    assert status["details"] == {"name": "missing", "kind": "configmaps"}


def test_already_exists(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_config_map("default", {"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_config_map("default", {"metadata": {"name": "dup"}})
    assert exc.value.status == 409
    assert status_of(exc.value)["reason"] == "AlreadyExists"
    assert status_of(exc.value)["message"] == 'configmaps "dup" already exists'


def test_stale_resource_version_conflicts(cluster: ClusterInfo) -> None:
    api = core(cluster)
    first = api.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"v": "1"}})
    first.data = {"v": "2"}
    api.replace_namespaced_config_map("c", "default", first)
    first.data = {"v": "3"}
    with pytest.raises(ApiException) as exc:
        api.replace_namespaced_config_map("c", "default", first)  # still carries the old resourceVersion
    assert exc.value.status == 409
    status = status_of(exc.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert api.read_namespaced_config_map("c", "default").data == {"v": "2"}


def test_update_without_resource_version_is_unconditional(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_config_map("default", {"metadata": {"name": "u"}, "data": {"v": "1"}})
    updated = api.replace_namespaced_config_map("u", "default", {"metadata": {"name": "u"}, "data": {"v": "2"}})
    assert updated.data == {"v": "2"}


def test_noop_update_keeps_resource_version(cluster: ClusterInfo) -> None:
    api = core(cluster)
    created = api.create_namespaced_config_map("default", {"metadata": {"name": "n"}, "data": {"v": "1"}})
    same = api.patch_namespaced_config_map("n", "default", {"data": {"v": "1"}})
    assert same.metadata.resource_version == created.metadata.resource_version


def test_generate_name(cluster: ClusterInfo) -> None:
    created = core(cluster).create_namespaced_config_map("default", {"metadata": {"generateName": "job-"}})
    name = created.metadata.name
    assert name.startswith("job-") and len(name) == len("job-") + 5
    assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_namespace_must_exist(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert exc.value.status == 404
    assert status_of(exc.value)["message"] == 'namespaces "nowhere" not found'


def test_new_namespace_is_populated(cluster: ClusterInfo) -> None:
    api = core(cluster)
    ns = api.create_namespace({"metadata": {"name": "team-a"}})
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "team-a"
    assert ns.spec.finalizers == ["kubernetes"]
    assert ns.status.phase == "Active"
    api.read_namespaced_service_account("default", "team-a")  # 404 would raise
    root_ca = api.read_namespaced_config_map("kube-root-ca.crt", "team-a")
    assert "BEGIN CERTIFICATE" in root_ca.data["ca.crt"]


def test_invalid_name_is_422_with_cause(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert exc.value.status == 422
    status = status_of(exc.value)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert status["details"]["kind"] == "ConfigMap"


def test_invalid_label_value_is_422(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).create_namespaced_config_map(
            "default", {"metadata": {"name": "l", "labels": {"app": "not valid!"}}})
    assert exc.value.status == 422
    assert status_of(exc.value)["details"]["causes"][0]["field"] == "metadata.labels"


def test_generation_counts_spec_changes_only(cluster: ClusterInfo) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    dep = apps.create_namespaced_deployment("default", deployment("web"))
    assert dep.metadata.generation == 1
    assert dep.spec.replicas == 1 and dep.spec.strategy.type == "RollingUpdate"
    dep = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert dep.metadata.generation == 1
    dep = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert dep.metadata.generation == 2
    dep = apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 3}})
    assert dep.metadata.generation == 2 and dep.status.replicas == 3


def test_status_subresource_separates_spec_and_status(cluster: ClusterInfo) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    apps.create_namespaced_deployment("default", deployment("sep"))
    # a write to the main resource ignores status
    dep = apps.patch_namespaced_deployment("sep", "default", {"status": {"replicas": 7}})
    assert dep.status.replicas is None
    # a write to /status ignores spec and metadata
    dep = apps.patch_namespaced_deployment_status(
        "sep", "default", {"spec": {"replicas": 9}, "metadata": {"labels": {"a": "b"}}, "status": {"replicas": 2}})
    assert dep.spec.replicas == 1 and dep.status.replicas == 2
    assert not (dep.metadata.labels or {}).get("a")


def test_validation_of_workloads(cluster: ClusterInfo) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    bad = deployment("bad")
    bad["spec"]["replicas"] = -1
    with pytest.raises(ApiException) as exc:
        apps.create_namespaced_deployment("default", bad)
    assert exc.value.status == 422
    assert ('Deployment.apps "bad" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
            in status_of(exc.value)["message"])


def test_finalizers_hold_deletion(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_config_map("default", {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}})
    held = api.delete_namespaced_config_map("f", "default", _preload_content=False)
    body = json.loads(held.data)
    assert body["kind"] == "ConfigMap"  # the object, not a Status: finalizers hold it
    assert body["metadata"]["deletionTimestamp"]
    still = api.read_namespaced_config_map("f", "default")
    assert still.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": ["example.com/hold", "b.io/x"]}})
    assert exc.value.status == 422
    assert "no new finalizers can be added if the object is being deleted" in status_of(exc.value)["message"]
    api.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_config_map("f", "default")
    assert gone.value.status == 404


def test_delete_returns_success_status(cluster: ClusterInfo) -> None:
    api = core(cluster)
    created = api.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
    result = json.loads(api.delete_namespaced_config_map("d", "default", _preload_content=False).data)
    assert result["kind"] == "Status" and result["status"] == "Success"
    assert result["details"] == {"name": "d", "kind": "configmaps", "uid": created.metadata.uid}


def test_delete_precondition(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_config_map("default", {"metadata": {"name": "p"}})
    with pytest.raises(ApiException) as exc:
        api.delete_namespaced_config_map("p", "default", body={"preconditions": {"uid": "not-the-uid"}})
    assert exc.value.status == 409


def test_protected_namespace_cannot_be_deleted(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).delete_namespace("kube-system")
    assert exc.value.status == 403


def test_service_cluster_ip_allocation(cluster: ClusterInfo, server: Any) -> None:
    import ipaddress

    api = core(cluster)
    cidr = ipaddress.ip_network(server.server.cluster_settings(cluster.name)["serviceCIDR"])
    svc = api.create_namespaced_service("default", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert ipaddress.ip_address(svc.spec.cluster_ip) in cidr
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip]
    assert svc.spec.ip_families == ["IPv4"] and svc.spec.ip_family_policy == "SingleStack"
    assert svc.spec.ports[0].target_port == 80 and svc.spec.ports[0].protocol == "TCP"
    assert svc.spec.type == "ClusterIP" and svc.spec.session_affinity == "None"
    # a PUT that omits clusterIP keeps it
    body = api.read_namespaced_service("web", "default").to_dict()
    replaced = api.replace_namespaced_service("web", "default", {
        "metadata": {"name": "web", "resourceVersion": body["metadata"]["resource_version"]},
        "spec": {"selector": {"app": "web2"}, "ports": [{"port": 80}]}})
    assert replaced.spec.cluster_ip == svc.spec.cluster_ip
    # clusterIP is immutable
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_service("web", "default", {"spec": {"clusterIP": str(cidr.network_address + 9),
                                                                 "clusterIPs": None}})
    assert exc.value.status == 422
    # requesting a taken address is refused
    with pytest.raises(ApiException) as taken:
        api.create_namespaced_service("default", {"metadata": {"name": "other"}, "spec": {
            "clusterIP": svc.spec.cluster_ip, "ports": [{"port": 80}]}})
    assert taken.value.status == 422
    assert "already allocated" in status_of(taken.value)["message"]


def test_headless_and_external_name_services(cluster: ClusterInfo) -> None:
    api = core(cluster)
    headless = api.create_namespaced_service("default", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"}}})
    assert headless.spec.cluster_ip == "None" and headless.spec.cluster_ips == ["None"]
    ext = api.create_namespaced_service("default", {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}})
    assert ext.spec.cluster_ip is None and ext.spec.external_name == "example.com"
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_service("default", {"metadata": {"name": "1bad"}, "spec": {"ports": [{"port": 1}]}})
    assert exc.value.status == 422  # services need DNS-1035 names


def test_dual_stack_service(server: Any) -> None:
    info = server.add_cluster(dual_stack=True)
    svc = core(info).create_namespaced_service("default", {"metadata": {"name": "ds"}, "spec": {
        "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}})
    assert svc.spec.ip_families == ["IPv4", "IPv6"]
    assert len(svc.spec.cluster_ips) == 2 and ":" in svc.spec.cluster_ips[1]


def test_pod_defaults_and_field_selectors(cluster: ClusterInfo) -> None:
    api = core(cluster)
    pod = api.create_namespaced_pod("default", {"metadata": {"name": "p1"}, "spec": {
        "containers": [{"name": "c", "image": "nginx"}]}})
    assert pod.status.phase == "Pending" and pod.status.qos_class == "BestEffort"
    assert pod.spec.restart_policy == "Always" and pod.spec.service_account_name == "default"
    assert pod.spec.containers[0].image_pull_policy == "Always"
    api.create_namespaced_pod("default", {"metadata": {"name": "p2"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1.27"}]}})
    on_node = api.list_namespaced_pod("default", field_selector="spec.nodeName=n1")
    assert [p.metadata.name for p in on_node.items] == ["p2"]
    with pytest.raises(ApiException) as exc:
        api.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert exc.value.status == 400
    assert status_of(exc.value)["message"] == "field label not supported: spec.bogus"


def test_pod_deletion_grace(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_pod("default", {"metadata": {"name": "g"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}})
    terminating = json.loads(api.delete_namespaced_pod("g", "default", _preload_content=False).data)
    assert terminating["metadata"]["deletionTimestamp"]
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    api.delete_namespaced_pod("g", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_pod("g", "default")
    assert gone.value.status == 404


def deployment(name: str, replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                              "ports": [{"containerPort": 80}]}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name}, "spec": spec}


def test_workload_status_counters_are_always_present(cluster: ClusterInfo) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    spec = deployment("rs")["spec"]
    del spec["template"]["spec"]["containers"][0]["ports"]
    rs = apps.create_namespaced_replica_set("default", {"metadata": {"name": "rs"}, "spec": spec})
    assert rs.status.replicas == 0  # no omitempty upstream; the typed client requires it
    sts = apps.create_namespaced_stateful_set("default", {"metadata": {"name": "sts"}, "spec": {**spec,
                                                                                             "serviceName": "sts"}})
    assert sts.status.replicas == 0 and sts.status.available_replicas == 0
    patched = apps.patch_namespaced_replica_set_status("rs", "default", {"status": {"readyReplicas": 1}})
    assert patched.status.replicas == 0


def test_deleting_a_service_returns_it(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_service("default", {"metadata": {"name": "bye"}, "spec": {"ports": [{"port": 80}]}})
    deleted = json.loads(api.delete_namespaced_service("bye", "default", _preload_content=False).data)
    assert deleted["kind"] == "Service" and deleted["metadata"]["name"] == "bye"


def test_cluster_settings_survive_a_restart(tmp_path: Any) -> None:
    from clusterset.testing import ServerThread

    first = ServerThread(tmp_path)
    first.add_cluster("plain", controllers=False, nodes=5)
    first.stop()
    second = ServerThread(tmp_path)
    try:
        settings = second.server.cluster_settings("plain")
        assert settings["controllers"] is False and settings["nodes"] == 5
    finally:
        second.stop()
