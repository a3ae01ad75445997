"""The hub's ClusterProfile manager: one profile per registered member, its status kept fresh but cheap.

A member is registered while its hub namespace (`clusterset-<id>`, labelled with the id) exists; the
profile is created then, and deleted when the namespace goes (`clusterset leave`). Status follows the
agent's ClusterReport; the agent is alive while its report or its Lease changes. KEP-4322 allows at most one
status write per 30 s per profile, with a burst of 10: a real change is written as soon as the budget allows (at
once, unless the member flaps), a change of observation times only is written at most every `min_write_interval`.
A profile this manager creates waits `first_status_wait` for the agent's first report before its first status
says `AgentNotConnected`; a joined member's report that goes missing while its agent renews its Lease is waited for,
up to a grace period, before its profile says so (the agent writes it again at once).

Profiles of another cluster manager in the same namespace are never touched, even when their name is
one of our member ids: the manager of a profile is immutable, and so is whose profile it is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clusterset.api.inventory import FIELD_MANAGER, JOINED, MANAGER_NAME
from clusterset.api.objects import condition_true
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.client import ClusterClient
from clusterset.client.errors import AlreadyExists, NotFound
from clusterset.inventory.profile_status import (
    AccessProvider,
    desired_profile,
    desired_status,
    without_observation_times,
)

log = logging.getLogger(__name__)


@dataclass
class WriteBudget:
    """One profile's status writes as a token bucket: a token every `interval` seconds, `burst` at most."""

    interval: float
    burst: int
    tokens: float
    refilled: float  # loop time the tokens were counted at
    written: float = float("-inf")  # loop time of the last write

    @classmethod
    def full(cls, interval: float, burst: int, now: float) -> WriteBudget:
        return cls(interval, burst, float(burst), now)

    def wait(self, now: float, freshness_only: bool) -> float:
        """Seconds until a write is allowed (<= 0: now). Freshness alone also waits `interval` since the
        last write, so heartbeats cost one write per interval and leave the burst for real changes."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.refilled) / self.interval)
        self.refilled = now
        wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.interval
        if freshness_only:
            wait = max(wait, self.written + self.interval - now)
        return wait

    def spend(self, now: float) -> None:
        self.tokens -= 1
        self.written = now


def is_ours(profile: dict[str, Any]) -> bool:
    return ((profile.get("spec") or {}).get("clusterManager") or {}).get("name") == MANAGER_NAME


@dataclass
class ProfileManager:
    hub: ClusterClient
    namespace: str  # the ClusterSet's namespace, labelled multicluster.x-k8s.io/clusterset=<set>
    grace_seconds: float = 40.0
    min_write_interval: float = 30.0
    write_burst: int = 10
    providers: tuple[AccessProvider, ...] = ()
    # a profile this manager creates gets its first status with its agent's first report, or after this long
    # (then `AgentNotConnected`): one status write instead of two for a member whose agent is already running
    first_status_wait: float = 5.0
    _budgets: dict[str, WriteBudget] = field(default_factory=dict)
    # our last status write per member: (the profile's resourceVersion before it, the status written); the
    # cache may not have seen the write yet when the next trigger comes
    _applied: dict[str, tuple[str | None, dict[str, Any]]] = field(default_factory=dict)
    _foreign: set[str] = field(default_factory=set)
    _seen: dict[str, tuple[str, float]] = field(default_factory=dict)  # observedTime, hub loop time first seen
    _renewals: dict[str, tuple[str, float]] = field(default_factory=dict)  # Lease renewTime, hub loop time first seen
    _created: dict[str, float] = field(default_factory=dict)  # hub loop time this manager created the profile
    _report_gone: dict[str, float] = field(default_factory=dict)  # hub loop time a joined member's report was missed

    async def reconcile(
        self,
        cluster_id: str,
        member_ns: dict[str, Any] | None,
        report: dict[str, Any] | None,
        profile: dict[str, Any] | None,
        lease: dict[str, Any] | None = None,
    ) -> float | None:
        """Make the profile match; returns when to look again (staleness and rate limits are timed). `lease`: the
        agent's Lease in the member's hub namespace."""
        if profile is not None and not is_ours(profile):
            self._not_ours(cluster_id, profile, member_ns is not None)
            return None
        self._foreign.discard(cluster_id)
        if member_ns is None or member_ns["metadata"].get("deletionTimestamp"):
            self._budgets.pop(cluster_id, None)
            self._applied.pop(cluster_id, None)
            self._seen.pop(cluster_id, None)
            self._renewals.pop(cluster_id, None)
            self._created.pop(cluster_id, None)
            self._report_gone.pop(cluster_id, None)
            if profile is not None:
                try:
                    await self.hub.delete(CLUSTER_PROFILES, cluster_id, self.namespace,
                                          preconditions={"uid": profile["metadata"]["uid"]})
                    log.info("profile deleted cluster=%s", cluster_id)
                except NotFound:
                    pass
            return None
        if profile is None:
            try:
                profile = await self.hub.create(CLUSTER_PROFILES, desired_profile(cluster_id, self.namespace),
                                                field_manager=FIELD_MANAGER)
                self._created[cluster_id] = asyncio.get_running_loop().time()
                log.info("profile created cluster=%s", cluster_id)
            except AlreadyExists:  # the cache has not seen it yet (ours) or it is another manager's
                profile = await self.hub.get(CLUSTER_PROFILES, cluster_id, self.namespace)
                if not is_ours(profile):
                    self._not_ours(cluster_id, profile, True)
                    return None
        version = profile["metadata"].get("resourceVersion")
        applied = self._applied.get(cluster_id)
        if applied is not None and applied[0] == version:
            current = applied[1]
        else:  # the cache has caught up (or we never wrote)
            self._applied.pop(cluster_id, None)
            current = profile.get("status") or {}
        now = datetime.now(UTC)
        loop_now = asyncio.get_running_loop().time()
        created = self._created.get(cluster_id)
        if created is not None:
            if report is None and not current and loop_now - created < self.first_status_wait:
                return self.first_status_wait - (loop_now - created)  # the report will wake us sooner
            del self._created[cluster_id]
        if report is None and condition_true(current.get("conditions"), JOINED):
            # its report deleted (by hand, or by a restore): an agent that still renews its Lease writes the report
            # again at once, so the profile waits for it, up to a grace period, rather than flip to
            # AgentNotConnected and back
            gone = self._report_gone.setdefault(cluster_id, loop_now)
            lease_age = self._lease_age(cluster_id, lease, loop_now)
            if lease_age is not None and max(lease_age, loop_now - gone) <= self.grace_seconds:
                return self.grace_seconds - max(lease_age, loop_now - gone) + 0.05
        else:
            self._report_gone.pop(cluster_id, None)
        age = self._silence(cluster_id, report, lease, loop_now)
        renewed = self._renewals.get(cluster_id)
        want = desired_status(cluster_id, report, current, now, self.grace_seconds, self.providers, age,
                              renewed[0] if renewed else None)
        pending: float | None = None
        if want != current:
            budget = self._budgets.get(cluster_id)
            if budget is None:
                budget = self._budgets[cluster_id] = WriteBudget.full(self.min_write_interval, self.write_burst,
                                                                      loop_now)
            freshness_only = without_observation_times(want) == without_observation_times(current)
            pending = budget.wait(loop_now, freshness_only)
            if pending <= 0:
                body = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
                        "metadata": {"name": cluster_id, "namespace": self.namespace}, "status": want}
                written = await self.hub.apply(CLUSTER_PROFILES, body, FIELD_MANAGER, subresource="status")
                budget.spend(loop_now)
                self._applied[cluster_id] = (version, written.get("status") or want)
                pending = None
        stale_in = None if age is None or age > self.grace_seconds else self.grace_seconds - age + 0.05
        nexts = [t for t in (stale_in, pending) if t is not None]
        return max(0.05, min(nexts)) if nexts else None

    def _silence(self, cluster_id: str, report: dict[str, Any] | None, lease: dict[str, Any] | None,
                 now: float) -> float | None:
        """Seconds since this hub saw the agent's report's `observedTime` or its Lease's `renewTime` change (the
        later), by the hub's own clock; None before the agent's first report.

        As the node lifecycle controller times kubelet heartbeats: comparing the agent's timestamps with
        the hub's clock would make a member whose clock is behind look silent. After a hub restart a
        report counts as fresh from when it is first seen, so a dead agent shows up one grace period later."""
        observed = ((report or {}).get("status") or {}).get("observedTime")
        if not observed:
            self._seen.pop(cluster_id, None)
            return None
        age = now - _first_seen(self._seen, cluster_id, str(observed), now)
        lease_age = self._lease_age(cluster_id, lease, now)
        return age if lease_age is None else min(age, lease_age)

    def _lease_age(self, cluster_id: str, lease: dict[str, Any] | None, now: float) -> float | None:
        """Seconds since this hub saw the agent's Lease renewed, by its own clock; None without a Lease of the
        agent's."""
        spec = (lease or {}).get("spec") or {}
        renewed = spec.get("renewTime")
        if not renewed or spec.get("holderIdentity") != cluster_id:
            self._renewals.pop(cluster_id, None)
            return None
        return now - _first_seen(self._renewals, cluster_id, str(renewed), now)

    def _not_ours(self, cluster_id: str, profile: dict[str, Any], member: bool) -> None:
        if member and cluster_id not in self._foreign:
            manager = ((profile.get("spec") or {}).get("clusterManager") or {}).get("name")
            log.warning("profile of member cluster=%s not managed: %s/%s belongs to cluster manager %r; "
                        "give the member another id or remove that profile", cluster_id, self.namespace,
                        cluster_id, manager)
            self._foreign.add(cluster_id)
        self._budgets.pop(cluster_id, None)
        self._applied.pop(cluster_id, None)


def _first_seen(seen: dict[str, tuple[str, float]], cluster_id: str, value: str, now: float) -> float:
    """When this hub first saw `value` (a timestamp the agent writes) for the member, by the hub's clock."""
    was = seen.get(cluster_id)
    if was is None or was[0] != value:
        was = seen[cluster_id] = (value, now)
    return was[1]
