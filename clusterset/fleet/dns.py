"""The embedded fleet's `clusterset.local` DNS servers: one per member, reading that member with the fleet's
admin client (its informers, shared with the member's agent), on the port it had last time when that port is
still free (scripts that dig it keep working)."""

from __future__ import annotations

import logging

from clusterset.client import ClusterClient
from clusterset.dns import DnsServer
from clusterset.runtime import Cluster

log = logging.getLogger(__name__)


class MemberDns:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.servers: dict[str, DnsServer] = {}

    async def start(self, name: str, client: ClusterClient | Cluster, port: int = 0) -> str:
        """(Re)starts the member's server, on `port` if it is free, else on any free port; returns its address."""
        old = self.servers.pop(name, None)
        if old is not None:
            port = port or old.port
            await old.stop()
        server = DnsServer(client)
        try:
            await server.start(self.host, port)
        except OSError as exc:
            if not port:
                raise
            log.warning("DNS port %s of cluster=%s is taken (%s): taking another", port, name, exc)
            server = DnsServer(client)
            await server.start(self.host, 0)
        self.servers[name] = server
        log.info("serving clusterset.local for cluster=%s on %s", name, server.address)
        return server.address

    def address(self, name: str) -> str | None:
        server = self.servers.get(name)
        return server.address if server is not None else None

    async def stop(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            await server.stop()

    async def close(self) -> None:
        for name in list(self.servers):
            await self.stop(name)
