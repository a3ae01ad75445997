"""Multi-Cluster Services with every component its own process, as on real clusters: `clusterset hub` and one
`clusterset agent` per member, each with only its own credentials."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.helpers import custom, wait_until
from tests.inventory.test_cli_fleet import Plain, plain  # noqa: F401  (the `plain` fixture)

MCS = ("multicluster.x-k8s.io", "v1beta1")


def service_import(setup: Plain, member: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = custom(setup.server.info(member)).get_namespaced_custom_object(
            *MCS, "default", "serviceimports", name)
    except ApiException:
        return None
    return found


def test_an_export_reaches_the_other_member_through_separate_processes(plain: Plain) -> None:  # noqa: F811
    plain.start("hub", "hub", "--context", "hub", "--no-leader-elect")
    for member in ("m1", "m2"):
        assert plain.run("join", member, "--id", member).returncode == 0
        plain.start(f"agent-{member}", "agent", "--context", member, "--heartbeat", "1", "--endpoint-lease", "3")
    m1 = plain.server.info("m1")
    client.CoreV1Api(m1.api_client()).create_namespaced_service("default", {
        "metadata": {"name": "db"}, "spec": {"ports": [{"name": "pg", "port": 5432}]}})
    # the API servers run without controllers: the slice is the user's (as a selectorless Service's would be)
    client.DiscoveryV1Api(m1.api_client()).create_namespaced_endpoint_slice("default", {
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.1.0.7"], "conditions": {"ready": True}}]})
    custom(m1).create_namespaced_custom_object(*MCS, "default", "serviceexports", {
        "apiVersion": "/".join(MCS), "kind": "ServiceExport", "metadata": {"name": "db"}})

    imported = wait_until(lambda: (si := service_import(plain, "m2", "db")) and si.get("status", {}).get("clusters")
                          and si, timeout=30)
    assert imported["spec"]["type"] == "ClusterSetIP" and imported["spec"]["ports"] == [
        {"name": "pg", "protocol": "TCP", "port": 5432}]
    assert imported["status"]["clusters"] == [{"cluster": "m1"}]
    slices = client.DiscoveryV1Api(plain.server.info("m2").api_client()).list_namespaced_endpoint_slice(
        "default", label_selector="multicluster.kubernetes.io/service-name=db").items
    assert [(s.metadata.labels["multicluster.kubernetes.io/source-cluster"], s.endpoints[0].addresses)
            for s in slices] == [("m1", ["10.1.0.7"])]

    # the exporting agent stops: its Lease runs out and its endpoints leave m2; the import stays
    plain.procs[1].terminate()
    assert plain.procs[1].wait(20) == 0
    discovery = client.DiscoveryV1Api(plain.server.info("m2").api_client())
    wait_until(lambda: not discovery.list_namespaced_endpoint_slice(
        "default", label_selector="multicluster.kubernetes.io/service-name=db").items, timeout=15)
    assert service_import(plain, "m2", "db") is not None
