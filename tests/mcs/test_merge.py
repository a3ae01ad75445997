"""The MCS data path's pure functions, without I/O: the export summary (`records.py`), the hub's merge
(`merge.py`), what a member imports (`imports.py`) and the names (`api/mcs.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from clusterset.api.mcs import (
    DERIVED_SERVICE_ANNOTATION,
    SOURCE_CLUSTER_LABEL,
    bounded_name,
    derived_service_name,
    record_name,
    split_record_name,
)
from clusterset.mcs.controllers import _not_derived
from clusterset.mcs.imports import derived_service, desired_import, desired_slices
from clusterset.mcs.merge import Export, merge, ordered, route_ports, union_ports
from clusterset.mcs.records import exported_endpoints, exported_service, is_source_slice, service_ports, validity
from clusterset.runtime import Event

Obj = dict[str, Any]
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"


def port(name: str, protocol: str, number: int) -> Obj:
    return {"name": name, "protocol": protocol, "port": number}


def export(cluster: str, created: str = T0, **spec: Any) -> Export:
    base: Obj = {"exportCreationTimestamp": created, "type": "ClusterSetIP", "ports": [port("http", "TCP", 80)],
                 "sessionAffinity": "None", "ipFamilies": ["IPv4"], "exportedLabels": {}, "exportedAnnotations": {}}
    return Export(cluster, {**base, **spec})


# ------------------------------------------------------------------ names
def test_derived_service_name_is_the_reference_controllers() -> None:
    assert derived_service_name("my-ns", "my-svc") == "derived-a2v4k9sqn6"


def test_record_names_round_trip_and_stay_object_names() -> None:
    assert record_name("ns", "svc") == "ns.svc"
    assert split_record_name("ns.svc") == ("ns", "svc")
    assert split_record_name("ns.my.svc") is None and split_record_name("nodot") is None
    long = bounded_name("a" * 63, "b" * 200)
    assert len(long) <= 253 and long.startswith("a" * 63)
    assert bounded_name("a" * 63, "b" * 200) == long != bounded_name("a" * 63, "c" * 200)


# ------------------------------------------------------------------ records.py
def service(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"clusterIP": "10.0.0.1", **spec}}


def test_validity_of_an_export() -> None:
    assert validity(None)[:2] == (False, "NoService")
    assert validity(service(type="ExternalName"))[:2] == (False, "InvalidServiceType")
    for type_ in ("ClusterIP", "NodePort", "LoadBalancer"):
        assert validity(service(type=type_))[:2] == (True, "Valid")


def test_the_summary_has_the_import_fields_only() -> None:
    svc = service(type="NodePort", selector={"app": "web"}, clusterIPs=["10.0.0.1"], sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}, internalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "appProtocol": "http"},
                         {"name": "dns", "protocol": "UDP", "port": 53}])
    svc_export = {"metadata": {"name": "web", "namespace": "ns", "creationTimestamp": T0},
                  "spec": {"exportedLabels": {"a": "b"}}}
    record = exported_service(svc_export, svc)
    assert record["metadata"]["name"] == "ns.web"
    spec = record["spec"]
    assert spec["type"] == "ClusterSetIP"
    assert spec["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "appProtocol": "http"},
                             {"name": "dns", "protocol": "UDP", "port": 53}]
    assert spec["exportCreationTimestamp"] == T0 and spec["exportedLabels"] == {"a": "b"}
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 60}}
    assert spec["internalTrafficPolicy"] == "Local" and spec["ipFamilies"] == ["IPv4"]
    assert "selector" not in spec and "clusterIPs" not in spec and "trafficDistribution" not in spec
    headless = exported_service(svc_export, service(clusterIP="None", sessionAffinityConfig={"x": 1}))
    assert headless["spec"]["type"] == "Headless" and "sessionAffinityConfig" not in headless["spec"]
    assert service_ports(service()) == []


def test_exported_endpoints_copy_what_an_imported_slice_needs() -> None:
    slice_ = {"metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
              "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
              "endpoints": [{"addresses": ["10.1.0.5"], "hostname": "web-0", "zone": "z1", "nodeName": "n1",
                             "conditions": {"ready": True, "serving": True, "terminating": False},
                             "targetRef": {"kind": "Pod", "name": "web-0"}}]}
    assert is_source_slice(slice_)
    record = exported_endpoints("ns", "web", slice_)
    assert record["spec"]["sourceSlice"] == "web-abcde"
    assert record["spec"]["ports"] == slice_["ports"]
    assert record["spec"]["endpoints"] == [{"addresses": ["10.1.0.5"], "hostname": "web-0", "zone": "z1",
                                            "nodeName": "n1",
                                            "conditions": {"ready": True, "serving": True, "terminating": False}}]
    imported = {**slice_, "metadata": {"name": "x", "labels": {
        "kubernetes.io/service-name": "derived-x",
        "endpointslice.kubernetes.io/managed-by": "mcs-controller.clusterset.io"}}}
    assert not is_source_slice(imported)


# ------------------------------------------------------------------ merge.py
def test_no_export_no_service() -> None:
    assert merge([]) is None


def test_identical_exports_merge_without_conflict() -> None:
    merged = merge([export("b", T1), export("a", T0)])
    assert merged is not None and merged.reasons == () and merged.message == ""
    assert merged.spec["ports"] == [port("http", "TCP", 80)] and merged.spec["type"] == "ClusterSetIP"


def test_the_oldest_wins_and_equal_timestamps_go_by_cluster_id() -> None:
    assert [e.cluster for e in ordered([export("c", T1), export("b", T0), export("a", T1)])] == ["b", "a", "c"]
    merged = merge([export("b", T0, type="Headless"), export("a", T0)])
    assert merged is not None and merged.spec["type"] == "ClusterSetIP"  # "a" < "b" at the same second
    assert merged.reasons == ("TypeConflict",)
    assert merged.message == 'Conflicting type. Using "ClusterSetIP" from oldest service export in "a". ' \
                             '1/2 clusters disagree.'
    merged = merge([export("b", T0, type="Headless"), export("a", T1)])
    assert merged is not None and merged.spec["type"] == "Headless"


def test_union_of_ports_by_name_then_protocol_and_port() -> None:
    a = export("a", T0, ports=[port("tcp", "TCP", 42), port("udp", "UDP", 42)])
    b = export("b", T1, ports=[port("tcp", "TCP", 42), port("sctp", "SCTP", 142)])
    c = export("c", T2, ports=[port("udp", "TCP", 99), port("other", "UDP", 42), port("tcp2", "TCP", 4242)])
    assert union_ports([a, b, c]) == [port("tcp", "TCP", 42), port("udp", "UDP", 42), port("sctp", "SCTP", 142),
                                      port("tcp2", "TCP", 4242)]
    assert union_ports([a, export("b", T1, ports=[port("", "TCP", 1), port("", "TCP", 2)])]) == [
        port("tcp", "TCP", 42), port("udp", "UDP", 42), port("", "TCP", 1)]  # the empty name counts as a name
    merged = merge([b, a])
    assert merged is not None and merged.reasons == ("PortConflict",)
    assert "1/2 clusters disagree" in merged.message and '"a"' in merged.message
    assert merged.spec["ports"] == [port("tcp", "TCP", 42), port("udp", "UDP", 42), port("sctp", "SCTP", 142)]


def test_the_same_ports_in_another_order_are_no_conflict() -> None:
    merged = merge([export("a", T0, ports=[port("a", "TCP", 1), port("b", "TCP", 2)]),
                    export("b", T1, ports=[port("b", "TCP", 2), port("a", "TCP", 1)])])
    assert merged is not None and merged.reasons == ()


def test_every_reason_in_the_order_of_the_api_constants() -> None:
    old = export("a", T0, ports=[port("http", "TCP", 80)], sessionAffinity="ClientIP",
                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": 1}}, exportedLabels={"x": "1"},
                 exportedAnnotations={"x": "1"}, internalTrafficPolicy="Local", trafficDistribution="PreferClose",
                 ipFamilies=["IPv4"])
    new = export("b", T1, type="Headless", ports=[port("web", "TCP", 81)], sessionAffinity="None",
                 exportedLabels={"x": "2"}, exportedAnnotations={}, internalTrafficPolicy="Cluster",
                 ipFamilies=["IPv6"])
    merged = merge([new, old, export("c", T2, **{**old.spec, "exportCreationTimestamp": T2})])
    assert merged is not None
    assert merged.reasons == ("PortConflict", "TypeConflict", "SessionAffinityConflict",
                              "SessionAffinityConfigConflict", "LabelsConflict", "AnnotationsConflict",
                              "InternalTrafficPolicyConflict", "TrafficDistributionConflict", "IPFamilyConflict")
    assert merged.message.count("1/3 clusters disagree.") == 9
    spec = merged.spec
    assert (spec["type"], spec["sessionAffinity"], spec["labels"], spec["internalTrafficPolicy"],
            spec["trafficDistribution"]) == ("ClusterSetIP", "ClientIP", {"x": "1"}, "Local", "PreferClose")
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 1}}


def test_no_session_affinity_config_without_client_ip() -> None:
    merged = merge([export("a", T0, sessionAffinity="None", sessionAffinityConfig={"clientIP": {}})])
    assert merged is not None and "sessionAffinityConfig" not in merged.spec


@pytest.mark.parametrize(("cluster_ports", "slice_ports", "routed"), [
    pytest.param([port("tcp", "TCP", 42)], [port("tcp", "TCP", 8080)], [port("tcp", "TCP", 8080)], id="exposes-it"),
    pytest.param([port("tcp", "TCP", 4242)], [port("tcp", "TCP", 42)], [], id="same-name-other-port"),
    pytest.param([port("other", "TCP", 42)], [port("other", "TCP", 9)], [port("tcp", "TCP", 9)],
                 id="same-port-other-name"),
    pytest.param([port("tcp", "UDP", 42)], [port("tcp", "UDP", 42)], [], id="other-protocol"),
])
def test_route_ports_only_to_clusters_that_expose_them(cluster_ports: list[Obj], slice_ports: list[Obj],
                                                       routed: list[Obj]) -> None:
    assert route_ports([port("tcp", "TCP", 42)], cluster_ports, slice_ports) == routed


def test_route_ports_two_ports_two_clusters() -> None:
    import_ports = [port("tcp", "TCP", 42), port("udp", "UDP", 42), port("tcp2", "TCP", 4242)]
    assert route_ports(import_ports, [port("tcp", "TCP", 42), port("udp", "UDP", 42)],
                       [port("tcp", "TCP", 42), port("udp", "UDP", 42)]) == import_ports[:2]
    assert route_ports(import_ports, [port("tcp2", "TCP", 4242)], [port("tcp2", "TCP", 42)]) == [
        port("tcp2", "TCP", 42)]


# ------------------------------------------------------------------ imports.py
def merged_spec(**spec: Any) -> Obj:
    return {"spec": {"namespace": "my-ns", "name": "my-svc", "type": "ClusterSetIP",
                     "ports": [port("http", "TCP", 80)], "sessionAffinity": "None", "ipFamilies": ["IPv4"],
                     "labels": {"tier": "web"}, "annotations": {"note": "x"}, **spec},
            "status": {"clusters": [{"cluster": "a"}, {"cluster": "b"}]}}


def test_desired_import_of_a_clusterset_ip_service() -> None:
    derived = {"spec": {"clusterIPs": ["10.96.0.9", "fd00::9"], "ipFamilies": ["IPv4", "IPv6"]}}
    imp = desired_import(merged_spec(internalTrafficPolicy="Local"), derived)
    assert imp["metadata"]["name"] == "my-svc" and imp["metadata"]["namespace"] == "my-ns"
    assert imp["metadata"]["labels"] == {"tier": "web"}
    assert imp["metadata"]["annotations"] == {"note": "x", DERIVED_SERVICE_ANNOTATION: "derived-a2v4k9sqn6"}
    assert imp["spec"] == {"type": "ClusterSetIP", "ports": [port("http", "TCP", 80)], "ips": ["10.96.0.9", "fd00::9"],
                           "ipFamilies": ["IPv4", "IPv6"], "sessionAffinity": "None", "internalTrafficPolicy": "Local"}
    pending = desired_import(merged_spec(), None)
    assert pending["spec"]["ips"] == [] and pending["spec"]["ipFamilies"] == ["IPv4"]


def test_desired_import_of_a_headless_service() -> None:
    imp = desired_import(merged_spec(type="Headless", ipFamilies=["IPv6"]), None)
    assert imp["spec"]["ips"] == [] and imp["spec"]["ipFamilies"] == ["IPv6"]
    assert DERIVED_SERVICE_ANNOTATION not in imp["metadata"]["annotations"]


def test_derived_service_has_the_import_ports() -> None:
    svc = derived_service(merged_spec(ports=[port("", "UDP", 53)]), {"metadata": {"name": "my-svc", "uid": "u1"}})
    assert svc["metadata"]["name"] == "derived-a2v4k9sqn6"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert svc["spec"]["ports"] == [{"protocol": "UDP", "port": 53, "targetPort": 53}]
    assert svc["spec"]["type"] == "ClusterIP" and "selector" not in svc["spec"]


def test_desired_slices_one_per_record_labelled_for_mcs() -> None:
    service_import = {"metadata": {"name": "my-svc", "uid": "u1"}}
    record = {"metadata": {"name": "my-ns.a.web-x", "labels": {SOURCE_CLUSTER_LABEL: "a"}},
              "spec": {"addressType": "IPv4", "ports": [port("http", "TCP", 8080)],
                       "endpoints": [{"addresses": ["10.0.0.1"], "hostname": "web-0"}]}}
    orphan = {"metadata": {"name": "no-cluster", "labels": {}}, "spec": {}}
    (slice_,) = desired_slices(merged_spec(), service_import, [record, orphan])
    assert slice_["metadata"]["labels"] == {
        "multicluster.kubernetes.io/service-name": "my-svc", SOURCE_CLUSTER_LABEL: "a",
        "endpointslice.kubernetes.io/managed-by": "mcs-controller.clusterset.io",
        "kubernetes.io/service-name": "derived-a2v4k9sqn6"}
    assert slice_["endpoints"] == [{"addresses": ["10.0.0.1"], "hostname": "web-0"}]
    assert slice_["ports"] == [port("http", "TCP", 8080)]
    assert slice_["metadata"]["ownerReferences"][0]["uid"] == "u1"
    (headless,) = desired_slices(merged_spec(type="Headless"), service_import, [record])
    assert "kubernetes.io/service-name" not in headless["metadata"]["labels"]


def test_the_export_side_ignores_derived_services_only() -> None:
    """Its Service watch drops the events of the Services this agent derives for imports (one or two per member
    and export), and no other Service's: a user's, or one that only carries the label."""
    def service(name: str, **labels: str) -> Event:
        return Event("ADDED", {"metadata": {"name": name, "namespace": "ns", "labels": labels}})

    assert not _not_derived(service(derived_service_name("ns", "web"), **{"multicluster.kubernetes.io/service-name":
                                                                            "web"}))
    assert _not_derived(service("web"))
    assert _not_derived(service("web", **{"multicluster.kubernetes.io/service-name": "web"}))
    assert _not_derived(service(derived_service_name("ns", "web")))
