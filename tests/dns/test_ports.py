"""The port a DNS server started on "any port" gets: below the ephemeral range, so that a restart finds it free."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from clusterset.client import ClusterClient
from clusterset.dns import DnsServer
from clusterset.dns import server as dns_server_module
from clusterset.dns.ports import DEFAULT_EPHEMERAL_LOW, FLOOR, LastingPorts, ephemeral_low
from tests.dns.util import ZONE, query, rcode


def test_candidates_are_neighbours_below_the_ephemeral_range_and_wrap_at_its_start() -> None:
    ports = LastingPorts(low=20000, high=20010)
    assert 20000 <= next(ports.candidates(1)) <= 20009  # a random place the first time
    ports._next = 20002
    assert list(ports.candidates(3)) == [20002, 20003, 20004]
    assert next(ports.candidates(1)) == 20005  # on from the last one handed out
    ports._next = 20008
    assert list(ports.candidates(2)) == [20008, 20009]
    after = next(ports.candidates(1))
    assert 20000 <= after <= 20009  # past the top: a new random place, never into the ephemeral range
    assert list(LastingPorts(low=20000, high=20000).candidates(5)) == []  # no room below the range


def test_the_ephemeral_range_is_read_from_the_system(tmp_path: Path) -> None:
    custom = tmp_path / "range"
    custom.write_text("40000\t60999\n")
    assert ephemeral_low(custom) == 40000
    assert ephemeral_low(tmp_path / "missing") == DEFAULT_EPHEMERAL_LOW
    custom.write_text("garbage")
    assert ephemeral_low(custom) == DEFAULT_EPHEMERAL_LOW


async def test_any_port_is_below_the_ephemeral_range_and_a_taken_one_is_skipped(client: ClusterClient) -> None:
    if ephemeral_low() <= FLOOR + 100:
        pytest.skip(f"the ephemeral range starts at {ephemeral_low()}: no room below it for lasting ports")
    lasting = dns_server_module._LASTING
    # a port taken for UDP only, where the next server would look first: both protocols must be free
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in LastingPorts().candidates(200):
        try:
            taken.bind(("127.0.0.1", port))
            break
        except OSError:
            continue
    taken_port = taken.getsockname()[1]
    lasting._next = taken_port
    server = DnsServer(client)
    try:
        await server.start("127.0.0.1", 0)
        assert FLOOR <= server.port < ephemeral_low() and server.port != taken_port, server.port
        for tcp in (False, True):  # one port, both protocols
            assert rcode(await query(server.port, f"dns-version.{ZONE}", "TXT", tcp=tcp)) == "NOERROR"
    finally:
        await server.stop()
        taken.close()
