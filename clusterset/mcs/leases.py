"""Endpoint TTL (KEP-1645 §Tracking Endpoints): a member's agent renews one Lease in its hub namespace while its
member answers; the hub withdraws the member's endpoints everywhere once the Lease runs out."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clusterset.api import objects
from clusterset.api.mcs import ENDPOINT_LEASE
from clusterset.api.resources import LEASES
from clusterset.api.times import parse_time, rfc3339_micro
from clusterset.client.errors import ApiError, ConnectionFailed
from clusterset.mcs.sync import ensure
from clusterset.runtime import Request, Result
from clusterset.runtime.hubview import NO_VIEW_RETRY, SYNC_TIMEOUT, HubViews

log = logging.getLogger(__name__)

LEASE_KEY = "endpoint-lease"
Obj = dict[str, Any]


# how long after the agent's `/readyz` probe a renewal comes, when it follows the agent's rhythm
AFTER_THE_AGENT = 0.25


class LeaseRenewer:
    """Renews a member's endpoint Lease every `renew` seconds, for `duration` seconds each time, while the member's
    API server answers `/readyz` (an agent that cannot see its member must not vouch for its endpoints).

    `answered(member)`: the loop time of the agent's last `/readyz` the member answered (None: unknown, or its
    last probe failed). An answer less than half an interval old stands for the renewal's own probe, and the next
    renewal is timed just after the agent's next probe (an interval after its last; never later than an interval),
    so that it finds a fresh answer: the fleet's idle heartbeat asks `/readyz` once per member and interval, not
    twice."""

    def __init__(self, views: HubViews, duration: int, renew: float,
                 answered: Callable[[str], float | None] | None = None) -> None:
        self.views = views
        self.duration = duration
        self.renew = renew
        self.answered = answered or (lambda _member: None)
        self._renewed: set[str] = set()  # members renewed since the start

    def _next(self, member: str, answered: float | None = None, now: float = 0.0) -> Result:
        """The first renewal after a start is followed after a random part of the interval: members started together
        (every member of an embedded fleet) then spread their renewals over it instead of all writing at once.
        Later ones follow the agent's probes (`answered`, at loop time `now`) when there are any."""
        if member not in self._renewed:
            self._renewed.add(member)
            return Result(requeue_after=self.renew * random.uniform(0.1, 1.0))
        due = None if answered is None else answered + self.renew + AFTER_THE_AGENT - now  # after its next probe
        return Result(requeue_after=self.renew if due is None or due <= 0 else min(self.renew, due))

    def _fresh(self, answered: float | None, now: float) -> bool:
        return answered is not None and 0 <= now - answered < self.renew / 2

    def _resumed(self, member: str, lease: Obj | None) -> float | None:
        """Seconds until the renewal due after a restart, when this member's Lease was renewed (as we renew it) less
        than an interval ago: a restarted fleet keeps its rhythm instead of renewing every member's Lease at once.
        Not renewing early takes nothing away: a renewal only moves the expiry later."""
        spec = objects.spec(lease or {})
        renewed = parse_time(spec.get("renewTime"))
        if renewed is None or spec.get("holderIdentity") != member or spec.get("leaseDurationSeconds") != self.duration:
            return None
        age = (datetime.now(UTC) - renewed).total_seconds()
        return self.renew - age if 0 <= age < self.renew else None

    async def reconcile(self, req: Request) -> Result | None:
        view = self.views(req.cluster.name)
        if view is None:
            return Result(requeue_after=NO_VIEW_RETRY)
        leases = view.cluster.cache(LEASES, view.namespace)
        await leases.wait_synced(SYNC_TIMEOUT)
        if req.cluster.name not in self._renewed:  # the first pass since this agent started
            due = self._resumed(req.cluster.name, leases.get((view.namespace, ENDPOINT_LEASE)))
            if due is not None:
                self._renewed.add(req.cluster.name)
                return Result(requeue_after=max(0.05, due))
        loop = asyncio.get_running_loop()
        answered = self.answered(req.cluster.name)
        if not self._fresh(answered, loop.time()):
            try:
                await req.cluster.client.request("GET", "/readyz")
            except (ApiError, ConnectionFailed, OSError, TimeoutError) as exc:
                log.info("endpoint lease not renewed, the member does not answer cluster=%s: %s", req.cluster.name,
                         exc)
                return Result(requeue_after=self.renew)
        have = leases.get((view.namespace, ENDPOINT_LEASE))
        now = rfc3339_micro()
        spec = {"holderIdentity": req.cluster.name, "leaseDurationSeconds": self.duration, "renewTime": now,
                "acquireTime": objects.spec(have or {}).get("acquireTime") or now}
        await ensure(view.cluster.client, LEASES,
                     leases, {"metadata": {"name": ENDPOINT_LEASE, "namespace": view.namespace}, "spec": spec})
        return self._next(req.cluster.name, answered, loop.time())
