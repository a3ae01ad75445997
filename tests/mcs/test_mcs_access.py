"""What an agent's hub token may do with MCS records, what a lying agent achieves (nothing), `clusterset status`'s
services table, and what `leave` takes away."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.fleet.embedded import FleetOptions
from clusterset.inventory.registration import leave
from clusterset.testing import FleetThread
from tests.helpers import custom, wait_until
from tests.inventory.test_fleet import agent_api

MCS = ("multicluster.x-k8s.io", "v1beta1")
OURS = ("clusterset.io", "v1alpha1")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    thread = FleetThread(FleetOptions(tmp_path_factory.mktemp("mcs-access") / "fleet", members=3, heartbeat=0.5,
                                      grace=6.0, probe_timeout=2.0, endpoint_lease=3))
    try:
        yield thread
    finally:
        thread.stop()


def export(fleet: FleetThread, member: str, namespace: str, name: str, port: int = 80) -> None:
    api = client.CoreV1Api(fleet.info(member).api_client())
    try:
        api.create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        assert exc.status == 409
    api.create_namespaced_service(namespace, {"metadata": {"name": name},
                                              "spec": {"ports": [{"name": "http", "port": port}]}})
    custom(fleet.info(member)).create_namespaced_custom_object(
        *MCS, namespace, "serviceexports", {"apiVersion": "/".join(MCS), "kind": "ServiceExport",
                                           "metadata": {"name": name}})


def imported(fleet: FleetThread, member: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(custom(fleet.info(member)).get_namespaced_custom_object(*MCS, namespace, "serviceimports", name))
    except ApiException as exc:
        assert exc.status == 404
        return None


def merged_service(fleet: FleetThread, name: str) -> dict[str, Any] | None:
    try:
        return dict(custom(fleet.info("hub")).get_namespaced_custom_object(*OURS, "clusterset", "clustersetservices",
                                                                           name))
    except ApiException as exc:
        assert exc.status == 404
        return None


def forbidden(call: Callable[[], Any]) -> str:
    with pytest.raises(ApiException) as exc:
        call()
    assert exc.value.status == 403, exc.value.body
    return str(json.loads(exc.value.body)["message"])


def test_an_agent_reads_the_merged_services_and_writes_only_its_own_records(fleet: FleetThread) -> None:
    export(fleet, "member-1", "access", "web")
    api = client.CustomObjectsApi(agent_api(fleet, "member-2"))
    merged = wait_until(lambda: api.list_namespaced_custom_object(*OURS, "clusterset", "clustersetservices")["items"],
                        timeout=15)
    assert [m["metadata"]["name"] for m in merged] == ["access.web"]
    assert api.list_namespaced_custom_object(*OURS, "clusterset", "clustersetendpoints")["items"] == []
    wait_until(lambda: imported(fleet, "member-1", "access", "web"), timeout=15)
    assert imported(fleet, "member-2", "access", "web") is None  # no namespace "access" there

    user = 'User "system:serviceaccount:clusterset-member-2:clusterset-agent"'
    # another member's records: neither read nor written
    message = forbidden(lambda: api.list_namespaced_custom_object(*OURS, "clusterset-member-1", "exportedservices"))
    assert message.startswith(f"exportedservices.clusterset.io is forbidden: {user} cannot list")
    forbidden(lambda: api.create_namespaced_custom_object(
        *OURS, "clusterset-member-1", "exportedendpoints",
        {"apiVersion": "/".join(OURS), "kind": "ExportedEndpoints", "metadata": {"name": "access.fake"}}))
    # the merged services: read only
    forbidden(lambda: api.delete_namespaced_custom_object(*OURS, "clusterset", "clustersetservices", "access.web"))
    forbidden(lambda: api.create_namespaced_custom_object(
        *OURS, "clusterset", "clustersetendpoints",
        {"apiVersion": "/".join(OURS), "kind": "ClusterSetEndpoints", "metadata": {"name": "x"}}))
    forbidden(lambda: api.list_namespaced_custom_object(*OURS, "clusterset", "clusterreports"))
    leases = client.CoordinationV1Api(agent_api(fleet, "member-2"))
    forbidden(lambda: leases.list_namespaced_lease("clusterset-member-1"))
    # its own namespace: its records and its endpoint Lease
    assert api.list_namespaced_custom_object(*OURS, "clusterset-member-2", "exportedservices")["items"] == []
    lease = wait_until(lambda: leases.read_namespaced_lease("clusterset-endpoints", "clusterset-member-2"), timeout=15)
    assert lease.spec.holder_identity == "member-2" and lease.spec.lease_duration_seconds == 3


def test_a_record_speaks_only_for_the_member_whose_namespace_holds_it(fleet: FleetThread) -> None:
    """A record that claims another cluster counts as its namespace's member; that member's agent, once it runs,
    deletes records of exports it does not have."""
    export(fleet, "member-1", "spoof", "web")
    hub = custom(fleet.info("hub"))
    wait_until(lambda: merged_service(fleet, "spoof.web"), timeout=30)
    fleet.call(fleet.fleet.members.remove("member-3"))  # its token still works; its agent does not run
    lying = client.CustomObjectsApi(agent_api(fleet, "member-3"))
    lying.create_namespaced_custom_object(*OURS, "clusterset-member-3", "exportedservices", {
        "apiVersion": "/".join(OURS), "kind": "ExportedService",
        "metadata": {"name": "spoof.web", "labels": {"clusterset.io/service-namespace": "spoof",
                                                      "multicluster.kubernetes.io/service-name": "web"}},
        "spec": {"cluster": "member-1", "namespace": "spoof", "name": "web", "type": "Headless",
                 "exportCreationTimestamp": "2000-01-01T00:00:00Z", "ports": []}})

    def clusters() -> list[str]:
        merged = hub.get_namespaced_custom_object(*OURS, "clusterset", "clustersetservices", "spoof.web")
        return [c["cluster"] for c in merged["status"]["clusters"]]

    # it counts as member-3's (its namespace), and being oldest it wins: that is what an export from member-3 is
    wait_until(lambda: clusters() == ["member-1", "member-3"], timeout=15)
    merged = hub.get_namespaced_custom_object(*OURS, "clusterset", "clustersetservices", "spoof.web")
    assert merged["spec"]["type"] == "Headless" and "TypeConflict" in merged["status"]["conflict"]["reason"]
    fleet.call(fleet.fleet.join_member("member-3"))  # its agent again: member-3 exports no spoof/web
    wait_until(lambda: clusters() == ["member-1"], timeout=15)
    merged = hub.get_namespaced_custom_object(*OURS, "clusterset", "clustersetservices", "spoof.web")
    assert merged["spec"]["type"] == "ClusterSetIP" and "conflict" not in merged["status"]


def test_status_lists_the_multi_cluster_services(fleet: FleetThread, tmp_path: Path) -> None:
    export(fleet, "member-1", "status", "api", port=8080)
    export(fleet, "member-2", "status", "api", port=9090)
    hub = custom(fleet.info("hub"))
    wait_until(lambda: (hub.get_namespaced_custom_object(*OURS, "clusterset", "clustersetservices", "status.api")
                        .get("status", {}).get("conflict", {}).get("reason")) == "PortConflict", timeout=15)
    kubeconfig = fleet.info("hub").kubeconfig
    out = subprocess.run([sys.executable, "-m", "clusterset.cli.main", "status", "--kubeconfig", str(kubeconfig),
                          "--context", "hub"], capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(x for x in out.splitlines() if "status/api" in x)
    assert line.split() == ["status/api", "ClusterSetIP", "member-1", "(0),", "member-2", "(0)", "PortConflict"]


def test_leave_takes_the_agent_s_read_access_to_the_merged_services(fleet: FleetThread) -> None:
    rbac = client.RbacAuthorizationV1Api(fleet.info("hub").api_client())

    def bindings(member: str) -> list[str]:
        return [b.metadata.name for b in rbac.list_namespaced_role_binding(
            "clusterset", label_selector=f"clusterset.io/member={member}").items]

    assert bindings("member-3") == ["clusterset-agent-member-3"]
    fleet.call(leave(fleet.fleet.admin_client("hub"), fleet.fleet.admin_client("member-3")))
    assert bindings("member-3") == []
    assert bindings("member-2") == ["clusterset-agent-member-2"]
