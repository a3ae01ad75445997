"""What runs for each member, for `clusterset up` (every member in one process) and `clusterset agent` (one).

A feature adds what it runs for a member here, once: its per-member state to `Members.add` (and its
cleanup to `_close`), its controllers to `Members.__init__`.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from clusterset.client import ClusterClient
from clusterset.inventory.agent import MemberAgent
from clusterset.inventory.controllers import REPORT_KEY, agent_controller
from clusterset.runtime import Manager


@dataclass(frozen=True)
class MemberOptions:
    heartbeat: float = 10.0  # seconds between agent reports
    probe_timeout: float = 5.0  # how long a probe of the member's API server may take


class Members:
    """The members this process runs agents for, each engaged in `manager` under its cluster id.

    The member-side controllers are added to `manager` here; the caller starts and stops the manager,
    and calls `close()` after stopping it."""

    def __init__(self, manager: Manager, options: MemberOptions | None = None) -> None:
        self.manager = manager
        self.options = options or MemberOptions()
        self.agents: dict[str, MemberAgent] = {}
        self._reports = manager.add(agent_controller(self.agents))

    async def add(self, cluster_id: str, member: ClusterClient, hub: ClusterClient, hub_namespace: str, *,
                  session: aiohttp.ClientSession | None = None) -> None:
        """Runs the member's agent, replacing the one it had, and has it report at once. `hub` is the agent's
        own hub client, writing to `hub_namespace`, and closed with it; `member` stays the caller's.
        `session`: a connection pool for the agent's probes of the member (None: one of their own)."""
        old = self.agents.get(cluster_id)
        self.agents[cluster_id] = MemberAgent(
            cluster_id, member, hub, hub_namespace, heartbeat=self.options.heartbeat,
            probe_timeout=self.options.probe_timeout, session=session)
        if old is not None:
            await _close(old)
        await self.manager.add_cluster(cluster_id, member, owned=False)
        self._reports.enqueue(cluster_id, REPORT_KEY)

    async def remove(self, cluster_id: str) -> None:
        """Stops the member's agent: disengages the member, closes the agent and its hub client."""
        await self.manager.remove_cluster(cluster_id)
        agent = self.agents.pop(cluster_id, None)
        if agent is not None:
            await _close(agent)

    async def close(self) -> None:
        """Closes every agent and its hub client (after the manager has stopped)."""
        agents = list(self.agents.values())
        self.agents.clear()
        for agent in agents:
            await _close(agent)


async def _close(agent: MemberAgent) -> None:
    await agent.close()
    await agent.hub.close()
