"""Cluster providers: where the set of clusters comes from, and how it changes at run time.

- StaticProvider: a fixed set (clients, or contexts of a kubeconfig), engaged once.
- KubeconfigProvider: one cluster per context of a kubeconfig file, following the file as it is
  rewritten (the embedded fleet writes one context per logical cluster, atomically). It polls the
  file's identity (mtime, size, inode) about once a second: a stat costs microseconds, and an inotify
  dependency is not worth it for a one-second reaction time.
- ClusterProfileProvider: one cluster per ClusterProfile on a hub whose `ControlPlaneHealthy` condition
  is True, reached through the profile's access providers (`clusterset.runtime.access.client_for`),
  like multicluster-runtime's cluster-inventory-api provider. Unhealthy or deleted profiles are
  disengaged; a changed access section re-engages with a new client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from clusterset.api.inventory import CONTROL_PLANE_HEALTHY
from clusterset.api.objects import condition_true
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.client import ClientConfig, ClusterClient, load_kubeconfig
from clusterset.client.kubeconfig import parse_kubeconfig
from clusterset.runtime import access
from clusterset.runtime.cache import Obj, ObjectKey, key_of
from clusterset.runtime.informer import Event, Informer
from clusterset.runtime.logs import bind
from clusterset.runtime.manager import ClusterSink
from clusterset.runtime.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

ContextFilter = Collection[str] | Callable[[str], bool] | None


def _wanted(selector: ContextFilter, name: str) -> bool:
    if selector is None:
        return True
    if callable(selector):
        return bool(selector(name))
    return name in selector


class StaticProvider:
    """Engages a fixed set of clusters: `clients` (name → ClusterClient, owned by the caller) and/or the
    contexts of `kubeconfig` (all, or those `contexts` selects; clients owned by the manager)."""

    def __init__(self, clients: Mapping[str, ClusterClient] | None = None, *, kubeconfig: str | Path | None = None,
                 contexts: ContextFilter = None) -> None:
        self.clients = dict(clients or {})
        self.kubeconfig = kubeconfig
        self.contexts = contexts

    async def run(self, sink: ClusterSink) -> None:
        for name, client in self.clients.items():
            await sink.add_cluster(name, client, owned=False)
        if self.kubeconfig is not None:
            path = Path(self.kubeconfig)
            config = await asyncio.to_thread(read_kubeconfig, path)
            for name, _ in _contexts(config):
                if _wanted(self.contexts, name):
                    await sink.add_cluster(name, await client_for_context(path, config, name), owned=True)


class KubeconfigProvider:
    """One cluster per context of the kubeconfig at `path`, engaged and disengaged as contexts appear,
    change or disappear. A file that does not parse (a non-atomic writer caught mid-write) is ignored
    until it changes again; a missing file means no clusters."""

    def __init__(self, path: str | Path, *, contexts: ContextFilter = None, poll_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.contexts = contexts
        self.poll_interval = poll_interval
        self.engaged: dict[str, str] = {}  # context → fingerprint of its cluster, user and context entries
        self.synced = asyncio.Event()  # set after the first pass over the file
        self._log = bind(log, kubeconfig=str(self.path))

    async def run(self, sink: ClusterSink) -> None:
        self.engaged = {}  # a restarted manager starts with no clusters
        seen: tuple[int, int, int] | None = None
        failed: dict[str, str] = {}  # context → fingerprint whose client could not be built
        while True:
            identity = _file_identity(self.path)
            if identity != seen:
                seen = identity
                try:
                    config = await asyncio.to_thread(read_kubeconfig, self.path) if identity else {}
                except (OSError, ValueError) as exc:
                    self._log.warning("cannot read kubeconfig; waiting for it to change", error=repr(exc))
                else:
                    await self._sync(sink, config, failed)
                self.synced.set()
            await asyncio.sleep(self.poll_interval)

    async def _sync(self, sink: ClusterSink, config: dict[str, Any], failed: dict[str, str]) -> None:
        want = {name: fp for name, fp in _contexts(config) if _wanted(self.contexts, name)}
        for name in [n for n in self.engaged if n not in want]:
            del self.engaged[name]
            await sink.remove_cluster(name)
        for name, fingerprint in want.items():
            if self.engaged.get(name) == fingerprint or failed.get(name) == fingerprint:
                continue
            try:
                client = await client_for_context(self.path, config, name)
            except Exception as exc:
                self._log.warning("cannot build a client for the context", context=name, error=repr(exc))
                failed[name] = fingerprint
                if name in self.engaged:
                    del self.engaged[name]
                    await sink.remove_cluster(name)
                continue
            failed.pop(name, None)
            self.engaged[name] = fingerprint
            await sink.add_cluster(name, client, owned=True)


AccessFunction = Callable[[Obj, str | None], "ClusterClient | Awaitable[ClusterClient]"]


class ProfileClusters:
    """The clusters of ClusterProfiles, engaged into a sink while wanted and healthy: built through the profile's
    access providers (`client_for(profile, provider_file)`, default `clusterset.runtime.access.client_for`),
    disengaged when unhealthy, deleted or unwanted, and re-engaged with a new client when the access data changes.
    Shared by the providers that engage profiles (all of them, or those a placement decided)."""

    def __init__(self, provider_file: str | None, client_for: AccessFunction | None) -> None:
        self.provider_file = provider_file
        self.client_for = client_for
        self.engaged: dict[ObjectKey, tuple[str, str]] = {}  # profile → (cluster name, access fingerprint)

    async def sync(self, sink: ClusterSink, key: ObjectKey, profile: Obj | None, name: str) -> None:
        """Engages `profile` (the profile at `key`, None if gone or not wanted) under `name` if it is healthy,
        else disengages what `key` had."""
        current = self.engaged.get(key)
        if profile is None or not healthy(profile):
            if current is not None:
                del self.engaged[key]
                await sink.remove_cluster(current[0])
            return
        fingerprint = access_fingerprint(profile)
        if current == (name, fingerprint):
            return
        client = await self._client(profile)
        if current is not None:
            await sink.remove_cluster(current[0])
        self.engaged[key] = (name, fingerprint)
        await sink.add_cluster(name, client, owned=True)

    async def _client(self, profile: Obj) -> ClusterClient:
        build: AccessFunction = self.client_for or access.client_for
        made = build(profile, self.provider_file)
        if inspect.isawaitable(made):
            made = await made
        assert isinstance(made, ClusterClient)
        return made


async def process(queue: WorkQueue[ObjectKey], handle: Callable[[ObjectKey], Awaitable[None]],
                  warn: Callable[[ObjectKey, Exception, int], None]) -> None:
    """A provider's loop: each queued key handled once at a time, failures retried with the queue's backoff."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:  # pragma: no cover - the queue is shut down only by its owner, after this loop
            return
        try:
            await handle(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            warn(key, exc, queue.num_requeues(key))
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)


