"""The embedded API server: many logical clusters under `/clusters/<name>`, one process, SQLite.

The composition root: `Apiserver` creates the logical clusters (seeding each registry with the built-in
kinds), composes the REST pipeline with the admission plugins, the controller manager with the core and
switchable controllers, and the HTTP layer with what it serves from; it loads state and serves HTTPS.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from clusterset.api.times import now_rfc3339
from clusterset.apiserver.admission import default_plugins
from clusterset.apiserver.auth import policy
from clusterset.apiserver.auth.authn import Authenticator
from clusterset.apiserver.auth.escalation import RbacEscalation
from clusterset.apiserver.auth.tokens import TokenIssuer
from clusterset.apiserver.auth.users import LOOPBACK
from clusterset.apiserver.born import SYSTEM_NAMESPACES, BornNodes, BornObjects, kubernetes_service_ip
from clusterset.apiserver.controllers import cluster_controllers as default_cluster_controllers
from clusterset.apiserver.controllers.core import apiservices, core_controllers
from clusterset.apiserver.controllers.core.crds import ClusterCRDs
from clusterset.apiserver.controllers.manager import Controller, ControllerManager
from clusterset.apiserver.http.app import make_server
from clusterset.apiserver.http.protocol import listen
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.http.tls import TLSFiles, ensure_tls
from clusterset.apiserver.inprocess import InProcess
from clusterset.apiserver.kinds.apiextensions import stored_crds_served
from clusterset.apiserver.kinds.builtins import builtin_resources
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.validation import dns1123_label_problems
from clusterset.apiserver.registry.admission import Admission
from clusterset.apiserver.registry.cluster import Cluster, cidrs_for
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.registry import Registry
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.sqlite import Database
from clusterset.apiserver.storage.statelock import StateDirLock
from clusterset.apiserver.storage.store import DEFAULT_HISTORY, Born, ClusterStore

log = logging.getLogger(__name__)


class CannotListen(Exception):
    """The server's address cannot be bound (in use, not permitted); the message names it."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        self.host, self.port = host, port
        super().__init__(f"cannot listen on {host}:{port}: {error.strerror or error}")


