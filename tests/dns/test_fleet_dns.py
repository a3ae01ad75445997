"""`clusterset up`'s DNS servers: one per member, in fleet.json, back at once after a restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode

from clusterset.dns.ports import FLOOR, ephemeral_low
from clusterset.fleet.embedded import FleetOptions
from clusterset.testing import FleetThread
from tests.dns.util import ZONE
from tests.helpers import core, custom, wait_until

WEB = f"web.solo.svc.{ZONE}"


def dns_of(state: Path) -> dict[str, str]:
    clusters = json.loads((state / "fleet.json").read_text())["clusters"]
    return {c["name"]: c["dns"] for c in clusters if "dns" in c}


def ask(address: str, name: str, rdtype: str = "A", timeout: float = 2.0) -> dns.message.Message:
    host, _, port = address.rpartition(":")
    return dns.query.udp(dns.message.make_query(name, rdtype), host, port=int(port), timeout=timeout)


def rcode_of(address: str, name: str, rdtype: str = "A") -> str:
    return dns.rcode.to_text(ask(address, name, rdtype).rcode())


def import_web(fleet: FleetThread, member: str) -> None:
    """Exports Service solo/web from `member` (the namespace only there): the fleet imports it into that member."""
    info = fleet.info(member)
    core(info).create_namespace({"metadata": {"name": "solo"}})
    core(info).create_namespaced_service("solo", {"metadata": {"name": "web"},
                                                  "spec": {"ports": [{"name": "http", "port": 80}]}})
    custom(info).create_namespaced_custom_object("multicluster.x-k8s.io", "v1beta1", "solo", "serviceexports", {
        "apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport", "metadata": {"name": "web"}})


def imported_ips(fleet: FleetThread, member: str) -> list[str]:
    found = custom(fleet.info(member)).get_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1beta1", "solo", "serviceimports", "web")
    return list(found["spec"]["ips"])


def test_every_member_gets_its_own_dns_server(tmp_path: Path) -> None:
    state = tmp_path / "fleet"
    fleet = FleetThread(FleetOptions(state, members=2, heartbeat=0.5))
    try:
        servers = dns_of(state)
        assert sorted(servers) == ["member-1", "member-2"]
        assert all(a.startswith("127.0.0.1:") for a in servers.values()) and len(set(servers.values())) == 2
        for address in servers.values():
            answer = ask(address, f"dns-version.{ZONE}", "TXT")
            assert [r.to_text() for rrset in answer.answer for r in rrset] == ['"1.0.0"']
        import_web(fleet, "member-1")
        # each server reads its own member: member-2 has no such import
        wait_until(lambda: rcode_of(servers["member-1"], WEB) == "NOERROR", timeout=10)
        assert [r.to_text() for rrset in ask(servers["member-1"], WEB).answer for r in rrset] == imported_ips(
            fleet, "member-1")
        assert rcode_of(servers["member-2"], WEB) == "NXDOMAIN"

        # a member added at run time gets one, a removed one loses it
        fleet.add_cluster("member-3")
        wait_until(lambda: "member-3" in dns_of(state), timeout=30, message="member-3's DNS server")
        added = dns_of(state)["member-3"]
        assert rcode_of(added, f"dns-version.{ZONE}", "TXT") == "NOERROR"
        fleet.remove_cluster("member-3")
        wait_until(lambda: "member-3" not in dns_of(state), timeout=30)

        def closed() -> bool:
            try:
                ask(added, f"dns-version.{ZONE}", "TXT", timeout=0.2)
            except (dns.exception.Timeout, ConnectionError):
                return True
            return False

        wait_until(closed, timeout=10, message="member-3's DNS server to stop")
    finally:
        fleet.stop()


class Prober(threading.Thread):
    """Asks one name again and again (bounded), recording (time, rcode) of every answer."""

    def __init__(self, address: str, name: str) -> None:
        super().__init__(daemon=True)
        self.address, self.name = address, name
        self.seen: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 90
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.seen.append((time.monotonic(), rcode_of(self.address, self.name)))
            except (dns.exception.Timeout, OSError):
                time.sleep(0.01)


def test_after_a_restart_the_same_port_answers_at_once_and_never_nxdomain(tmp_path: Path) -> None:
    options = FleetOptions(tmp_path / "fleet", members=1, heartbeat=0.5)
    first = FleetThread(options)
    try:
        import_web(first, "member-1")
        address = dns_of(options.state_dir or tmp_path)["member-1"]
        if ephemeral_low() > FLOOR + 100:  # where no outgoing connection takes it before the restart
            assert int(address.rpartition(":")[2]) < ephemeral_low(), address
        wait_until(lambda: rcode_of(address, WEB) == "NOERROR", timeout=10)
        options.port = first.server.port
    finally:
        first.stop()
    prober = Prober(address, WEB)
    prober.start()
    second = FleetThread(options)
    try:
        assert dns_of(options.state_dir or tmp_path)["member-1"] == address  # the port it had, still free
        wait_until(lambda: any(rc == "NOERROR" for _, rc in prober.seen), timeout=10)
    finally:
        prober.stop.set()
        prober.join(10)
        second.stop()
    codes: list[Any] = [rc for _, rc in prober.seen]
    assert "NXDOMAIN" not in codes and set(codes) <= {"SERVFAIL", "NOERROR"}, codes
    first_answer = prober.seen[0][0]
    first_noerror = next(t for t, rc in prober.seen if rc == "NOERROR")
    assert first_noerror - first_answer < 1.0
