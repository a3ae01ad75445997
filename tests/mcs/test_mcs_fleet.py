"""Multi-Cluster Services end to end on a 3-member embedded fleet: export → import everywhere, headless,
namespaces, bad input, kubectl. One fleet for the module; each test works in its own namespace."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusterset.api.mcs import (
    DERIVED_SERVICE_ANNOTATION,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SOURCE_CLUSTER_LABEL,
    derived_service_name,
)
from clusterset.testing import FleetThread
from tests.conftest import KUBECTLS, Kubectl
from tests.helpers import table, wait_until
from tests.mcs.fleet import MEMBERS, Mcs, endpoints_by_cluster, fleet_options, holds_throughout, ips

KUBE_SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture(scope="module")
def mcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mcs]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("mcs-fleet")) / "fleet"))
    try:
        yield Mcs(fleet)
    finally:
        fleet.stop()


def ready_import(mcs: Mcs, member: str, ns: str, name: str, clusters: set[str]) -> dict | None:
    imp = mcs.service_import(member, ns, name)
    if imp is None:
        return None
    status = imp.get("status") or {}
    got = {c["cluster"] for c in status.get("clusters") or []}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return imp if got == clusters and ready else None


def test_export_from_two_members_imports_into_all_three(mcs: Mcs) -> None:
    ns, name = "export-everywhere", "web"
    mcs.namespace(ns)
    for m in ("member-1", "member-2"):
        mcs.deployment(m, ns, name, replicas=2, container_ports=(8080,))
        mcs.service(m, ns, name, [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                    sessionAffinity="ClientIP")
        mcs.export(m, ns, name)
    wait_until(lambda: all(len(mcs.ready_pod_ips(m, ns, name)) == 2 for m in ("member-1", "member-2")), 30,
               message="pods ready")
    pods = {m: mcs.ready_pod_ips(m, ns, name) for m in ("member-1", "member-2")}

    for member in MEMBERS:
        imp = wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1", "member-2"}), 30,
                         message=f"the import in {member}")
        spec = imp["spec"]
        assert spec["type"] == "ClusterSetIP"
        assert spec["ports"] == [{"name": "http", "protocol": "TCP", "port": 80}]
        assert spec["sessionAffinity"] == "ClientIP"
        assert spec["ips"] and len(spec["ips"]) == len(spec["ipFamilies"])
        for ip, family in zip(spec["ips"], spec["ipFamilies"], strict=True):
            assert ipaddress.ip_address(ip).version == (4 if family == "IPv4" else 6)
        derived = derived_service_name(ns, name)
        assert imp["metadata"]["annotations"][DERIVED_SERVICE_ANNOTATION] == derived
        svc = mcs.derived(member, ns, name)
        assert svc is not None and svc["spec"]["clusterIPs"] == spec["ips"]

        def slices_complete(m: str = member) -> list[dict] | None:
            got = mcs.imported_slices(m, ns, name)
            return got if endpoints_by_cluster(got) == pods else None

        slices = wait_until(slices_complete, 30, message=f"imported endpoints in {member}")
        for s in slices:
            labels = s["metadata"]["labels"]
            assert labels[SERVICE_NAME_LABEL] == name
            assert labels[SOURCE_CLUSTER_LABEL] in ("member-1", "member-2")
            assert labels[MANAGED_BY_LABEL] and labels[MANAGED_BY_LABEL] != "endpointslice-controller.k8s.io"
            assert labels.get(KUBE_SERVICE_NAME) == derived
            assert [(p["name"], p["protocol"], p["port"]) for p in s["ports"]] == [("http", "TCP", 8080)]
            assert all(ep["conditions"]["ready"] for ep in s["endpoints"])
        # the local Service's own slices hold only local pods
        local = [s for s in mcs.local_slices(member, ns, name) if s["metadata"]["labels"].get(
            MANAGED_BY_LABEL) == "endpointslice-controller.k8s.io"]
        assert ips(mcs.local_slices(member, ns, name)) == pods.get(member, set())
        assert ips(local) == pods.get(member, set())

    for m in ("member-1", "member-2"):
        wait_until(lambda m=m: mcs.condition(m, ns, name, "Ready") == ("True", "Ready"), 15, message="Ready")
        assert mcs.condition(m, ns, name, "Valid") == ("True", "Valid")
        assert mcs.condition(m, ns, name, "Conflict") == ("False", "NoConflicts")


def normal_export_works(mcs: Mcs, ns: str, name: str = "still-works") -> None:
    """After bad input: an ordinary export from member-1 still imports into every member."""
    mcs.namespace(ns)
    mcs.service("member-1", ns, name, [{"port": 80}])
    mcs.export("member-1", ns, name)
    for member in MEMBERS:
        wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1"}), 30,
                   message=f"an ordinary import in {member}")


def test_headless_statefulset_keeps_hostnames_one_slice_per_cluster(mcs: Mcs) -> None:
    ns, name = "headless", "web"
    mcs.namespace(ns)
    for m in ("member-1", "member-2"):
        mcs.statefulset(m, ns, name, service=name, replicas=2)
        mcs.service(m, ns, name, [{"name": "http", "port": 80}], headless=True)
        mcs.export(m, ns, name)
    wait_until(lambda: all(len(mcs.ready_pod_ips(m, ns, name)) == 2 for m in ("member-1", "member-2")), 30,
               message="pods ready")
    for member in MEMBERS:
        imp = wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1", "member-2"}), 30,
                         message=f"the import in {member}")
        assert imp["spec"]["type"] == "Headless"
        assert imp["spec"]["ips"] == []
        assert imp["spec"]["ipFamilies"]
        assert DERIVED_SERVICE_ANNOTATION not in (imp["metadata"].get("annotations") or {})
        assert mcs.derived(member, ns, name) is None

        def complete(m: str = member) -> list[dict] | None:
            got = mcs.imported_slices(m, ns, name)
            ready = [ep for s in got for ep in s["endpoints"] if ep["conditions"].get("ready")]
            return got if len(got) == 2 and len(ready) == 4 else None

        slices = wait_until(complete, 30, message=f"imported headless slices in {member}")
        by_cluster = {s["metadata"]["labels"][SOURCE_CLUSTER_LABEL]: s for s in slices}
        assert set(by_cluster) == {"member-1", "member-2"}
        for s in slices:
            assert sorted(ep.get("hostname") for ep in s["endpoints"]) == ["web-0", "web-1"]
            assert KUBE_SERVICE_NAME not in s["metadata"]["labels"]


def test_a_member_without_the_namespace_imports_once_it_has_it(mcs: Mcs) -> None:
    ns, name = "late-namespace", "api"
    mcs.namespace(ns, ("member-1", "member-2"))
    mcs.deployment("member-1", ns, name, replicas=1)
    mcs.service("member-1", ns, name, [{"port": 80, "targetPort": 8080}])
    mcs.export("member-1", ns, name)
    for member in ("member-1", "member-2"):
        wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1"}), 30, message=f"import in {member}")
    holds_throughout(lambda: mcs.service_import("member-3", ns, name) is None
                     and not mcs.imported_slices("member-3", ns, name), 2.0)
    mcs.namespace(ns, ("member-3",))
    imp = wait_until(lambda: ready_import(mcs, "member-3", ns, name, {"member-1"}), 30, message="import in member-3")
    assert imp["spec"]["ips"]
    wait_until(lambda: endpoints_by_cluster(mcs.imported_slices("member-3", ns, name)) ==
               {"member-1": mcs.ready_pod_ips("member-1", ns, name)} != {"member-1": set()}, 30,
               message="endpoints in member-3")


# ------------------------------------------------------------------ bad input
def test_an_export_without_a_service_is_not_valid_and_imports_nothing(mcs: Mcs) -> None:
    ns = "no-service"
    mcs.namespace(ns)
    mcs.export("member-1", ns, "ghost")
    wait_until(lambda: mcs.condition("member-1", ns, "ghost", "Valid") == ("False", "NoService"), 15,
               message="Valid=False/NoService")
    assert mcs.condition("member-1", ns, "ghost", "Ready") is not None
    assert mcs.condition("member-1", ns, "ghost", "Ready")[0] != "True"
    wait_until(lambda: any(e["type"] == "Warning" and e["reason"] == "NoService"
                           for e in mcs.events("member-1", ns, "ghost")), 10, message="a Warning Event")
    assert all(mcs.service_import(m, ns, "ghost") is None for m in MEMBERS)
    # creating the Service later makes it valid and imported
    mcs.service("member-1", ns, "ghost", [{"port": 80}])
    for member in MEMBERS:
        wait_until(lambda m=member: ready_import(mcs, m, ns, "ghost", {"member-1"}), 30, message="import")
    wait_until(lambda: mcs.condition("member-1", ns, "ghost", "Valid") == ("True", "Valid"), 10, message="Valid")


def test_an_external_name_service_is_invalid_and_never_imported(mcs: Mcs) -> None:
    ns, name = "external-name", "ext"
    mcs.namespace(ns)
    from tests.helpers import core

    core(mcs.info("member-1")).create_namespaced_service(ns, {
        "metadata": {"name": name}, "spec": {"type": "ExternalName", "externalName": "example.com"}})
    mcs.export("member-1", ns, name)
    wait_until(lambda: mcs.condition("member-1", ns, name, "Valid") == ("False", "InvalidServiceType"), 15,
               message="Valid=False/InvalidServiceType")
    holds_throughout(lambda: all(mcs.service_import(m, ns, name) is None for m in MEMBERS), 5.0)
    normal_export_works(mcs, ns)


def test_a_service_without_ports_imports_with_no_ports(mcs: Mcs) -> None:
    ns, name = "no-ports", "bare"
    mcs.namespace(ns)
    mcs.statefulset("member-1", ns, name, service=name, replicas=1)
    mcs.service("member-1", ns, name, None, headless=True)
    mcs.export("member-1", ns, name)
    for member in MEMBERS:
        imp = wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1"}), 30, message="import")
        assert imp["spec"]["ports"] == []
    wait_until(lambda: mcs.condition("member-1", ns, name, "Ready") == ("True", "Ready"), 15, message="Ready")
    normal_export_works(mcs, ns)


def test_a_service_with_a_thousand_ports_imports_or_fails_clearly(mcs: Mcs) -> None:
    ns, name = "many-ports", "wide"
    mcs.namespace(ns)
    ports = [{"name": f"p{i}", "port": 10000 + i, "targetPort": 10000 + i} for i in range(1000)]
    mcs.deployment("member-1", ns, name, replicas=1)
    from kubernetes.client.rest import ApiException

    try:
        mcs.service("member-1", ns, name, ports)
    except ApiException as err:  # the server refuses so many: a clear 4xx, not a crash
        assert 400 <= err.status < 500 and "ports" in err.body, err.body
    else:
        mcs.export("member-1", ns, name)

        def settled() -> bool:
            imp = mcs.service_import("member-3", ns, name)
            if imp is not None and len(imp["spec"]["ports"]) == 1000:
                return True
            conditions = mcs.conditions("member-1", ns, name)
            return conditions.get("Ready", {}).get("reason") == "Failed"

        wait_until(settled, 60, message="a working import of 1000 ports, or Ready=False/Failed on the export")
        imp = mcs.service_import("member-3", ns, name)
        if imp is not None:
            assert len(mcs.derived("member-3", ns, name)["spec"]["ports"]) == 1000
            wait_until(lambda: [len(s["ports"]) for s in mcs.imported_slices("member-3", ns, name)] == [1000], 30,
                       message="the imported slice with 1000 ports")
    normal_export_works(mcs, ns)


def test_an_export_named_as_no_service_can_be(mcs: Mcs) -> None:
    ns = "bad-name"
    mcs.namespace(ns)
    from kubernetes.client.rest import ApiException

    try:
        mcs.export("member-1", ns, "my.svc")  # a DNS subdomain (an object name), not a DNS label (a Service name)
    except ApiException as err:
        assert err.status == 422
    else:
        wait_until(lambda: mcs.condition("member-1", ns, "my.svc", "Valid") == ("False", "NoService"), 15,
                   message="Valid=False/NoService")
        holds_throughout(lambda: all(mcs.service_import(m, ns, "my.svc") is None for m in MEMBERS), 1.0)
    normal_export_works(mcs, ns)


# ------------------------------------------------------------------ kubectl
@pytest.fixture(scope="module")
def kubectl_export(mcs: Mcs) -> tuple[str, str]:
    ns, name = "kubectl", "web"
    mcs.namespace(ns)
    mcs.service("member-1", ns, name, [{"port": 80}])
    mcs.export("member-1", ns, name)
    wait_until(lambda: ready_import(mcs, "member-1", ns, name, {"member-1"}), 30, message="the import")
    wait_until(lambda: mcs.condition("member-1", ns, name, "Conflict") == ("False", "NoConflicts"), 15,
               message="Conflict=False")
    return ns, name


@pytest.mark.parametrize("version", sorted(KUBECTLS) or ["missing"])
def test_kubectl_shows_exports_and_imports_with_their_columns(mcs: Mcs, kubectl_export: tuple[str, str],
                                                              version: str, tmp_path: Path) -> None:
    if version == "missing":
        pytest.skip("kubectl is not installed on this machine")
    ns, name = kubectl_export
    kubectl = Kubectl(KUBECTLS[version], mcs.info("member-1"), tmp_path / "kubectl-cache")
    out = kubectl("get", "serviceexports,serviceimports", "-n", ns)
    blocks = [table(block) for block in out.strip().split("\n\n")]
    assert len(blocks) == 2, out
    exports, imports = blocks
    assert exports[0][:4] == ["NAME", "VALID", "READY", "CONFLICT"], out
    assert exports[1][:4] == [f"serviceexport.multicluster.x-k8s.io/{name}", "True", "True", "False"], out
    assert imports[0][:4] == ["NAME", "TYPE", "IPS", "CLUSTERS"], out
    ips_ = mcs.service_import("member-1", ns, name)["spec"]["ips"]
    assert imports[1][:4] == [f"serviceimport.multicluster.x-k8s.io/{name}", "ClusterSetIP",
                              "[" + " ".join(ips_) + "]", "[map[cluster:member-1]]"], out
    # and an importer that does not export: the import alone
    other = Kubectl(KUBECTLS[version], mcs.info("member-3"), tmp_path / "kubectl-cache-3")
    rows = table(other("get", "svcim", "-n", ns))
    ips_ = mcs.service_import("member-3", ns, name)["spec"]["ips"]  # ClusterSet IPs are per member here
    assert rows[1][:4] == [name, "ClusterSetIP", "[" + " ".join(ips_) + "]", "[map[cluster:member-1]]"]
    assert "No resources found" in other.run("get", "svcex", "-n", ns).stderr


# ------------------------------------------------------------------ more of the same service's life
def test_a_node_port_service_imports_as_clusterset_ip_without_node_ports(mcs: Mcs) -> None:
    ns, name = "node-port", "np"
    mcs.namespace(ns)
    mcs.service("member-1", ns, name, [{"name": "http", "port": 80, "targetPort": 8080}], type="NodePort")
    mcs.export("member-1", ns, name)
    imp = wait_until(lambda: ready_import(mcs, "member-2", ns, name, {"member-1"}), 30, message="the import")
    assert imp["spec"]["type"] == "ClusterSetIP"
    assert imp["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80}]
    derived = mcs.derived("member-2", ns, name)
    assert derived is not None and derived["spec"]["type"] == "ClusterIP"
    assert all(not p.get("nodePort") for p in derived["spec"]["ports"])


def test_what_others_change_in_imported_objects_is_put_back(mcs: Mcs) -> None:
    ns, name = "tampered", "web"
    mcs.namespace(ns)
    mcs.deployment("member-1", ns, name, replicas=1)
    mcs.service("member-1", ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
    mcs.export("member-1", ns, name)
    wait_until(lambda: ready_import(mcs, "member-3", ns, name, {"member-1"}), 30, message="the import")
    (slice_,) = wait_until(lambda: [s for s in mcs.imported_slices("member-3", ns, name) if s["endpoints"]], 30,
                           message="the imported slice")
    from kubernetes import client

    from tests.helpers import custom

    client.DiscoveryV1Api(mcs.info("member-3").api_client()).delete_namespaced_endpoint_slice(
        slice_["metadata"]["name"], ns)
    wait_until(lambda: [s["metadata"]["uid"] for s in mcs.imported_slices("member-3", ns, name)
                        if s["endpoints"]] not in ([], [slice_["metadata"]["uid"]]), 15, message="the slice made again")
    custom(mcs.info("member-3")).patch_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1beta1", ns, "serviceimports", name,
        {"spec": {"ports": [{"name": "evil", "protocol": "TCP", "port": 666}]}})
    wait_until(lambda: mcs.service_import("member-3", ns, name)["spec"]["ports"] ==
               [{"name": "http", "protocol": "TCP", "port": 80}], 15, message="the import's ports put back")


def test_endpoint_readiness_follows_the_pods(mcs: Mcs) -> None:
    ns, name = "readiness", "web"
    mcs.namespace(ns)
    mcs.deployment("member-1", ns, name, replicas=2)
    mcs.service("member-1", ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
    mcs.export("member-1", ns, name)
    wait_until(lambda: len(mcs.ready_pod_ips("member-1", ns, name)) == 2, 30, message="pods ready")

    def ready_ips(member: str) -> set[str]:
        return {a for s in mcs.imported_slices(member, ns, name) for ep in s["endpoints"]
                if ep["conditions"].get("ready") for a in ep["addresses"]}

    wait_until(lambda: len(ready_ips("member-2")) == 2, 30, message="two ready endpoints imported")
    from tests.helpers import core

    pod = core(mcs.info("member-1")).list_namespaced_pod(ns, label_selector=f"app={name}").items[0]
    core(mcs.info("member-1")).patch_namespaced_pod(pod.metadata.name, ns, {"metadata": {"annotations": {
        "clusterset.io/simulate-ready": "false"}}})
    wait_until(lambda: ready_ips("member-2") == mcs.ready_pod_ips("member-1", ns, name) and
               len(ready_ips("member-2")) == 1, 20, message="the unready pod's endpoint not ready in member-2")


def test_deleting_the_namespace_in_an_importer_removes_its_import_only(mcs: Mcs) -> None:
    ns, name = "ns-deleted", "web"
    mcs.namespace(ns)
    mcs.service("member-1", ns, name, [{"port": 80}])
    mcs.export("member-1", ns, name)
    for member in MEMBERS:
        wait_until(lambda m=member: ready_import(mcs, m, ns, name, {"member-1"}), 30, message="the import")
    from tests.helpers import core

    core(mcs.info("member-3")).delete_namespace(ns)
    wait_until(lambda: mcs.service_import("member-3", ns, name) is None, 30, message="no import in member-3")
    holds_throughout(lambda: ready_import(mcs, "member-2", ns, name, {"member-1"}) is not None, 1.0)


def test_the_type_follows_the_oldest_remaining_export(mcs: Mcs) -> None:
    ns, name = "type-switch", "web"
    mcs.namespace(ns)
    mcs.statefulset("member-2", ns, name, service=name, replicas=1)
    mcs.service("member-1", ns, name, [{"name": "http", "port": 80}], app=name)
    mcs.service("member-2", ns, name, [{"name": "http", "port": 80}], headless=True)
    first = mcs.export("member-1", ns, name)
    from datetime import UTC, datetime, timedelta

    created = datetime.fromisoformat(first["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    wait_until(lambda: datetime.now(UTC) >= created + timedelta(seconds=1.1), 3, message="the next second")
    mcs.export("member-2", ns, name)
    wait_until(lambda: (mcs.service_import("member-3", ns, name) or {}).get("spec", {}).get("type") ==
               "ClusterSetIP" and mcs.condition("member-2", ns, name, "Conflict") == ("True", "TypeConflict"), 30,
               message="ClusterSetIP with a TypeConflict")
    mcs.unexport("member-1", ns, name)
    for member in MEMBERS:
        def headless(m: str = member) -> bool:
            imp = mcs.service_import(m, ns, name)
            slices = mcs.imported_slices(m, ns, name)
            return (imp is not None and imp["spec"]["type"] == "Headless" and imp["spec"]["ips"] == []
                    and mcs.derived(m, ns, name) is None and len(slices) == 1
                    and KUBE_SERVICE_NAME not in slices[0]["metadata"]["labels"])

        wait_until(headless, 30, message=f"a headless import in {member}")
    wait_until(lambda: mcs.condition("member-2", ns, name, "Conflict") == ("False", "NoConflicts"), 15,
               message="no conflict left")
