"""End to end: a Deployment's and a StatefulSet's Services exported from two members, resolved by name through
another member's `clusterset.local` DNS server (`clusterset up`'s, its address in fleet.json), over UDP and TCP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest
from kubernetes import client

from clusterset.fleet.embedded import FleetOptions
from clusterset.testing import FleetThread
from tests.helpers import apps, core, custom, wait_until

MCS = ("multicluster.x-k8s.io", "v1beta1")
ZONE = "svc.clusterset.local."


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    thread = FleetThread(FleetOptions(tmp_path_factory.mktemp("mcs-dns") / "fleet", members=3, heartbeat=0.5,
                                      grace=6.0, probe_timeout=2.0, endpoint_lease=3))
    try:
        yield thread
    finally:
        thread.stop()


def dns_port(fleet: FleetThread, member: str) -> int:
    assert fleet.state_dir is not None
    described = json.loads((fleet.state_dir / "fleet.json").read_text())
    address = next(c["dns"] for c in described["clusters"] if c["name"] == member)
    return int(address.rsplit(":", 1)[1])


def ask(port: int, name: str, rdtype: str = "A", tcp: bool = False) -> tuple[str, list[str]]:
    query = dns.message.make_query(name, rdtype)
    answer = (dns.query.tcp if tcp else dns.query.udp)(query, "127.0.0.1", port=port, timeout=3)
    records = sorted(item.to_text() for rrset in answer.answer for item in rrset)
    return dns.rcode.to_text(answer.rcode()), records


def workload(fleet: FleetThread, member: str, namespace: str, name: str, *, headless: bool) -> None:
    info = fleet.info(member)
    try:
        core(info).create_namespace({"metadata": {"name": namespace}})
    except client.ApiException as exc:
        assert exc.status == 409
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    spec: dict[str, Any] = {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}
    if headless:
        apps(info).create_namespaced_stateful_set(namespace, {"metadata": {"name": name},
                                                              "spec": {**spec, "serviceName": name}})
    else:
        apps(info).create_namespaced_deployment(namespace, {"metadata": {"name": name}, "spec": spec})
    service: dict[str, Any] = {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if headless:
        service["clusterIP"] = "None"
    core(info).create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": service})
    custom(info).create_namespaced_custom_object(*MCS, namespace, "serviceexports", {
        "apiVersion": "/".join(MCS), "kind": "ServiceExport", "metadata": {"name": name}})


def pod_ips(fleet: FleetThread, namespace: str, name: str) -> set[str]:
    ips = set()
    for member in ("member-1", "member-2"):
        for pod in core(fleet.info(member)).list_namespaced_pod(namespace, label_selector=f"app={name}").items:
            if pod.status.pod_ip and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                ips.add(pod.status.pod_ip)
    return ips


def test_a_clusterset_ip_service_resolves_in_every_member(fleet: FleetThread) -> None:
    for member in ("member-1", "member-2"):
        workload(fleet, member, "shop", "web", headless=False)
    core(fleet.info("member-3")).create_namespace({"metadata": {"name": "shop"}})
    name = f"web.shop.{ZONE}"

    def imported_ip(member: str) -> str | None:
        si = custom(fleet.info(member)).list_namespaced_custom_object(*MCS, "shop", "serviceimports")["items"]
        return (si[0]["spec"].get("ips") or [None])[0] if si else None

    for member in ("member-1", "member-2", "member-3"):
        ip = wait_until(lambda m=member: imported_ip(m), timeout=20)
        port = dns_port(fleet, member)
        # each member answers from its own view: its own ClusterSet IP
        assert wait_until(lambda p=port, want=[ip]: ask(p, name) == ("NOERROR", want), timeout=10)
        assert ask(port, name, tcp=True) == ("NOERROR", [ip])
        assert ask(port, f"_http._tcp.{name}", "SRV") == ("NOERROR", [f"0 100 80 {name}"])
    assert ask(dns_port(fleet, "member-3"), f"member-1.{name}")[0] == "NXDOMAIN"  # no <clusterid>.<svc> form


def test_a_headless_service_resolves_to_every_ready_pod_and_each_pod_by_name(fleet: FleetThread) -> None:
    for member in ("member-1", "member-2"):
        workload(fleet, member, "db", "pg", headless=True)
    core(fleet.info("member-3")).create_namespace({"metadata": {"name": "db"}})
    port = dns_port(fleet, "member-3")
    name = f"pg.db.{ZONE}"
    ips = wait_until(lambda: len(pod_ips(fleet, "db", "pg")) == 4 and pod_ips(fleet, "db", "pg"), timeout=30)
    assert wait_until(lambda: ask(port, name) == ("NOERROR", sorted(ips)), timeout=15)
    assert ask(port, name, tcp=True) == ("NOERROR", sorted(ips))
    for member in ("member-1", "member-2"):
        pod = core(fleet.info(member)).read_namespaced_pod("pg-0", "db")
        assert ask(port, f"pg-0.{member}.{name}") == ("NOERROR", [pod.status.pod_ip])
    _, srv = ask(port, f"_http._tcp.{name}", "SRV")
    assert sorted(r.split()[-1] for r in srv) == sorted(f"pg-{i}.{m}.{name}" for i in (0, 1)
                                                        for m in ("member-1", "member-2"))

    # a pod turning not ready leaves the answer in every member; back ready, it returns
    pods = core(fleet.info("member-2"))
    gone = pods.read_namespaced_pod("pg-1", "db").status.pod_ip
    pods.patch_namespaced_pod("pg-1", "db", {"metadata": {"annotations": {"clusterset.io/simulate-ready": "false"}}})
    for member in ("member-1", "member-2", "member-3"):
        assert wait_until(lambda m=member: ask(dns_port(fleet, m), name) == ("NOERROR", sorted(ips - {gone})),
                          timeout=15)
    pods.patch_namespaced_pod("pg-1", "db", {"metadata": {"annotations": {"clusterset.io/simulate-ready": "true"}}})
    assert wait_until(lambda: ask(port, name) == ("NOERROR", sorted(ips)), timeout=15)
