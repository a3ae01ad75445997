"""The server's listening sockets (`http/protocol.listen`) queue connections the loop has not accepted yet."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import web

from clusterset.apiserver.http.protocol import listen


async def test_connections_made_while_the_loop_is_busy_wait_in_the_backlog(tmp_path: Path) -> None:
    """An embedded fleet's members open thousands of connections at once while the loop is busy: they wait in the
    kernel's queue (up to net.core.somaxconn) instead of failing with EAGAIN, as they did at 1,500 of them. A Unix
    socket shows it at once (a full queue refuses a connect; TCP would drop the SYN and retry a second later)."""
    wanted = 1_500
    limit = Path("/proc/sys/net/core/somaxconn")
    somaxconn = int(limit.read_text()) if limit.exists() else 0
    if somaxconn <= wanted:
        pytest.skip(f"net.core.somaxconn is {somaxconn} here: the kernel would cap the queue below {wanted}")

    async def ok(_request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text="ok")

    runner = web.ServerRunner(web.Server(ok), handle_signals=False)
    await runner.setup()
    path = tmp_path / "api.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    server = await listen(runner, sock, None)
    clients: list[socket.socket] = []
    try:
        for _ in range(wanted):  # the loop accepts none meanwhile: this test holds it
            client = socket.socket(socket.AF_UNIX)
            client.setblocking(False)
            clients.append(client)
            client.connect(str(path))  # BlockingIOError (EAGAIN) once the queue is full
    finally:
        for client in clients:
            client.close()
        server.close()
        await runner.cleanup()
        await server.wait_closed()
