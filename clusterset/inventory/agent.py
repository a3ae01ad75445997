"""The member agent: looks at its member and reports to its own hub namespace (pull model).

The hub never calls members; an agent needs only outbound access to the hub, with a token that can
write nothing but `clusterset-<id>` there. Each heartbeat (and whenever a ClusterProperty changes) it
probes `/readyz` and `/version`, reads the ClusterProperties from its watch cache, and applies a
ClusterReport. It renews its own hub token at 80% of its lifetime, as the kubelet rotates projected
ServiceAccount tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from clusterset.api.inventory import (
    AGENT_SERVICE_ACCOUNT,
    CLUSTER_REPORTS,
    FIELD_MANAGER,
    HUB_KUBECONFIG_SECRET,
    SYSTEM_NAMESPACE,
)
from clusterset.api.resources import SECRETS
from clusterset.api.times import rfc3339
from clusterset.client import ClusterClient
from clusterset.client.config import RetryPolicy
from clusterset.client.errors import ApiError, ConnectionFailed, CredentialError, NotFound
from clusterset.client.kubeconfig import parse_kubeconfig
from clusterset.inventory.endpoint import endpoint_of
from clusterset.inventory.profile_status import without_observation_times
from clusterset.inventory.registration import request_token, store_hub_kubeconfig
from clusterset.inventory.report import Observation, desired_report
from clusterset.runtime import Cache

log = logging.getLogger(__name__)

MIN_TOKEN_SECONDS = 600  # TokenRequest's minimum


def jwt_lifetime(token: str) -> tuple[float, float] | None:
    """(iat, exp) of a JWT, read without verifying it (it is our own credential), or None if it is not one."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None


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
        self.renew_at = 0.8  # fraction of the hub token's lifetime after which it is renewed

    async def close(self) -> None:
        await self.probe.close()

    async def observe(self, properties: Cache) -> Observation:
        """`properties`: the member's ClusterProperties as its watch keeps them (no list per heartbeat)."""
        seen = Observation()
        step = "/readyz"
        try:
            await self.probe.request("GET", "/readyz")
            step = "/version"
            version = await self.probe.request("GET", "/version")
            seen.version = str((version if isinstance(version, dict) else {}).get("gitVersion") or "") or None
            step = "the ClusterProperty list"
            await properties.wait_synced(self.probe.config.timeout)
        except (ApiError, ConnectionFailed, CredentialError, OSError, TimeoutError) as exc:
            seen.readyz_error = f"the member's API server at {self.probe.server} did not answer {step}: {exc}"
            return seen
        for item in properties.list():
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

    async def renew_token(self) -> bool:
        """Renew the hub token once `renew_at` of its lifetime has passed; True if it was renewed.

        The member's copy (the Secret `clusterset agent` starts from) is updated too, best effort."""
        span = jwt_lifetime(self.hub.config.token or "")
        if span is None:
            return False
        issued, expires = span
        if time.time() < issued + (expires - issued) * self.renew_at:
            return False
        token = await request_token(self.hub, self.hub_namespace, AGENT_SERVICE_ACCOUNT,
                                    max(MIN_TOKEN_SECONDS, int(expires - issued)))
        self.hub.set_token(token)
        log.info("hub token renewed cluster=%s", self.cluster_id)
        try:
            secret = await self.probe.get(SECRETS, HUB_KUBECONFIG_SECRET, SYSTEM_NAMESPACE)
            kubeconfig = parse_kubeconfig(base64.b64decode(secret["data"]["kubeconfig"]), HUB_KUBECONFIG_SECRET)
            kubeconfig["users"][0]["user"]["token"] = token
            await store_hub_kubeconfig(self.probe, kubeconfig)
        except (ApiError, ConnectionFailed, OSError, KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("hub token renewed but not stored in the member cluster=%s: %s", self.cluster_id, exc)
        return True

    async def report(self, properties: Cache) -> float:
        """Observe and write the report if it changed or a heartbeat is due; returns seconds to the next one."""
        await self.renew_token()
        if self._last is None:
            self._last = await self._previous_report()
        seen = await self.observe(properties)
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
