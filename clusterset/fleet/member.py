"""What runs for each member, for `clusterset up` (every member in one process) and `clusterset agent` (one).

A feature adds what it runs for a member here, once: its per-member state to `Members.add` (and its
cleanup to `_close`), its controllers to `Members.__init__`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.inventory.agent import REPORT_REFRESH_SECONDS, MemberAgent
from clusterset.inventory.controllers import REPORT_KEY, agent_controller
from clusterset.mcs.controllers import member_controllers
from clusterset.mcs.exports import withdraw_exports
from clusterset.runtime import Cache, Manager
from clusterset.runtime.hubview import HubView, member_of, view_name
from clusterset.runtime.shared import InformerSource
from clusterset.work.controllers import work_controller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberOptions:
    heartbeat: float = 10.0  # seconds between agent heartbeats: a probe of the member and a renewal of its Lease
    probe_timeout: float = 5.0  # how long a probe of the member's API server may take
    clusterset: str = "clusterset"  # the ClusterSet's namespace on the hub, where the merged services are
    endpoint_lease: int = 40  # seconds a member's endpoints stay imported after its agent last vouched for them
    report_refresh: float = REPORT_REFRESH_SECONDS  # seconds between reports that say nothing new
    # reports at a time, over every member: each waits on its member's probe, so the embedded fleet's 1,000 members
    # with 4 at a time had their first reports 10 s after their profiles (which said AgentNotConnected meanwhile)
    report_workers: int = 4


class Members:
    """The members this process runs agents for, each engaged in `manager` under its cluster id.

    The member-side controllers are added to `manager` here; the caller starts and stops the manager,
    and calls `close()` after stopping it. An agent whose member is gone for good stops by itself, saying so
    once in the log, and withdraws the member's exports from the hub; then `on_gone(cluster_id)`."""

    def __init__(self, manager: Manager, options: MemberOptions | None = None,
                 on_gone: Callable[[str], None] | None = None) -> None:
        self.manager = manager
        self.options = options or MemberOptions()
        self.on_gone = on_gone
        self.agents: dict[str, MemberAgent] = {}
        self._reports = manager.add(agent_controller(self.agents, self._stop_gone, self._own_namespace,
                                                     workers=self.options.report_workers))
        opts = self.options
        mcs = member_controllers(self._hub_view, lambda name: name in self.agents, opts.clusterset,
                                 self._own_namespace)
        for controller in mcs.all():
            manager.add(controller)
        manager.add(work_controller(self._hub_view, lambda name: name in self.agents, self._own_namespace))
        self._stopping: set[asyncio.Task[None]] = set()

    async def add(self, cluster_id: str, member: ClusterClient, hub: ClusterClient, hub_namespace: str, *,
                  session: aiohttp.ClientSession | None = None, hub_informers: InformerSource | None = None,
                  member_informers: InformerSource | None = None) -> None:
        """Runs the member's agent, replacing the one it had, and has it report at once. `hub` is the agent's
        own hub client, writing to `hub_namespace`, and closed with it; `member` stays the caller's.
        `session`: a connection pool for the agent's probes of the member (None: one of their own).
        `hub_informers`: serves the agent's reads of the hub from informers shared with other agents (the embedded
        fleet; None: the agent's view of the hub lists and watches for itself); `member_informers` likewise for its
        reads of the member."""
        old = self.agents.get(cluster_id)
        self.agents[cluster_id] = MemberAgent(
            cluster_id, member, hub, hub_namespace, heartbeat=self.options.heartbeat,
            probe_timeout=self.options.probe_timeout, session=session, lease_seconds=self.options.endpoint_lease,
            report_refresh=self.options.report_refresh,
            hub_cache=lambda resource: self._own_cache(cluster_id, resource))
        if old is not None:
            await _close(old)
        await self.manager.add_cluster(view_name(cluster_id), hub, owned=False, informers=hub_informers)
        await self.manager.add_cluster(cluster_id, member, owned=False, informers=member_informers)
        self._reports.enqueue(cluster_id, REPORT_KEY)

    def _hub_view(self, cluster_id: str) -> HubView | None:
        agent = self.agents.get(cluster_id)
        hub = self.manager.clusters.get(view_name(cluster_id))
        if agent is None or hub is None:
            return None
        return HubView(hub, agent.hub_namespace, self.options.clusterset)

    def _own_cache(self, cluster_id: str, resource: Resource) -> Cache | None:
        """The agent's watch cache of `resource` in its own hub namespace (its controller watches its report and
        Lease there)."""
        view = self._hub_view(cluster_id)
        return view.cluster.cache(resource, view.namespace) if view is not None else None

    def _own_namespace(self, view: str) -> str | None:
        agent = self.agents.get(member_of(view) or "")
        return agent.hub_namespace if agent is not None else None

    def member_gone(self, cluster_id: str, reason: str) -> None:
        """The member's cluster no longer exists (its server says so): its agent stops watching it, reports it
        gone, and stops."""
        agent = self.agents.get(cluster_id)
        if agent is not None:
            agent.member_gone(reason)
            self._stop(agent, last_report=True)

    def _stop_gone(self, agent: MemberAgent) -> None:
        """The agent found its member gone, and reported so (called from its reconcile)."""
        self._stop(agent, last_report=False)

    def _stop(self, agent: MemberAgent, *, last_report: bool) -> None:
        if self.agents.get(agent.cluster_id) is not agent:  # stopped or replaced already
            return
        del self.agents[agent.cluster_id]
        log.warning("agent stopped, its member is gone cluster=%s reason=%s", agent.cluster_id, agent.gone)
        task = asyncio.create_task(self._retire(agent, last_report), name=f"stop agent {agent.cluster_id}")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _retire(self, agent: MemberAgent, last_report: bool) -> None:
        if agent.cluster_id not in self.agents:  # not added again meanwhile
            await self.manager.remove_cluster(agent.cluster_id)  # first: its watches would retry with warnings
            await self.manager.remove_cluster(view_name(agent.cluster_id))
        if last_report:
            try:
                await agent.report_gone()
            except Exception as exc:  # the hub refuses it (it left) or is away: the profile turns Unknown
                log.info("last report not written cluster=%s: %s", agent.cluster_id, exc)
        try:
            await withdraw_exports(agent.hub, agent.hub_namespace)
        except Exception as exc:  # the hub refuses it (it left) or is away: the records stay until `leave`
            log.info("exports not withdrawn cluster=%s: %s", agent.cluster_id, exc)
        await _close(agent)
        if self.on_gone is not None:
            self.on_gone(agent.cluster_id)

    async def remove(self, cluster_id: str) -> None:
        """Stops the member's agent: disengages the member, closes the agent and its hub client."""
        await self.manager.remove_cluster(cluster_id)
        await self.manager.remove_cluster(view_name(cluster_id))
        agent = self.agents.pop(cluster_id, None)
        if agent is not None:
            await _close(agent)

    async def close(self) -> None:
        """Closes every agent and its hub client (after the manager has stopped)."""
        await asyncio.gather(*self._stopping, return_exceptions=True)
        agents = list(self.agents.values())
        self.agents.clear()
        for agent in agents:
            await _close(agent)


async def _close(agent: MemberAgent) -> None:
    await agent.close()
    await agent.hub.close()
