"""The member agent: looks at its member and reports to its own hub namespace (pull model).

The hub never calls members; an agent needs only outbound access to the hub, with a token that can
write nothing but `clusterset-<id>` there. Each heartbeat (and whenever a ClusterProperty changes) it
probes `/readyz` and `/version`, reads the ClusterProperties, and applies a ClusterReport.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp

from clusterset.api.inventory import CLUSTER_REPORTS, FIELD_MANAGER
from clusterset.api.resources import CLUSTER_PROPERTIES
from clusterset.client import ClusterClient
from clusterset.client.config import RetryPolicy
from clusterset.client.errors import ApiError, ConnectionFailed, CredentialError, NotFound
from clusterset.inventory.endpoint import endpoint_of
from clusterset.inventory.profile_status import rfc3339, without_observation_times
from clusterset.inventory.report import Observation, desired_report

log = logging.getLogger(__name__)


class MemberAgent:
    """One member's agent. `report()` is level-based: call it on every trigger; it writes only when due."""

    def __init__(
        self,
        cluster_id: str,
        member: ClusterClient,
        hub: ClusterClient,
        hub_namespace: str,
        *,
        heartbeat: float = 10.0,
        probe_timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.hub = hub
        self.hub_namespace = hub_namespace
        self.heartbeat = heartbeat
        # probes must fail fast: no retries, a short timeout (the next heartbeat is the retry)
        probe_config = dataclasses.replace(member.config, retry=RetryPolicy(attempts=1), timeout=probe_timeout)
        self.probe = ClusterClient(probe_config, session)
        self.endpoint = endpoint_of(member)
        self._last: dict[str, Any] | None = None
        self._last_written = 0.0

    async def close(self) -> None:
        await self.probe.close()

    async def observe(self) -> Observation:
        seen = Observation()
        step = "/readyz"
        try:
            await self.probe.request("GET", "/readyz")
            step = "/version"
            version = await self.probe.request("GET", "/version")
            seen.version = str((version if isinstance(version, dict) else {}).get("gitVersion") or "") or None
            step = "the ClusterProperty list"
            props = await self.probe.list(CLUSTER_PROPERTIES)
        except (ApiError, ConnectionFailed, CredentialError, OSError, TimeoutError) as exc:
            seen.readyz_error = f"the member's API server at {self.probe.server} did not answer {step}: {exc}"
            return seen
        for item in props.get("items") or []:
            value = (item.get("spec") or {}).get("value")
            if isinstance(value, str) and value:
                seen.properties[item["metadata"]["name"]] = value
        return seen

    async def _previous_report(self) -> dict[str, Any] | None:
        """The report this agent wrote before it (re)started: what it knew survives a restart."""
        try:
            return await self.hub.get(CLUSTER_REPORTS, self.cluster_id, self.hub_namespace)
        except NotFound:
            return None

    async def report(self) -> float:
        """Observe and write the report if it changed or a heartbeat is due; returns seconds to the next one."""
        if self._last is None:
            self._last = await self._previous_report()
        seen = await self.observe()
        loop = asyncio.get_running_loop()
        now = loop.time()
        want = desired_report(self.cluster_id, self.hub_namespace, seen, self.endpoint, self._last,
                              rfc3339(datetime.now(UTC)))
        last_status = (self._last or {}).get("status")
        changed = last_status is None or without_observation_times(want["status"]) != without_observation_times(
            last_status
        )
        due = now - self._last_written >= self.heartbeat * 0.9
        if changed or due:
            self._last = await self.hub.apply(CLUSTER_REPORTS, want, FIELD_MANAGER)
            self._last_written = now
            if changed:
                log.info("report cluster=%s healthy=%s", self.cluster_id, seen.readyz_error is None)
        return max(0.05, self.heartbeat - (loop.time() - self._last_written))
