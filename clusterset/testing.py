"""Run the embedded API server, or a whole embedded fleet, in a background thread: for tests and notebooks.

The server gets its own event loop, so synchronous clients (the official `kubernetes` client,
kubectl subprocesses) and asyncio clients on another loop can all talk to it over real HTTPS.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from clusterset.apiserver import Apiserver

if TYPE_CHECKING:
    from clusterset.fleet.embedded import FleetOptions

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach one logical cluster."""

    name: str
    server: str
    token: str
    ca_file: str
    kubeconfig: Path

    def api_client(self) -> Any:
        """An official `kubernetes` client ApiClient for this cluster."""
        import kubernetes

        config = kubernetes.client.Configuration()
        config.host = self.server
        config.api_key = {"authorization": f"Bearer {self.token}"}
        config.ssl_ca_cert = self.ca_file
        return kubernetes.client.ApiClient(config)

    def async_api_client(self) -> Any:
        """A `kubernetes_asyncio` ApiClient; create it inside the loop that will use it."""
        import kubernetes_asyncio

        config = kubernetes_asyncio.client.Configuration()
        config.host = self.server
        config.api_key = {"BearerToken": self.token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        config.ssl_ca_cert = self.ca_file
        return kubernetes_asyncio.client.ApiClient(config)


class ServerThread:
    """An Apiserver on its own loop in a daemon thread; `call()` runs coroutines there."""

    _names = itertools.count(1)

    def __init__(self, state_dir: Path | None, **options: Any) -> None:
        self.state_dir = state_dir
        self.options = options
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="clusterset-apiserver", daemon=True)
        self._thread.start()
        try:
            self.server: Apiserver = self.call(self._start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            raise
        self._kubeconfig_dir = Path(self.server.tls.ca_cert).parent / "kubeconfigs"
        self._kubeconfig_dir.mkdir(exist_ok=True)

    async def _start(self) -> Apiserver:
        server = Apiserver(self.state_dir, **self.options)
        await server.start()
        return server

    async def _stop(self) -> None:
        await self.server.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def ca_file(self) -> str:
        return str(self.server.tls.ca_cert)

    def add_cluster(self, name: str | None = None, **options: Any) -> ClusterInfo:
        name = name or f"t{next(self._names)}"
        self.call(self.server.add_cluster(name, **options))
        return self.info(name)

    def info(self, name: str) -> ClusterInfo:
        path = self._kubeconfig_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(self.server.kubeconfig([name], name)))
        return ClusterInfo(name, self.server.cluster_url(name), self.server.cluster_token(name), self.ca_file, path)

    def remove_cluster(self, name: str) -> None:
        self.call(self.server.remove_cluster(name))

    def stop(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


class FleetThread(ServerThread):
    """An embedded fleet (`clusterset up` in-process: hub, members, hub controllers, agents) in a thread."""

    def __init__(self, options: FleetOptions) -> None:
        self.fleet_options = options
        super().__init__(options.state_dir)

    async def _start(self) -> Apiserver:
        from clusterset.fleet.embedded import EmbeddedFleet  # the fleet's layers load only when used

        self.fleet = EmbeddedFleet(self.fleet_options)
        try:
            await self.fleet.start()
        except BaseException:
            await self.fleet.stop()  # a fleet that fails to start leaves no server or task behind
            raise
        return self.fleet.server

    async def _stop(self) -> None:
        await self.fleet.stop()
