"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.

Why it is safe: every write carries the Lease's resourceVersion, so of two replicas racing for it
one gets 409 Conflict. A candidate judges expiry by its *own* clock: a lease counts as expired only
after its record has not changed for `leaseDurationSeconds` of local time, so clock skew between
replicas does not matter. The leader gives up acting once it has failed to renew for
`renew_deadline`, which is shorter than the lease duration: it stops before anyone else may start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import os
import random
import socket
import time
import uuid
from typing import Any

from clusterset.api.resources import LEASES
from clusterset.api.times import rfc3339_micro
from clusterset.client import ClusterClient
from clusterset.client.errors import AlreadyExists, Conflict, NotFound
from clusterset.runtime.logs import bind

log = logging.getLogger(__name__)


def default_identity() -> str:
    """hostname_uuid, as client-go examples use: unique per process even on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}_{os.getpid()}"


def _micro_time(at: dt.datetime | None = None) -> str:
    return rfc3339_micro(at)


class LeaderElection:
    """Campaigns for, holds and releases one Lease. The Manager drives it; `is_leader` tells the state."""

    def __init__(
        self,
        client: ClusterClient,
        namespace: str,
        name: str,
        identity: str | None = None,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_cancel: bool = True,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError(
                f"leader election {namespace}/{name}: need retry_period < renew_deadline < lease_duration, "
                f"got {retry_period} < {renew_deadline} < {lease_duration}"
            )
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self.is_leader = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._log = bind(log, lease=f"{namespace}/{name}", identity=self.identity)

    # ------------------------------------------------------------------ campaign
    async def acquire(self) -> None:
        """Returns once this replica holds the lease (retrying every ~retry_period)."""
        self._log.info("campaigning for the lease")
        while True:
            if await self._try() == "held":
                self.is_leader = True
                self._log.info("acquired the lease")
                return
            await asyncio.sleep(self.retry_period * random.uniform(1.0, 1.2))

    async def hold(self) -> None:
        """Renews every retry_period; returns when leadership is lost (another holder, or no successful
        renewal for renew_deadline). If cancelled while leading, releases the lease (`release_on_cancel`)
        so a successor need not wait for it to expire."""
        last_renew = time.monotonic()
        try:
            while True:
                # never sleep past the deadline: the leader must stop acting before a candidate may take over
                left = self.renew_deadline - (time.monotonic() - last_renew)
                await asyncio.sleep(max(min(self.retry_period, left), 0.0))
                left = self.renew_deadline - (time.monotonic() - last_renew)
                outcome = "error"
                if left > 0:
                    with contextlib.suppress(TimeoutError):
                        outcome = await asyncio.wait_for(self._try(), left)
                if outcome == "held":
                    last_renew = time.monotonic()
                elif outcome == "other" or time.monotonic() - last_renew >= self.renew_deadline:
                    self.is_leader = False
                    self._log.warning("lost the lease", reason="held by another" if outcome == "other"
                                      else "renew deadline passed")
                    return
        except asyncio.CancelledError:
            if self.is_leader and self.release_on_cancel:
                await self.release()
            self.is_leader = False
            raise

    async def release(self) -> None:
        """Gives the lease up (holder cleared, duration 1 s) if this replica still holds it. Bounded by
        `renew_deadline`: a shutdown must not wait on an unreachable hub, the lease expires anyway."""
        self.is_leader = False
        try:
            await asyncio.wait_for(self._release(), self.renew_deadline)
        except Exception as exc:  # ApiError, ConnectionFailed, a credential plugin failing, a timeout
            self._log.warning("could not release the lease; it will expire", error=repr(exc))

    async def _release(self) -> None:
        lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            return
        now = _micro_time()
        spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=now, renewTime=now)
        await self.client.update(LEASES, {**lease, "spec": spec})
        self._log.info("released the lease")

    # ------------------------------------------------------------------ one attempt
    async def _try(self) -> str:
        """One acquire-or-renew: "held" (we hold it now), "other" (someone else validly does), "error"."""
        try:
            return await self._try_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ApiError, ConnectionFailed, a credential plugin failing: try again later
            self._log.warning("lease request failed", error=repr(exc))
            return "error"

    async def _try_once(self) -> str:
        now = _micro_time()
        duration = math.ceil(self.lease_duration)
        try:
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFound:
            fresh = {"holderIdentity": self.identity, "leaseDurationSeconds": duration, "acquireTime": now,
                     "renewTime": now, "leaseTransitions": 0}
            try:
                created = await self.client.create(LEASES, {
                    "apiVersion": LEASES.api_version, "kind": LEASES.kind,
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": fresh,
                })
            except (AlreadyExists, Conflict):
                return "other"
            self._observe(created)
            return "held"
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity:
            held_for = float(spec.get("leaseDurationSeconds") or duration)
            if time.monotonic() < self._observed_at + held_for:
                return "other"
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=duration, renewTime=now)
        try:
            updated = await self.client.update(LEASES, {**lease, "spec": spec})
        except Conflict:
            return "other"
        self._observe(updated)
        return "held"

    def _observe(self, lease: dict[str, Any]) -> None:
        """Notes when the lease record last changed, by the local monotonic clock."""
        spec = lease.get("spec") or {}
        record = tuple(spec.get(k) for k in ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                                             "leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()
