"""The member agent: looks at its member and reports to its own hub namespace (pull model).

The hub never calls members; an agent needs only outbound access to the hub, with a token that can
write nothing but `clusterset-<id>` there. Each heartbeat (and whenever a ClusterProperty changes) it
probes `/readyz` (and `/version` once a minute), reads the ClusterProperties from its watch cache, and applies a
ClusterReport. It renews its own hub token at 80% of its lifetime, as the kubelet rotates projected
ServiceAccount tokens, and takes a newer one from the member's Secret (a `clusterset join` after a
`leave`). A member that refuses it for good (its cluster was removed) gets one last report, then the
agent stops.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
import random
import time
from collections.abc import Mapping
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
from clusterset.client.errors import ApiError, ConnectionFailed, CredentialError, NotFound, Unauthorized
from clusterset.inventory.endpoint import endpoint_of
from clusterset.inventory.profile_status import report_age, without_observation_times
from clusterset.inventory.registration import hub_kubeconfig_of, request_token, store_hub_kubeconfig
from clusterset.inventory.report import Observation, desired_report
from clusterset.runtime import Cache

log = logging.getLogger(__name__)

TOKEN_RENEW_AT = 0.8  # fraction of the hub token's lifetime after which the agent renews it

MIN_TOKEN_SECONDS = 600  # TokenRequest's minimum
# probes in a row that the member refuses (401: our credential is unknown there, 404: no such cluster at that
# address) before the agent takes its cluster as gone for good, asked again this often (not at the heartbeat:
# the agent's watches of a member that is gone fail, and warn, until it stops)
GONE_AFTER_REFUSALS = 3
REFUSAL_RECHECK_SECONDS = 0.5
# how often `/version` is asked while `/readyz` keeps answering: a version changes with an upgrade, which a
# heartbeat's probe need not find at once (one probe fewer per heartbeat, of three with the endpoint Lease's)
VERSION_SECONDS = 60.0


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
        self.renew_at = TOKEN_RENEW_AT
        self.refusals = 0  # probes in a row the member refused
        # loop time of the last `/readyz` the member answered (None: its last probe failed): the endpoint Lease is
        # renewed on it rather than on a probe of its own (`mcs/leases.py`)
        self.answered_at: float | None = None
        self._version: str | None = None
        self._version_at = 0.0  # loop time `_version` was asked
        self.gone: str | None = None  # why the member is gone for good: the agent reports it once more, then stops

    def member_gone(self, reason: str) -> None:
        """The member's cluster no longer exists: the next report says so, and is the last."""
        self.gone = self.gone or reason

    async def close(self) -> None:
        await self.probe.close()

    async def observe(self, properties: Cache) -> Observation:
        """`properties`: the member's ClusterProperties as its watch keeps them (no list per heartbeat)."""
        seen = Observation()
        step = "/readyz"
        loop = asyncio.get_running_loop()
        try:
            try:
                await self.probe.request("GET", "/readyz")
            except (Unauthorized, NotFound) as exc:
                self.refusals += 1
                if self.refusals >= GONE_AFTER_REFUSALS:
                    self.member_gone(f"the member's API server at {self.probe.server} answered {step} with "
                                     f"{exc.status} {exc.reason} {self.refusals} times in a row: it is gone")
                raise
            self.refusals = 0
            self.answered_at = loop.time()
            if self._version is None or loop.time() - self._version_at >= VERSION_SECONDS:
                step = "/version"
                version = await self.probe.request("GET", "/version")
                self._version = str((version if isinstance(version, dict) else {}).get("gitVersion") or "") or None
                self._version_at = loop.time()
            seen.version = self._version
            step = "the ClusterProperty list"
            await properties.wait_synced(self.probe.config.timeout)
        except (ApiError, ConnectionFailed, CredentialError, OSError, TimeoutError) as exc:
            seen.readyz_error = f"the member's API server at {self.probe.server} did not answer {step}: {exc}"
            self.answered_at, self._version = None, None  # asked again once it answers: it may have changed
            return seen
        for item in properties.list():
            value = (item.get("spec") or {}).get("value")
            if isinstance(value, str) and value:
                seen.properties[item["metadata"]["name"]] = value
        return seen

    def _resumed_at(self, report: dict[str, Any] | None, now: float) -> float:
        """The loop time this agent wrote `report` at before it restarted, when that is less than a heartbeat ago
        (else 0): a restarted fleet keeps its agents' rhythm instead of rewriting every report, and then every
        profile, at once; a report that changed is still written at once."""
        age = report_age(report, datetime.now(UTC))
        return now - age if age is not None and 0 <= age < self.heartbeat * 0.9 else 0.0

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
            kubeconfig = hub_kubeconfig_of(await self.probe.get(SECRETS, HUB_KUBECONFIG_SECRET, SYSTEM_NAMESPACE))
            if kubeconfig is None:
                raise ValueError(f"Secret {SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET} holds no hub kubeconfig")
            kubeconfig["users"][0]["user"]["token"] = token
            await store_hub_kubeconfig(self.probe, kubeconfig)
        except (ApiError, ConnectionFailed, OSError, KeyError, IndexError, TypeError, ValueError) as exc:
            log.warning("hub token renewed but not stored in the member cluster=%s: %s", self.cluster_id, exc)
        return True

    def follow_member_copy(self, secret: Mapping[str, Any] | None) -> bool:
        """Takes the hub token of the member's Secret when it was issued after the agent's own (`clusterset
        join` wrote it, after a `leave` revoked the old one); True if it did. An older one there is a copy
        this agent has since renewed (its watch has not seen the renewal's write yet)."""
        kubeconfig = hub_kubeconfig_of(secret)
        try:
            token = str(kubeconfig["users"][0]["user"]["token"]) if kubeconfig is not None else None
        except (KeyError, IndexError, TypeError):
            token = None
        current = self.hub.config.token
        if not token or token == current:
            return False
        new, old = jwt_lifetime(token), jwt_lifetime(current or "")
        if new is not None and old is not None and new[0] <= old[0]:
            return False
        self.hub.set_token(token)
        log.info("hub token taken from the member's Secret %s/%s cluster=%s", SYSTEM_NAMESPACE,
                 HUB_KUBECONFIG_SECRET, self.cluster_id)
        return True

    async def report(self, properties: Cache) -> float:
        """Observe and write the report if it changed or a heartbeat is due; returns seconds to the next one."""
        await self.renew_token()
        wait = await self._write(await self.observe(properties))
        return min(wait, REFUSAL_RECHECK_SECONDS) if self.refusals else wait

    async def report_gone(self) -> None:
        """The last report of a member that is gone (`member_gone`): its control plane is no more."""
        await self._write(Observation(readyz_error=self.gone))

    async def _write(self, seen: Observation) -> float:
        loop = asyncio.get_running_loop()
        if self._last is None:
            self._last = await self._previous_report()
            self._last_written = self._resumed_at(self._last, loop.time())
        now = loop.time()
        want = desired_report(self.cluster_id, self.hub_namespace, seen, self.endpoint, self._last,
                              rfc3339(datetime.now(UTC)))
        last_status = (self._last or {}).get("status")
        changed = last_status is None or without_observation_times(want["status"]) != without_observation_times(
            last_status
        )
        due = now - self._last_written >= self.heartbeat * 0.9
        if changed or due:
            first = self._last_written == 0.0
            self._last = await self.hub.apply(CLUSTER_REPORTS, want, FIELD_MANAGER)
            # the first heartbeat after a start comes after a random part of the interval: agents started together
            # (every member of an embedded fleet) then spread their reports over it instead of all writing at once
            self._last_written = now - (random.uniform(0, 0.9) * self.heartbeat if first else 0.0)
            if changed:
                log.info("report cluster=%s healthy=%s", self.cluster_id, seen.readyz_error is None)
        return max(0.05, self.heartbeat - (loop.time() - self._last_written))
