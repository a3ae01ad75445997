"""The embedded fleet: one API server hosting `hub` and `member-1..N`, the hub's controllers, one agent per member.

Everything talks through the REST API as it would across real clusters: members join through
`inventory.registration.join` (ServiceAccount, Role, RoleBinding, TokenRequest on the hub), and each
agent reports with its own hub token. State lives in the server's SQLite, so starting again on the same
directory resumes the same fleet (joins are idempotent); `fleet.json` also names the members removed from
it, so that a restart does not make them again. A member that cannot join is reported and left out; the
others and the fleet carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from clusterset.api.inventory import CONTROL_PLANE_HEALTHY, FIELD_MANAGER, member_namespace
from clusterset.api.objects import condition
from clusterset.api.resources import CLUSTER_PROFILES, ENDPOINT_SLICES, SERVICES
from clusterset.apiserver import Apiserver, ClusterCRDs, collector_paused
from clusterset.client import ClientConfig, ClusterClient
from clusterset.fleet.dns import MemberDns
from clusterset.fleet.hub import HUB, HubOptions, start_hub
from clusterset.fleet.member import MemberOptions, Members
from clusterset.inventory.profile_status import AccessProvider
from clusterset.inventory.registration import agent_watches, end_works, join, member_crd_manifests
from clusterset.inventory.resume import HubMembers, resume
from clusterset.runtime import Cache, Cluster, Manager
from clusterset.runtime.shared import Mirror, SharedReads

log = logging.getLogger(__name__)

EMBEDDED_PROVIDER = "clusterset-embedded"
# seconds an idle pooled connection stays open: a burst (joins, first lists) leaves hundreds of idle TLS
# connections, each two file descriptors and two sets of buffers in this process; requests after it keep a few busy
KEEPALIVE = 2.0
# a member's readers select its Services and EndpointSlices three ways: one watch of all of them serves every view
WIDENED = (SERVICES, ENDPOINT_SLICES)
# every member's reports share one controller here: 16 at a time keep 1,000 members' first reports within 4 s of their
# profiles (4 left them 10 s behind); 32 made a restart 1.3x slower (probes over TLS in its first seconds)
EMBEDDED_REPORT_WORKERS = 16


@dataclass
class FleetOptions:
    state_dir: Path | None
    members: int = 2
    host: str = "127.0.0.1"
    port: int = 0
    durable: bool = False
    clusterset: str = "clusterset"
    heartbeat: float = 10.0
    grace: float = 40.0
    probe_timeout: float = 5.0
    endpoint_lease: int = 40  # seconds a silent member's endpoints stay imported
    join_concurrency: int = 16
    metrics_port: int = 0
    member_settings: dict[str, Any] = field(default_factory=dict)  # add_cluster options for new members
    owner: str | None = None  # how the state directory's lock names this process (default: its command line)
    dns: bool = True  # a clusterset.local DNS server per member (its address in fleet.json)


def member_names(count: int) -> list[str]:
    return [f"member-{i}" for i in range(1, count + 1)]


@functools.cache
def member_crds() -> ClusterCRDs:
    """The CRDs a member's join installs, as its join would (digested, created by the join's field manager): a new
    member is born with them, validated once for all, so its join finds them and writes none."""
    return ClusterCRDs(member_crd_manifests(), FIELD_MANAGER)


class EmbeddedFleet:
    """Start with `await fleet.start()`, stop with `await fleet.stop()`; `progress` gets one line per step."""

    def __init__(self, options: FleetOptions, progress: Callable[[str], None] = lambda _line: None) -> None:
        self.options = options
        self.progress = progress
        self.server = Apiserver(options.state_dir, host=options.host, port=options.port, durable=options.durable,
                                owner=options.owner)
        self.hub_manager = Manager(name="hub", metrics_port=options.metrics_port)
        self.agent_manager = Manager(name="agents")
        self.members = Members(self.agent_manager,
                               MemberOptions(heartbeat=options.heartbeat, probe_timeout=options.probe_timeout,
                                             clusterset=options.clusterset, endpoint_lease=options.endpoint_lease,
                                             report_workers=EMBEDDED_REPORT_WORKERS))
        self.member_ids: list[str] = []
        self.not_joined: dict[str, str] = {}  # member → why its join failed
        self.removed: set[str] = set()  # members removed while a fleet ran here: a restart does not make them again
        self.admin_clients: dict[str, ClusterClient] = {}
        self._stale_clients: list[ClusterClient] = []
        self.resumed: list[str] = []
        self._born: set[str] = set()  # members this start created, with the member CRDs (their join checks none)
        self._session: aiohttp.ClientSession | None = None  # one connection pool for every client
        self._joins: set[asyncio.Task[None]] = set()
        self.dns = MemberDns(options.host)
        # the agents' reads of the hub: one informer per kind for all of them, each agent seeing what its Roles allow
        self.hub_reads = SharedReads(lambda: self.hub_manager.cluster(HUB), common=(options.clusterset,))
        # each member's informers, read by its agent and its DNS server (which outlives an agent that stops)
        self.member_reads: dict[str, Cluster] = {}
        self._dns_views: dict[str, Cluster] = {}  # each DNS server's view of its member's reads
        self._dns_ports: dict[str, int] = {}  # the DNS port each member had when this fleet last ran here
        # the fleet's own requests (joins, the members' reads) are answered in this process without HTTP: both ends
        # are here, and eight watches per member would otherwise be eight connections with buffers on each end
        self.local_clients: dict[str, ClusterClient] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start-up builds every member's objects, caches and watches, long-lived containers that the cyclic
        collector would walk again at each full collection (a quarter of a 200-member fleet's start): it pauses
        meanwhile, and what start-up built then leaves its generations, as the server's load does (the server's
        stop returns them). What start-up drops is plain data that reference counting frees: the peak RSS of a
        200-member start is the same either way."""
        with collector_paused():
            await self._start()
        gc.freeze()

    async def _start(self) -> None:
        opts = self.options
        # clusters added at run time (`clusterset cluster add`) in an earlier run are members too
        existing = self.server.cluster_names()
        described = self._described()
        self.removed = {str(n) for n in described.get("removed") or []} - set(existing)
        self._dns_ports = _dns_ports(described)
        names = [HUB, *(n for n in member_names(opts.members) if n not in self.removed)]
        self.member_ids = [*names[1:], *(n for n in existing if n not in names)]
        self.resumed = [n for n in [HUB, *self.member_ids] if n in existing]
        missing = [n for n in names if n not in existing]
        if missing:
            self.progress(f"creating {len(missing)} cluster(s): {_short(missing)}")
        self._born = set(missing)
        for name in missing:
            await self.server.add_cluster(name, **({} if name == HUB else {"crds": member_crds(),
                                                                            **opts.member_settings}))
        await self.server.start()
        self.server.context_namespaces[HUB] = opts.clusterset  # `kubectl --context hub get clusterprofiles`
        if opts.state_dir is not None:
            self.server.write_kubeconfig(opts.state_dir / "kubeconfig", current=HUB)

        self.progress("installing the inventory CRDs on the hub")
        providers = (AccessProvider(EMBEDDED_PROVIDER, self._exec_config()),)
        await start_hub(self.hub_manager, self.local_client(HUB),
                        HubOptions(opts.clusterset, grace=opts.grace, access_providers=providers,
                                   # the quick start's Placements: `default` and the hub context's namespace
                                   bind_namespaces=("default", opts.clusterset)))

        await self.agent_manager.start()
        joining = list(self.member_ids)
        self.progress(f"joining {len(joining)} member(s) to ClusterSet {opts.clusterset!r}")
        limit = asyncio.Semaphore(opts.join_concurrency)

        # a restart: the joins are done; one read of the hub's side of all of them, then each member's side
        hub_members = await HubMembers.read(self.local_client(HUB)) if set(joining) & set(self.resumed) else None

        async def join_one(name: str) -> None:
            async with limit:
                await self._try_join(name, hub_members if name in self.resumed else None)

        await asyncio.gather(*(join_one(n) for n in joining))
        self.write_fleet_json()
        self.server.cluster_added.append(self._cluster_added)
        self.server.cluster_removed.append(self._cluster_removed)

    async def _try_join(self, name: str, hub_members: HubMembers | None = None) -> bool:
        """Joins a member; a member that cannot join must not take the fleet down: why is kept (and logged)."""
        try:
            await self.join_member(name, hub_members)
        except Exception as exc:
            self.not_joined[name] = str(exc)
            log.error("joining cluster=%s failed: %s", name, exc)
            return False
        self.not_joined.pop(name, None)
        return True

    def _cluster_added(self, name: str) -> None:
        """A cluster added while the fleet runs (`clusterset cluster add`) joins as a member."""
        self.removed.discard(name)
        task = asyncio.create_task(self._join_added(name), name=f"join {name}")
        self._joins.add(task)
        task.add_done_callback(self._joins.discard)

    async def _join_added(self, name: str) -> None:
        if name not in self.member_ids:
            self.member_ids.append(name)
        joined = await self._try_join(name)
        self.write_fleet_json()
        if joined:
            log.info("joined added cluster=%s", name)

    def _cluster_removed(self, name: str) -> None:
        """A member removed while the fleet runs (`clusterset cluster remove`) leaves the fleet for good: its agent
        reports it gone and stops, a restart does not make it again, and its Works end (what they applied went with
        the cluster, so their cleanup finalizer has nothing left to wait for: a WorkSet being deleted would wait
        for it forever). Its profile stays, unhealthy, until `clusterset leave --id` removes it from the hub."""
        if name not in self.member_ids:
            return
        self.member_ids.remove(name)
        self.not_joined.pop(name, None)
        self.removed.add(name)
        self.write_fleet_json()
        self.members.member_gone(name, "the cluster was removed from the fleet (clusterset cluster remove)")
        # its reads stop now: answered in this process, a watch the removal ends would be listed again at once (401);
        # the DNS server's view of them asks nothing of the server, and stops with the DNS server
        reads = self.member_reads.pop(name, None)
        reading = reads.cancel() if reads is not None else []
        task = asyncio.create_task(self._retire(name, reading), name=f"retire {name}")
        self._joins.add(task)
        task.add_done_callback(self._joins.discard)

    async def _retire(self, name: str, reading: list[asyncio.Task[None]]) -> None:
        await self.dns.stop(name)
        view = self._dns_views.pop(name, None)
        if view is not None:
            await view.stop()
        await asyncio.gather(*reading, return_exceptions=True)
        try:
            await end_works(self.admin_client(HUB), None, member_namespace(name))
        except Exception as exc:
            log.warning("could not end the Works of removed cluster=%s error=%r", name, exc)

    async def join_member(self, name: str, hub_members: HubMembers | None = None) -> None:
        """Join a member (idempotent) and start its agent. With `hub_members` (the hub's side of every join, read at
        a restart) a member whose join is complete resumes its membership without writing."""
        opts = self.options
        hub, member = self.local_client(HUB), self.local_client(name)
        reads = self.member_reads.get(name)
        if reads is None or reads.client is not member:  # new, or added again (a new token: a new client)
            if reads is not None:  # the old token's: its agent and DNS view are replaced below
                await reads.stop()
            reads = self.member_reads[name] = Cluster(name, member)
        membership = None
        if hub_members is not None:
            membership = await resume(hub_members, hub, member, reads, clusterset=opts.clusterset, cluster_id=name)
        if membership is None:
            membership = await join(hub, member, clusterset=opts.clusterset, cluster_id=name, hub_prepared=True,
                                    member_prepared=name in self._born)
        self._born.discard(name)
        token = membership.agent_kubeconfig["users"][0]["user"]["token"]
        # the agent's own token, checked in process as over HTTPS: it may write only its own hub namespace
        hub_as_agent = ClusterClient(ClientConfig(
            server=self.server.cluster_url(HUB), name=f"{name}@hub", namespace=membership.hub_namespace,
            ca_data=self.server.ca_pem.encode(), token=token,
        ), self.session, in_process=self.server.in_process(HUB))
        if name not in self.member_ids:
            self.member_ids.append(name)
        await self.members.add(name, member, hub_as_agent, membership.hub_namespace, session=self.session,
                               hub_informers=self.hub_reads.source(agent_watches(membership.hub_namespace,
                                                                                 opts.clusterset)),
                               member_informers=Mirror(reads, widens=WIDENED))
        if opts.dns:
            view = Cluster(name, member, informers=Mirror(reads, widens=WIDENED))
            await self.dns.start(name, view, self._dns_ports.get(name, 0))
            old_view = self._dns_views.pop(name, None)
            self._dns_views[name] = view
            if old_view is not None:
                await old_view.stop()

    async def stop(self) -> None:
        for hook, callback in ((self.server.cluster_added, self._cluster_added),
                               (self.server.cluster_removed, self._cluster_removed)):
            with contextlib.suppress(ValueError):  # no more joins: their clients are about to close
                hook.remove(callback)
        for task in list(self._joins):
            task.cancel()
        await asyncio.gather(*self._joins, return_exceptions=True)
        await self.agent_manager.stop()
        await self.hub_manager.stop()
        await self.dns.close()
        await self.members.close()
        for cluster in [*self._dns_views.values(), *self.member_reads.values()]:
            await cluster.stop()
        for client in [*self.admin_clients.values(), *self.local_clients.values(), *self._stale_clients]:
            await client.close()
        self._dns_views.clear()
        self.member_reads.clear()
        if self._session is not None:
            await self._session.close()
        await self.server.stop()

    # ------------------------------------------------------------------ helpers
    @property
    def session(self) -> aiohttp.ClientSession:
        """Every cluster of the fleet is one host: all clients share one pool of keep-alive connections."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE))
        return self._session

    def admin_client(self, name: str) -> ClusterClient:
        """The fleet's admin client of a cluster, over HTTPS as any client's; a cluster removed and added again under
        its name has a new token, so its client is made anew (the old one is closed at stop)."""
        return self._client(self.admin_clients, name, in_process=False)

    def local_client(self, name: str) -> ClusterClient:
        """The fleet's admin client of a cluster for its own joins and reads: the same URL, token and answers as
        `admin_client`'s, its resource requests answered in this process without HTTP (`Apiserver.in_process`)."""
        return self._client(self.local_clients, name, in_process=True)

    def _client(self, clients: dict[str, ClusterClient], name: str, *, in_process: bool) -> ClusterClient:
        token = self.server.cluster_token(name)
        client = clients.get(name)
        if client is None or client.config.token != token:
            if client is not None:
                self._stale_clients.append(client)
            client = ClusterClient(ClientConfig(
                server=self.server.cluster_url(name), name=name, ca_data=self.server.ca_pem.encode(), token=token,
            ), self.session, in_process=self.server.in_process(name) if in_process else None)
            clients[name] = client
        return client

    def _exec_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"clusterName": "{cluster}"}
        if self.options.state_dir is not None:
            config["stateDir"] = str(self.options.state_dir.resolve())
        return config

    def fleet_description(self) -> dict[str, Any]:
        clusters = [{"name": HUB, "context": HUB, "role": "hub", "server": self.server.cluster_url(HUB)}]
        for name in self.member_ids:
            entry = {"name": name, "context": name, "role": "member", "id": name,
                     "server": self.server.cluster_url(name)}
            dns = self.dns.address(name)
            if dns is not None:
                entry["dns"] = dns
            clusters.append(entry)
        return {"clusterset": self.options.clusterset, "namespace": self.options.clusterset, "clusters": clusters,
                "removed": sorted(self.removed)}

    def _described(self) -> dict[str, Any]:
        """What `fleet.json` said when this fleet last ran here (nothing if it never did)."""
        if self.options.state_dir is None:
            return {}
        try:
            described = json.loads((self.options.state_dir / "fleet.json").read_text())
        except (OSError, ValueError):
            return {}
        return described if isinstance(described, dict) else {}

    def write_fleet_json(self) -> None:
        if self.options.state_dir is None:
            return
        path = self.options.state_dir / "fleet.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.fleet_description(), indent=2) + "\n")
        os.replace(tmp, path)

    def _profiles(self) -> Cache:
        return self.hub_manager.cluster(HUB).cache(CLUSTER_PROFILES, namespace=self.options.clusterset)

    def health(self) -> dict[str, str]:
        """Each member's ControlPlaneHealthy status, from the hub manager's ClusterProfile cache."""
        return {p["metadata"]["name"]: _healthy(p) for p in self._profiles().list()}

    async def wait_healthy(self, timeout: float = 60.0) -> float:
        """Seconds until every member's profile says ControlPlaneHealthy=True (for `up` and benchmarks). Each look
        reads only the profiles not yet seen healthy (reading all 1,000 of a large fleet every 50 ms was a sixth of
        its start's CPU), and all of them once more when none is left, so that they are healthy at once."""
        started = time.monotonic()
        profiles, namespace = self._profiles(), self.options.clusterset

        def unhealthy(names: set[str]) -> set[str]:
            return {name for name in names if _healthy(profiles.get((namespace, name))) != "True"}

        want = waiting = set(self.member_ids) - self.not_joined.keys()
        while True:
            waiting = unhealthy(waiting) or unhealthy(want)
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"members not healthy after {timeout:g}s: {_short(sorted(waiting))}")
            await asyncio.sleep(0.05)


def _dns_ports(described: dict[str, Any]) -> dict[str, int]:
    """Each member's DNS port in a fleet.json (`"dns": "127.0.0.1:<port>"`)."""
    ports = {}
    for cluster in described.get("clusters") or []:
        if isinstance(cluster, dict) and isinstance(cluster.get("dns"), str):
            port = cluster["dns"].rpartition(":")[2]
            if port.isdigit():
                ports[str(cluster.get("name"))] = int(port)
    return ports


def _healthy(profile: dict[str, Any] | None) -> str:
    """A profile's ControlPlaneHealthy status (`Unknown` without one)."""
    found = condition(((profile or {}).get("status") or {}).get("conditions"), CONTROL_PLANE_HEALTHY)
    return str((found or {}).get("status", "Unknown"))


def _short(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, … {names[-1]}"