class ClusterProfileProvider:
    """Engages the cluster of every healthy ClusterProfile on the hub `hub` (in `namespace`, or all).

    `cluster_name(profile)` names the engaged cluster (default: the profile's name when watching one
    namespace, `<namespace>/<name>` when watching all, so two inventories cannot collide). `client_for(profile,
    provider_file)` builds the client (default: `clusterset.runtime.access.client_for`). A profile whose
    client cannot be built is retried with backoff.
    """

    def __init__(
        self,
        hub: ClusterClient,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        provider_file: str | None = None,
        cluster_name: Callable[[Obj], str] | None = None,
        client_for: AccessFunction | None = None,
    ) -> None:
        self.hub = hub
        self.namespace = namespace
        self.label_selector = label_selector
        self.provider_file = provider_file
        self.cluster_name = cluster_name or (
            (lambda p: str(p["metadata"]["name"])) if namespace
            else (lambda p: f'{p["metadata"].get("namespace", "")}/{p["metadata"]["name"]}'))
        self.client_for = client_for
        self.clusters = ProfileClusters(provider_file, client_for)
        self._log = bind(log, hub=getattr(hub, "server", None))

    async def run(self, sink: ClusterSink) -> None:
        self.clusters = ProfileClusters(self.provider_file, self.client_for)  # a restarted manager has none
        informer = Informer(self.hub, CLUSTER_PROFILES, namespace=self.namespace, label_selector=self.label_selector,
                            cluster="hub")
        queue: WorkQueue[ObjectKey] = WorkQueue()

        def on_event(event: Event) -> None:
            queue.add(key_of(event.obj))

        async def handle(key: ObjectKey) -> None:
            profile = informer.cache.get(key)
            await self.clusters.sync(sink, key, profile, self.cluster_name(profile) if profile else "")

        def warn(key: ObjectKey, exc: Exception, retries: int) -> None:
            self._log.warning("cannot engage the cluster of a ClusterProfile; retrying", profile=str(key),
                              error=repr(exc), retries=retries)

        informer.add_handler(on_event)
        informer.start()
        try:
            await process(queue, handle, warn)
        finally:
            queue.shut_down()
            await informer.stop()


