"""The hub's ClusterProfile manager: one profile per registered member, its status kept fresh but cheap.

A member is registered while its hub namespace (`clusterset-<id>`, labelled with the id) exists; the
profile is created then, and deleted when the namespace goes (`clusterset leave`). Status follows the
agent's ClusterReport. KEP-4322 asks for at most one status write per 30 s per profile; we write at
once when anything but observation times changed, otherwise at most every `min_write_interval`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clusterset.api.inventory import FIELD_MANAGER
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.client import ClusterClient
from clusterset.client.errors import AlreadyExists, NotFound
from clusterset.inventory.profile_status import (
    AccessProvider,
    desired_profile,
    desired_status,
    report_age,
    without_observation_times,
)

log = logging.getLogger(__name__)


@dataclass
class ProfileManager:
    hub: ClusterClient
    namespace: str  # the ClusterSet's namespace, labelled multicluster.x-k8s.io/clusterset=<set>
    grace_seconds: float = 40.0
    min_write_interval: float = 30.0
    providers: tuple[AccessProvider, ...] = ()
    _written: dict[str, float] = field(default_factory=dict)

    async def reconcile(
        self,
        cluster_id: str,
        member_ns: dict[str, Any] | None,
        report: dict[str, Any] | None,
        profile: dict[str, Any] | None,
    ) -> float | None:
        """Make the profile match; returns when to look again (staleness and rate limits are timed)."""
        if member_ns is None or member_ns["metadata"].get("deletionTimestamp"):
            self._written.pop(cluster_id, None)
            if profile is not None:
                try:
                    await self.hub.delete(CLUSTER_PROFILES, cluster_id, self.namespace)
                    log.info("profile deleted cluster=%s", cluster_id)
                except NotFound:
                    pass
            return None
        if profile is None:
            try:
                profile = await self.hub.create(CLUSTER_PROFILES, desired_profile(cluster_id, self.namespace),
                                                field_manager=FIELD_MANAGER)
                log.info("profile created cluster=%s", cluster_id)
            except AlreadyExists:
                profile = await self.hub.get(CLUSTER_PROFILES, cluster_id, self.namespace)
        now = datetime.now(UTC)
        current = profile.get("status") or {}
        want = desired_status(cluster_id, report, current, now, self.grace_seconds, self.providers)
        loop_now = asyncio.get_running_loop().time()
        changed = without_observation_times(want) != without_observation_times(current)
        allowed_in = self.min_write_interval - (loop_now - self._written.get(cluster_id, -1e9))
        pending: float | None = None
        if changed or (want != current and allowed_in <= 0):
            body = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
                    "metadata": {"name": cluster_id, "namespace": self.namespace}, "status": want}
            await self.hub.apply(CLUSTER_PROFILES, body, FIELD_MANAGER, subresource="status")
            self._written[cluster_id] = loop_now
        elif want != current:
            pending = allowed_in  # only freshness changed: write when the rate limit allows
        age = report_age(report, now)
        stale_in = None if age is None or age > self.grace_seconds else self.grace_seconds - age + 0.05
        nexts = [t for t in (stale_in, pending) if t is not None]
        return max(0.05, min(nexts)) if nexts else None
