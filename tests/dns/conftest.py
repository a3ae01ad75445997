"""Fixtures of the DNS tests: a member cluster with the MCS CRDs, its admin client, its DNS server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clusterset.client import ClientConfig, ClusterClient
from clusterset.dns import DnsServer
from clusterset.testing import ClusterInfo


@pytest.fixture
async def client(member: ClusterInfo) -> AsyncIterator[ClusterClient]:
    c = ClusterClient.from_config(ClientConfig(server=member.server, ca_file=member.ca_file, token=member.token,
                                               name=member.name))
    yield c
    await c.close()


@pytest.fixture
async def dns_server(client: ClusterClient) -> AsyncIterator[DnsServer]:
    server = DnsServer(client)
    await server.start("127.0.0.1", 0)
    await server.wait_synced(10)
    yield server
    await server.stop()