def healthy(profile: Obj) -> bool:
    """Engage only live profiles whose control plane is reported healthy (what consumers gate on)."""
    if (profile.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return condition_true((profile.get("status") or {}).get("conditions"), CONTROL_PLANE_HEALTHY)


def access_fingerprint(profile: Obj) -> str:
    """What a client is built from: a change here means a new client."""
    status = profile.get("status") or {}
    return json.dumps([status.get("accessProviders"), status.get("credentialProviders")], sort_keys=True)


# ---------------------------------------------------------------------- kubeconfig files
def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_kubeconfig(path: Path) -> dict[str, Any]:
    """The parsed file (JSON, as the embedded fleet writes it, decoded by orjson: a thousand contexts in
    milliseconds; anything else as bounded YAML)."""
    return parse_kubeconfig(path.read_bytes(), str(path))


def _named(config: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    out = {}
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name"):
            out[str(entry["name"])] = entry
    return out


def _contexts(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(context name, fingerprint of everything that reaches the cluster) for each context."""
    clusters, users = _named(config, "clusters"), _named(config, "users")
    out = []
    for name, entry in _named(config, "contexts").items():
        body = entry.get("context") or {}
        parts = [body, clusters.get(str(body.get("cluster"))), users.get(str(body.get("user")))]
        out.append((name, json.dumps(parts, sort_keys=True, default=str)))
    return out


async def client_for_context(path: Path, config: dict[str, Any], context: str) -> ClusterClient:
    """A client for one context. Self-contained contexts (inline server, CA, token or client certificate,
    as the embedded fleet writes) are built from the parsed file; anything else (file references, exec
    plugins) goes through the client's kubeconfig loader."""
    inline = _inline_config(config, context)
    if inline is not None:
        return ClusterClient.from_config(inline)
    return ClusterClient.from_config(await asyncio.to_thread(load_kubeconfig, str(path), context))


_INLINE_CLUSTER = {"server", "certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name",
                   "proxy-url", "disable-compression", "extensions"}
_INLINE_USER = {"token", "client-certificate-data", "client-key-data", "username", "password"}


def _inline_config(config: dict[str, Any], context: str) -> ClientConfig | None:
    entry = _named(config, "contexts").get(context)
    if entry is None:
        return None
    body = entry.get("context") or {}
    cluster_entry = _named(config, "clusters").get(str(body.get("cluster")))
    user_entry = _named(config, "users").get(str(body.get("user")))
    cluster = (cluster_entry or {}).get("cluster") or {}
    user = (user_entry or {}).get("user") or {}
    if not cluster.get("server") or set(cluster) - _INLINE_CLUSTER or set(user) - _INLINE_USER:
        return None
    with contextlib.suppress(ValueError):
        return ClientConfig(
            server=str(cluster["server"]).rstrip("/"),
            name=context,
            namespace=str(body.get("namespace") or "default"),
            ca_data=_b64(cluster.get("certificate-authority-data")),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            tls_server_name=cluster.get("tls-server-name"),
            proxy=cluster.get("proxy-url"),
            disable_compression=bool(cluster.get("disable-compression")),
            token=user.get("token") or None,
            client_cert_data=_b64(user.get("client-certificate-data")),
            client_key_data=_b64(user.get("client-key-data")),
            username=user.get("username"),
            password=user.get("password"),
        )
    return None


def _b64(value: Any) -> bytes | None:
    return base64.b64decode(value, validate=True) if value else None
