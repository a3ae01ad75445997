"""`Apiserver.serve_local`: the API as plain HTTP on a private Unix socket, authenticated as on the HTTPS port."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from clusterset.api.resources import CONFIG_MAPS
from clusterset.apiserver import Apiserver
from clusterset.client import ClientConfig, ClusterClient
from clusterset.client.errors import Unauthorized


async def test_the_unix_socket_serves_the_same_api_to_the_same_credentials(tmp_path: Path) -> None:
    server = Apiserver(None)
    await server.add_cluster("one", controllers=False)
    await server.add_cluster("two", controllers=False)
    await server.start()
    path = tmp_path / "api.sock"
    try:
        await server.serve_local(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session:
            def client(cluster: str, token: str | None) -> ClusterClient:
                return ClusterClient(ClientConfig(server=f"http://localhost/clusters/{cluster}", token=token), session)

            one = client("one", server.cluster_token("one"))
            await one.create(CONFIG_MAPS, {"metadata": {"name": "local", "namespace": "default"}})
            over_https = ClusterClient(ClientConfig(server=server.cluster_url("one"), ca_data=server.ca_pem.encode(),
                                                    token=server.cluster_token("one")))
            try:
                assert (await over_https.get(CONFIG_MAPS, "local", "default"))["metadata"]["name"] == "local"
            finally:
                await over_https.close()
            async with session.get("http://localhost/clusters/one/api/v1/namespaces/default/configmaps") as resp:
                assert resp.status == 401  # no token, no answer
            with pytest.raises(Unauthorized):  # another cluster's token
                await client("two", server.cluster_token("one")).list(CONFIG_MAPS, "default")
    finally:
        await server.stop()
    assert not path.exists()


async def test_connections_made_while_the_loop_is_busy_wait_in_the_backlog(tmp_path: Path) -> None:
    """An embedded fleet's members open thousands of connections at once while the loop is busy: they wait in the
    kernel's queue (up to net.core.somaxconn) instead of failing with EAGAIN, as they did at 1,500 of them."""
    wanted = 1_500
    limit = Path("/proc/sys/net/core/somaxconn")
    somaxconn = int(limit.read_text()) if limit.exists() else 0
    if somaxconn <= wanted:
        pytest.skip(f"net.core.somaxconn is {somaxconn} here: the kernel would cap the queue below {wanted}")
    server = Apiserver(None)
    await server.start()
    path = tmp_path / "api.sock"
    clients: list[socket.socket] = []
    try:
        await server.serve_local(path)
        for _ in range(wanted):  # the loop accepts none meanwhile: this test holds it
            sock = socket.socket(socket.AF_UNIX)
            sock.setblocking(False)
            clients.append(sock)
            sock.connect(str(path))  # BlockingIOError (EAGAIN) once the queue is full
    finally:
        for sock in clients:
            sock.close()
        await server.stop()
