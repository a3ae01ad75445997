"""The member agent: looks at its member and reports to its own hub namespace (pull model).

The hub never calls members; an agent needs only outbound access to the hub, with a token that can
write nothing but `clusterset-<id>` there. Each heartbeat it probes `/readyz` (and `/version` once a minute) and,
while its member answers, renews its Lease there (`clusterset-endpoints`), as a kubelet renews its node Lease: the
hub reads the agent's liveness from it, and keeps the member's exported endpoints while it is renewed. It writes
its ClusterReport (the ClusterProperties from its watch cache, the health it saw) when what the report says changes,
every heartbeat while its member does not answer (no Lease renewal then), and otherwise every `report_refresh`
seconds, as a kubelet writes its Node's status every five minutes when nothing changed. It renews its own hub token
at 80% of its lifetime, as the kubelet rotates projected ServiceAccount tokens, and takes a newer one from the
member's Secret (a `clusterset join` after a `leave`). A member that refuses it for good (its cluster was removed)
gets one last report, then the agent stops.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from clusterset.api import objects
from clusterset.api.inventory import (
    AGENT_SERVICE_ACCOUNT,
    CLUSTER_REPORTS,
    CONTROL_PLANE_HEALTHY,
    FIELD_MANAGER,
    HUB_KUBECONFIG_SECRET,
    SYSTEM_NAMESPACE,
)
from clusterset.api.mcs import ENDPOINT_LEASE
from clusterset.api.objects import condition_true
from clusterset.api.resources import LEASES, SECRETS, Resource
from clusterset.api.times import parse_time, rfc3339, rfc3339_micro
from clusterset.client import ClusterClient
from clusterset.client.config import RetryPolicy
from clusterset.client.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    ConnectionFailed,
    CredentialError,
    NotFound,
    Unauthorized,
)
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
# heartbeat's probe need not find at once (one probe per heartbeat, not two)
VERSION_SECONDS = 60.0
# how often a report that says nothing new is written while the member answers (the Lease, renewed every heartbeat,
# shows the agent alive meanwhile): kubelet's default `nodeStatusReportFrequency`. It keeps the observation times
# (`lastObservedTime` of the properties, and so of the profile's) at most this old
REPORT_REFRESH_SECONDS = 300.0


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
        lease_seconds: int = 40,
        report_refresh: float = REPORT_REFRESH_SECONDS,
        hub_cache: Callable[[Resource], Cache | None] | None = None,
    ) -> None:
        """`hub_cache(resource)`: a watch cache of `resource` in the agent's hub namespace, if it has one (its report
        and Lease are read from there at start rather than asked for)."""
        self.cluster_id = cluster_id
        self.hub = hub
        self.hub_namespace = hub_namespace
        # the Lease must be renewed at least three times within its duration (as a kubelet's node Lease); the commands
        # refuse a longer heartbeat (`cli/fleet.py heartbeat_problem`)
        self.heartbeat = min(heartbeat, lease_seconds / 3)
        self.lease_seconds = lease_seconds
        self.report_refresh = max(report_refresh, self.heartbeat)
        self.hub_cache = hub_cache
        # probes must fail fast: no retries, a short timeout (the next heartbeat is the retry); a member in this
        # process (the embedded fleet's) answers them in process too, as it answers the agent's reads
        probe_config = dataclasses.replace(member.config, retry=RetryPolicy(attempts=1), timeout=probe_timeout)
        self.probe = ClusterClient(probe_config, session, in_process=member.in_process)
        self.endpoint = endpoint_of(member)
        self._last: dict[str, Any] | None = None  # the report as last written (or found at start)
        self._lease: dict[str, Any] | None = None  # the Lease as last written (or found at start)
        self._started = False  # whether the report and Lease written before a (re)start have been read
        # loop times: this agent's last heartbeat (its rhythm), last report write, last Lease renewal
        self._beat_at = 0.0
        self._last_written = float("-inf")
        self._renewed_at = float("-inf")
        self.renew_at = TOKEN_RENEW_AT
        self.refusals = 0  # probes in a row the member refused
        self.answered_at: float | None = None  # loop time of the last `/readyz` the member answered
        self._version: str | None = None
        self._version_at = 0.0  # loop time `_version` was asked
        self.gone: str | None = None  # why the member is gone for good: the agent reports it once more, then stops

    def member_gone(self, reason: str) -> None:
        """The member's cluster no longer exists: the next report says so, and is the last."""
        self.gone = self.gone or reason

    async def close(self) -> None:
        await self.probe.close()

    async def observe(self, properties: Cache, probe: bool = True) -> Observation:
        """`properties`: the member's ClusterProperties as its watch keeps them (no list per heartbeat). Without
        `probe`, the member's last answer (less than a heartbeat old) stands for `/readyz`."""
        seen = Observation()
        step = "/readyz"
        loop = asyncio.get_running_loop()
        try:
            if probe:
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
            if probe and (self._version is None or loop.time() - self._version_at >= VERSION_SECONDS):
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

    async def _resume(self, now: float) -> None:
        """Reads the report and Lease this agent wrote before it (re)started. A Lease it renewed less than a heartbeat
        ago sets its rhythm (the member answered then, which stands for a first probe); one that holds for two more
        heartbeats has the first come after one (its member healthy by its report), spread over the next; a report
        written less than its interval ago is written again only when what it says changes: a restarted fleet neither
        probes every member, renews every Lease nor rewrites every report (and then every profile) at once. Agents
        that start together without one (every member of a new embedded fleet) spread their heartbeats over the
        interval."""
        self._last = await self._read(CLUSTER_REPORTS, self.cluster_id, cached=True)
        self._lease = await self._read(LEASES, ENDPOINT_LEASE, cached=True)
        self._started = True
        wall = datetime.now(UTC)
        renewed = self._own_lease_age(wall)
        if renewed is not None and 0 <= renewed < self.heartbeat * 0.9:
            self._beat_at = self._renewed_at = now - renewed
            self.answered_at = self._beat_at
        elif renewed is not None and 0 <= renewed < self.lease_seconds - 2 * self.heartbeat \
                and _says_healthy(self._last):
            # late, but the Lease holds for two more heartbeats: the first comes after one, spread over the next
            # (a restart of many agents is over before they all probe and renew)
            self._beat_at = self._renewed_at = now + random.uniform(0, 0.9) * self.heartbeat
            self.answered_at = now
        else:
            self._beat_at = now - random.uniform(0, 0.9) * self.heartbeat
        age = report_age(self._last, wall)
        if age is not None and 0 <= age < self._report_interval(_says_healthy(self._last)) * 0.9:
            self._last_written = now - age

    def _own_lease_age(self, wall: datetime) -> float | None:
        spec = objects.spec(self._lease or {})
        renewed = parse_time(spec.get("renewTime"))
        if renewed is None or spec.get("holderIdentity") != self.cluster_id \
                or spec.get("leaseDurationSeconds") != self.lease_seconds:
            return None
        return (wall - renewed).total_seconds()

    def _report_interval(self, healthy: bool) -> float:
        """While the member does not answer, its Lease is not renewed: the report shows the agent alive."""
        return self.report_refresh if healthy else self.heartbeat

    async def _read(self, resource: Resource, name: str, cached: bool = False) -> dict[str, Any] | None:
        """`cached`: from the watch cache when there is one (not after a 409: it may be behind our own write)."""
        cache = self.hub_cache(resource) if cached and self.hub_cache is not None else None
        if cache is not None:
            with contextlib.suppress(TimeoutError):
                await cache.wait_synced(self.probe.config.timeout)
                return cache.get((self.hub_namespace, name))
        try:
            return await self.hub.get(resource, name, self.hub_namespace)
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
        # a new join: the hub namespace may be new too, without the report and Lease this agent last wrote there
        self._last, self._lease = None, None
        log.info("hub token taken from the member's Secret %s/%s cluster=%s", SYSTEM_NAMESPACE,
                 HUB_KUBECONFIG_SECRET, self.cluster_id)
        return True

    async def report(self, properties: Cache) -> float:
        """A heartbeat, or a trigger between two (a ClusterProperty changed): observe, renew the Lease and write the
        report when due; returns seconds to the next heartbeat."""
        await self.renew_token()
        loop = asyncio.get_running_loop()
        if not self._started:
            await self._resume(loop.time())
        now = loop.time()
        if now - self._beat_at >= self.heartbeat * 0.9:
            self._beat_at = now
        fresh = self.answered_at is not None and 0 <= now - self.answered_at < self.heartbeat * 0.9
        seen = await self.observe(properties, probe=self._beat_at == now or not fresh)
        if seen.readyz_error is None and self._beat_at - self._renewed_at >= self.heartbeat * 0.9:  # or deleted
            await self._renew_lease()
        await self._write(seen)
        wait = max(0.05, self.heartbeat - (loop.time() - self._beat_at))
        return min(wait, REFUSAL_RECHECK_SECONDS) if self.refusals else wait

    async def report_gone(self) -> None:
        """The last report of a member that is gone (`member_gone`): its control plane is no more."""
        await self._write(Observation(readyz_error=self.gone))

    def deleted(self, resource: Resource, name: str) -> None:
        """Its report or Lease was deleted on the hub (by someone else): written again at the next look, not after
        `report_refresh`, so that its profile does not say AgentNotConnected or Unknown meanwhile."""
        if resource == CLUSTER_REPORTS and name == self.cluster_id:
            self._last = None
        elif resource == LEASES and name == ENDPOINT_LEASE:
            self._lease, self._renewed_at = None, float("-inf")

    async def _renew_lease(self) -> None:
        """Renews the Lease as last written (a 409 or 404: someone else wrote or deleted it, read it again)."""
        for attempt in range(2):
            now = rfc3339_micro()
            spec = {"holderIdentity": self.cluster_id, "leaseDurationSeconds": self.lease_seconds, "renewTime": now,
                    "acquireTime": objects.spec(self._lease or {}).get("acquireTime") or now}
            try:
                if self._lease is None:
                    self._lease = await self.hub.create(LEASES, {
                        "apiVersion": LEASES.api_version, "kind": LEASES.kind,
                        "metadata": {"name": ENDPOINT_LEASE, "namespace": self.hub_namespace}, "spec": spec,
                    }, field_manager=FIELD_MANAGER)
                else:
                    self._lease = await self.hub.update(LEASES, {**self._lease, "spec": spec},
                                                        field_manager=FIELD_MANAGER)
                break
            except (Conflict, AlreadyExists, NotFound) as exc:
                if attempt:
                    raise
                if isinstance(exc, NotFound):  # deleted, or its namespace made again: the report is gone too
                    self._last = None
                self._lease = await self._read(LEASES, ENDPOINT_LEASE)
        self._renewed_at = self._beat_at

    async def _write(self, seen: Observation) -> None:
        want = desired_report(self.cluster_id, self.hub_namespace, seen, self.endpoint, self._last,
                              rfc3339(datetime.now(UTC)))
        last_status = (self._last or {}).get("status")
        changed = last_status is None or without_observation_times(want["status"]) != without_observation_times(
            last_status
        )
        if changed or self._beat_at - self._last_written >= self._report_interval(seen.readyz_error is None) * 0.9:
            self._last = await self.hub.apply(CLUSTER_REPORTS, want, FIELD_MANAGER)
            self._last_written = self._beat_at
            if changed:
                log.info("report cluster=%s healthy=%s", self.cluster_id, seen.readyz_error is None)


def _says_healthy(report: dict[str, Any] | None) -> bool:
    return condition_true(objects.status(report or {}).get("conditions"), CONTROL_PLANE_HEALTHY)
