"""A pod's view of an embedded cluster, for running clusterset's processes in their in-cluster mode.

In a pod, a process reaches its cluster at `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/` with the
ServiceAccount token and CA mounted at /var/run/secrets/kubernetes.io/serviceaccount. An embedded logical cluster
lives under `/clusters/<name>` of the server, so `ClusterService` stands for the `kubernetes` Service: a TLS
reverse proxy at the root of its own port (with the server's own certificate, so the mounted CA is the server's)
that forwards every request, streamed both ways, to the cluster's path. It records what each request asked and
what the cluster answered, so a test can name every request RBAC refused and the requests each identity makes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from clusterset.testing import ServerThread

HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}


@dataclass(frozen=True)
class Seen:
    """One request through the Service, with who made it (the token's subject) and the status answered."""

    user: str
    method: str
    path: str
    query: str
    status: int

    def __str__(self) -> str:
        return f"{self.user}: {self.method} {self.path}{'?' + self.query if self.query else ''} -> {self.status}"


def token_subject(authorization: str) -> str:
    """The `sub` of a bearer JWT (not verified: the cluster behind the proxy verifies it)."""
    try:
        payload = authorization.split()[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub", "?"))
    except (IndexError, ValueError):
        return "?"


class ClusterService:
    """`https://127.0.0.1:<port>/` in front of one logical cluster of `server`, in a thread of its own."""

    def __init__(self, server: ServerThread, cluster: str) -> None:
        self.upstream = server.server.cluster_url(cluster)
        self.tls = server.server.tls
        self.seen: list[Seen] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"service {cluster}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    async def _start(self) -> None:
        client_ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=client_ctx),
                                              auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # watches never end by themselves
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls.server_context())
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        user = token_subject(request.headers.get("Authorization", ""))
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         data=body or None, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=None)) as upstream:
            self.seen.append(Seen(user, request.method, request.rel_url.path, request.rel_url.query_string,
                                  upstream.status))
            out = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
            await out.prepare(request)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                async for chunk in upstream.content.iter_any():
                    await out.write(chunk)
                await out.write_eof()
            return out

    def refused(self) -> list[Seen]:
        """Requests the cluster refused with 401 or 403."""
        return [s for s in self.seen if s.status in (401, 403)]

    def stop(self) -> None:
        async def stop() -> None:
            await self._session.close()  # ends the watches being forwarded
            await self._runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def pod_environment(root: Path, service: ClusterService, token: str, ca_file: str, namespace: str
                    ) -> dict[str, str]:
    """The environment of a process in a pod of `namespace` with `token` mounted: the service variables, the
    ServiceAccount files (under `root`, where CLUSTERSET_SERVICEACCOUNT_DIR points), no kubeconfig anywhere."""
    mount = root / "serviceaccount"
    mount.mkdir(parents=True, exist_ok=True)
    (mount / "token").write_text(token)
    (mount / "ca.crt").write_bytes(Path(ca_file).read_bytes())
    (mount / "namespace").write_text(namespace)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}
    env.update(HOME=str(root), KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(service.port),
               CLUSTERSET_SERVICEACCOUNT_DIR=str(mount))
    return env


def container_args(manifest: list[dict[str, Any]], deployment: str) -> list[str]:
    """The args of the first container of a Deployment in rendered manifests."""
    found = [d for d in manifest if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment]
    assert found, f"no Deployment {deployment} in the manifests"
    return list(found[0]["spec"]["template"]["spec"]["containers"][0]["args"])