class Apiserver:
    """Hosts logical clusters; `start()` serves them over HTTPS (or HTTP with tls=False)."""

    def __init__(
        self,
        state_dir: Path | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        history_size: int = DEFAULT_HISTORY,
        bookmark_interval: float = 60.0,
        durable: bool = False,
        max_body: int = 3 * 1024 * 1024,
        cluster_controllers: list[Controller] | None = None,
        owner: str | None = None,
    ) -> None:
        """`cluster_controllers`: what runs in clusters whose `controllers` setting is on (default: simulated
        nodes, scheduler and kubelets, the workload and endpoint controllers). `owner`: how the state
        directory's lock names this process to another that wants it (default: its command line)."""
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.use_tls = tls
        self.history_size = history_size
        self.bookmark_interval = bookmark_interval
        self.max_body = max_body
        self._tmp: Any = None
        self._lock: StateDirLock | None = None
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._lock = StateDirLock.acquire(state_dir, owner)  # before anything in it is read or written
            self._db = Database(state_dir / "apiserver.db", durable=durable)
            cert_dir = state_dir / "pki"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="clusterset-pki-")
            self._db = Database(None)
            cert_dir = Path(self._tmp.name)
        self.tls: TLSFiles = ensure_tls(cert_dir)
        self.ca_pem = self.tls.ca_pem()
        self.admin_token = self._load_admin_token()
        self._clusters: dict[str, Cluster] = {}
        self._by_token: dict[str, Cluster] = {}
        # ServiceAccount tokens: signed with <pki>/sa.key (made on first use; random for in-memory servers)
        self._tokens = TokenIssuer(cert_dir / "sa.key")
        self._authenticator = Authenticator(self._clusters, self._by_token, self._tokens)
        # the admission plugins, then RBAC's escalation check (it needs the authorizer, so it lives in auth/)
        self._rest = Rest(Admission([*default_plugins(), RbacEscalation()]))
        self._controllers = ControllerManager(
            self._clusters, self._rest, core_controllers(self.ca_pem),
            default_cluster_controllers() if cluster_controllers is None else cluster_controllers)
        self._runner: web.ServerRunner | None = None
        self._listener: asyncio.Server | None = None
        self._services: Services | None = None  # what HTTP and in-process requests are served from, once started
        self._next_index = 0
        self._born = BornObjects()  # what new clusters are born with, learnt from the first
        self._born_nodes = BornNodes()
        self._running = False
        self._kubeconfig_flush: asyncio.Future[None] | None = None
        self._kubeconfig_current: str | None = None
        # called with the name of each cluster added (removed) while serving (the embedded fleet joins it, or
        # stops its agent)
        self.cluster_added: list[Callable[[str], None]] = []
        self.cluster_removed: list[Callable[[str], None]] = []
        # the namespace a context of the kubeconfig sets, by cluster (the embedded fleet: the hub's ClusterSet's)
        self.context_namespaces: dict[str, str] = {}
        self._load()

    # ---------------------------------------------------------------- state
    def _load_admin_token(self) -> str:
        if self.state_dir is None:
            return secrets.token_urlsafe(32)
        path = self.state_dir / "admin.token"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _load(self) -> None:
        # Loading allocates millions of long-lived containers; the cyclic GC would rescan them over and
        # over (three quarters of a restart's time). Stored objects are plain JSON trees: no cycles to find,
        # so once loaded they leave the collector's generations for good (refcounting still frees them).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._load_clusters()
        finally:
            gc.freeze()
            if enabled:
                gc.enable()

    def _load_clusters(self) -> None:
        templates = {id_: Born.decode(resource, data) for id_, resource, data in self._db.born_templates()}
        for name, rv, data in self._db.clusters():
            settings = orjson.loads(data)
            cluster = self._make_cluster(name, settings)
            cluster.store.load(rv, templates)
            for served in stored_crds_served(cluster.store):
                cluster.registry.add(served)
            self._next_index = max(self._next_index, int(settings["index"]) + 1)

    def _make_cluster(self, name: str, settings: dict[str, Any]) -> Cluster:
        builtins = builtin_resources()
        store = ClusterStore(name, self._db, self.history_size, typed={served.key for served in builtins})
        cluster = Cluster(
            name=name, token=str(settings["token"]), index=int(settings["index"]), store=store,
            registry=Registry(builtins), settings=settings,
        )
        self._clusters[name] = cluster
        self._by_token[cluster.token] = cluster
        return cluster

    async def add_cluster(self, name: str, *, dual_stack: bool = False, controllers: bool = True, nodes: int = 3,
                          pod_ready_delay: float = 0.5, crds: ClusterCRDs | None = None) -> None:
        """Creates a logical cluster with its system namespaces and `default/kubernetes` Service, and `crds`
        installed and Established (one `ClusterCRDs` for every cluster that has them: it is validated once)."""
        problems = _cluster_name_problems(name)
        if problems:
            raise errors.bad_request(f'invalid cluster name "{name}": {problems}')
        if crds is not None and not crds.prepared:  # before anything is stored: CRDs it refuses leave no cluster
            await crds.prepare(self._rest, self._scratch_ctx(crds.field_manager))
        if name in self._clusters:
            raise errors.StatusError(
                409, "AlreadyExists", f'clusters "{name}" already exists', {"name": name, "kind": "clusters"}
            )
        index = self._next_index
        self._next_index += 1
        settings: dict[str, Any] = {
            "index": index,
            "token": secrets.token_urlsafe(32),
            "dualStack": dual_stack,
            "controllers": controllers,
            "nodes": nodes,
            "podReadyDelay": pod_ready_delay,
            **cidrs_for(index),
        }
        self._db.put_cluster(name, 0, orjson.dumps(settings))
        cluster = self._make_cluster(name, settings)
        self._controllers.attach(cluster, switchable=False, born=True)
        await self._bootstrap(cluster, crds)
        if controllers and self._running:  # after the wait: the add does not wait for nodes and the like
            self._controllers.attach(cluster, switchable=True)
        if self._running:
            for callback in self.cluster_added:
                callback(name)

    def _scratch_ctx(self, manager: str) -> Ctx:
        """A request to create CRDs in a cluster that is not stored or served, such as a new one (`ClusterCRDs`
        validate their CRDs in it, as dry runs)."""
        cluster = Cluster(name="", token="", index=-1, store=ClusterStore("", self._db, 0),
                          registry=Registry(builtin_resources()))
        return self.ctx(cluster, "apiextensions.k8s.io", "v1", "customresourcedefinitions", None, manager=manager)

    async def _bootstrap(self, cluster: Cluster, crds: ClusterCRDs | None = None) -> None:
        now = now_rfc3339()
        policy.install(cluster.store, now, new=True)  # the default RBAC policy, committed with the namespaces
        apiservices.install(cluster, now)
        if crds is not None:
            crds.install(cluster, now)
            apiservices.install_crd_apiservices(cluster, crds.served_versions(), now)
        if not self._born.install(cluster, now):
            await self._born_through_api(cluster)
        await self._born_nodes.install(self._rest, cluster, now)

    async def _born_through_api(self, cluster: Cluster) -> None:
        """The first cluster of a shape: its system namespaces and `default/kubernetes` made through the API, as
        kube-apiserver makes them, and what that wrote learnt as the shape's template."""
        ns_ctx = self.ctx(cluster, "", "v1", "namespaces", None, manager="kube-apiserver")
        await asyncio.gather(*(self._rest.create(ns_ctx, {"metadata": {"name": ns}}) for ns in SYSTEM_NAMESPACES))
        svc_ctx = self.ctx(cluster, "", "v1", "services", "default", manager="kube-apiserver")
        await self._rest.create(
            svc_ctx,
            {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": kubernetes_service_ip(cluster),
                    "sessionAffinity": "None",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                },
            },
        )
        await self._controllers.wait_idle(cluster.name)  # its namespaces have their ServiceAccount and CA
        self._born.learn(cluster)

    async def remove_cluster(self, name: str) -> None:
        cluster = self._clusters.pop(name, None)
        if cluster is None:
            raise errors.StatusError(
                404, "NotFound", f'clusters "{name}" not found', {"name": name, "kind": "clusters"}
            )
        self._by_token.pop(cluster.token, None)
        self._controllers.detach(cluster)
        if self._running:  # before its watches end: a watcher told now lets go instead of retrying
            for callback in self.cluster_removed:
                callback(name)
        cluster.store.close_watchers()
        self._db.delete_cluster(name)
        await self._db.committed()

    def ctx(
        self, cluster: Cluster, group: str, version: str, plural: str, namespace: str | None, manager: str = ""
    ) -> Ctx:
        served = cluster.registry.get(group, version, plural)
        if served is None:
            raise errors.path_not_found()
        return Ctx(cluster, served, namespace, user=LOOPBACK, manager=manager)

    # ---------------------------------------------------------------- what tests, benchmarks and the fleet read
    def cluster_names(self) -> list[str]:
        return list(self._clusters)

    def cluster_token(self, name: str) -> str:
        """The cluster's admin token (system:masters), as in the kubeconfig."""
        return self._clusters[name].token

    def cluster_settings(self, name: str) -> dict[str, Any]:
        """The cluster's stored settings (index, nodes, podReadyDelay, CIDRs, controllers, ...): a copy."""
        return {k: v for k, v in self._clusters[name].settings.items() if k != "token"}

    async def configure_cluster(self, name: str, **settings: Any) -> None:
        """Changes settings of a cluster (e.g. `endpointSliceBatchPeriod`, read by its controllers on each use),
        durably; its identity (`index`, `token`) cannot change."""
        fixed = {"index", "token"} & settings.keys()
        if fixed:
            raise ValueError(f"cluster settings {sorted(fixed)} cannot change")
        cluster = self._clusters[name]
        cluster.settings.update(settings)
        self._db.put_cluster(name, cluster.store.rv, orjson.dumps(cluster.settings))
        await self._db.committed()

    def resource_version(self, name: str) -> int:
        """The cluster's current resourceVersion (its last write)."""
        return self._clusters[name].store.rv

    def stored_bytes(self, name: str) -> int:
        """The JSON size of every object the cluster stores."""
        store = self._clusters[name].store
        return sum(len(e.raw) for r in store.resources() for e in store.entries(r))

    def reconcile_count(self, controller: str) -> int:
        """How many reconciles a built-in controller has run, over every cluster."""
        return self._controllers.reconcile_count(controller)

    def start_controllers(self, name: str) -> None:
        """Starts the cluster's switchable controllers now, whatever its setting (they reconcile what exists,
        as after a restart): a test hook."""
        self._controllers.attach(self._clusters[name], switchable=True)

    async def wait_idle(self) -> None:
        """Returns once the built-in controllers have nothing queued, running or scheduled (tests settle on it)."""
        await self._controllers.wait_idle(timers=True)

    def set_token_clock(self, clock: Callable[[], float] | None) -> None:
        """What "now" is when ServiceAccount tokens are minted and checked (None: the real time): a test hook."""
        self._tokens.clock = clock or time.time

    def mint_token(self, cluster: str, namespace: str, service_account: str, seconds: int) -> tuple[str, int]:
        """A ServiceAccount token of any lifetime (TokenRequest's floor is 10 minutes): a test hook."""
        entry = self._clusters[cluster].store.get("/serviceaccounts", namespace, service_account)
        if entry is None:
            raise KeyError(f"{namespace}/{service_account}")
        return self._tokens.mint(cluster, entry.obj, expiration_seconds=seconds)

    # ---------------------------------------------------------------- serving
    @property
    def url(self) -> str:
        scheme = "https" if self.use_tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def cluster_url(self, name: str) -> str:
        return f"{self.url}/clusters/{name}"

    async def start(self) -> None:
        self._running = True
        self._controllers.start()
        now = now_rfc3339()
        installed = 0
        for cluster in self._clusters.values():
            installed += policy.install(cluster.store, now)  # clusters made before the RBAC defaults get them
            self._controllers.attach(cluster, switchable=cluster.settings.get("controllers", True))
        if installed:
            await self._db.committed()
        self._services = Services(
            clusters=self._clusters, rest=self._rest, authenticator=self._authenticator, tokens=self._tokens,
            admin=self, admin_token=self.admin_token, max_body=self.max_body,
            bookmark_interval=self.bookmark_interval, db=self._db)
        http = make_server(self._services)
        self._runner = web.ServerRunner(http, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        ssl_ctx = self.tls.server_context() if self.use_tls else None
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise CannotListen(self.host, self.port, exc) from exc
        self.port = sock.getsockname()[1]
        self._listener = await listen(self._runner, sock, ssl_ctx)
        if self.state_dir is not None:
            (self.state_dir / "server.json").write_text(
                orjson.dumps({"url": self.url, "ca": str(self.tls.ca_cert)}, option=orjson.OPT_INDENT_2).decode()
            )

    def in_process(self, name: str) -> InProcess:
        """Cluster `name`'s resource requests answered in this process, without HTTP, after `start`: for the clients
        of an embedded fleet, authenticated and authorized by their tokens as on the HTTPS port (inprocess.py)."""
        if self._services is None:
            raise RuntimeError("in_process() needs a started server")
        return InProcess(self._services, name)

    async def stop(self) -> None:
        self._running = False
        gc.unfreeze()  # what the load froze may be garbage now (a process running many servers: tests)
        await self._controllers.stop()
        for cluster in self._clusters.values():
            cluster.store.close_watchers()
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        self._db.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._lock is not None:
            self._lock.release()

    # ---------------------------------------------------------------- kubeconfig
    def kubeconfig(self, names: list[str] | None = None, current: str | None = None) -> dict[str, Any]:
        names = names if names is not None else list(self._clusters)
        ca = base64.b64encode(self.ca_pem.encode()).decode()
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [],
            "users": [],
            "contexts": [],
            "current-context": current or (names[0] if names else ""),
        }
        for name in names:
            cluster = self._clusters[name]
            server: dict[str, Any] = {"server": self.cluster_url(name)}
            if self.use_tls:
                server["certificate-authority-data"] = ca
            config["clusters"].append({"name": name, "cluster": server})
            config["users"].append({"name": name, "user": {"token": cluster.token}})
            context = {"cluster": name, "user": name}
            if name in self.context_namespaces:
                context["namespace"] = self.context_namespaces[name]
            config["contexts"].append({"name": name, "context": context})
        return config

    async def refresh_kubeconfig(self) -> None:
        """Keeps `<state-dir>/kubeconfig` listing every cluster; concurrent callers share one write."""
        if self.state_dir is None:
            return
        loop = asyncio.get_running_loop()
        if self._kubeconfig_flush is None:
            self._kubeconfig_flush = loop.create_future()
            loop.call_later(0.02, self._flush_kubeconfig)
        await asyncio.shield(self._kubeconfig_flush)

    def _flush_kubeconfig(self) -> None:
        done, self._kubeconfig_flush = self._kubeconfig_flush, None
        try:
            assert self.state_dir is not None
            current = self._kubeconfig_current if self._kubeconfig_current in self._clusters else None
            self.write_kubeconfig(self.state_dir / "kubeconfig", current=current)
        except Exception as exc:  # pragma: no cover - disk full and the like
            if done is not None:
                done.set_exception(exc)
            return
        if done is not None:
            done.set_result(None)

    def write_kubeconfig(self, path: Path, names: list[str] | None = None, current: str | None = None) -> None:
        """Writes the kubeconfig atomically (a reader never sees half a file)."""
        config = self.kubeconfig(names, current)
        self._kubeconfig_current = config["current-context"]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # JSON is YAML, and orjson writes a thousand contexts in a millisecond (yaml.dump: a second)
        tmp.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
        tmp.chmod(0o600)
        tmp.replace(path)


def _cluster_name_problems(name: str) -> str | None:
    problems = dns1123_label_problems(name)
    return "; ".join(problems) if problems else None
