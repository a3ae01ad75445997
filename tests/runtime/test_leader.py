"""Leader election on a Lease: one active replica, takeover on stop or expiry, a lost lease stops controllers."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from clusterset.api.resources import CONFIG_MAPS, LEASES
from clusterset.client import ClusterClient, ConnectionFailed
from clusterset.runtime import Controller, LeaderElection, Manager, Request, StaticProvider, Watch
from clusterset.testing import ClusterInfo
from tests.runtime.util import MINE, client_of, cm, eventually

LEASE = 2.0


class Replica:
    """A manager with one controller, campaigning on the shared Lease `default/runtime-test`."""

    def __init__(self, info: ClusterInfo, identity: str, release_on_cancel: bool = True) -> None:
        self.identity = identity
        self.client = client_of(info)
        self.calls: list[str] = []
        self.election = LeaderElection(self.client, "default", "runtime-test", identity, lease_duration=LEASE,
                                       renew_deadline=1.5, retry_period=0.2, release_on_cancel=release_on_cancel)
        self.manager = Manager(StaticProvider({"c": self.client}), name=identity, leader_election=self.election)
        self.controller = Controller("work", self.reconcile, [Watch(CONFIG_MAPS, namespace="default",
                                                                    label_selector=MINE)], resync_period=0.1)
        self.manager.add(self.controller)

    async def reconcile(self, req: Request) -> None:
        self.calls.append(req.name)

    async def close(self) -> None:
        await self.manager.stop()
        await self.client.close()


async def lease(client: ClusterClient) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get(LEASES, "runtime-test", namespace="default"))["spec"]
    return spec


async def hold_for(seconds: float, *checks: Any) -> None:
    """Asserts that every check stays true for `seconds` (an invariant, checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for check in checks:
            assert check(), check.__doc__
        await asyncio.sleep(0.05)


async def test_one_replica_leads_and_a_released_lease_passes_at_once(cluster: ClusterInfo,
                                                                     client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("work"))
    one, two = Replica(cluster, "one"), Replica(cluster, "two")
    try:
        await one.manager.start()
        await eventually(lambda: one.manager.is_leader and one.calls, message="the first replica to lead")
        await two.manager.start()

        def follower_idle() -> bool:
            """the follower must neither lead nor reconcile"""
            return not two.manager.is_leader and not two.controller.running and not two.calls

        await hold_for(3 * 0.2 * 5, follower_idle)  # many renew periods
        spec = await lease(client)
        assert spec["holderIdentity"] == "one" and spec["leaseTransitions"] == 0
        assert spec["leaseDurationSeconds"] == 2 and spec["acquireTime"] and spec["renewTime"]

        stopped = time.monotonic()
        await one.manager.stop()  # releases the lease
        await eventually(lambda: two.manager.is_leader and two.calls, timeout=LEASE, message="takeover")
        assert time.monotonic() - stopped < LEASE
        spec = await lease(client)
        assert spec["holderIdentity"] == "two" and spec["leaseTransitions"] == 1
        assert two.manager.metrics.registry.get_sample_value("leader_election_master_status",
                                                             {"name": "runtime-test"}) == 1
    finally:
        await one.close()
        await two.close()


async def test_a_crashed_leaders_lease_is_taken_over_after_it_expires(cluster: ClusterInfo,
                                                                      client: ClusterClient) -> None:
    one, two = Replica(cluster, "one", release_on_cancel=False), Replica(cluster, "two")
    try:
        await one.manager.start()
        await eventually(lambda: one.manager.is_leader)
        await two.manager.start()
        await hold_for(0.5, lambda: not two.manager.is_leader)
        stopped = time.monotonic()
        await one.manager.stop()  # stops renewing without releasing: as a crash looks to the others
        await eventually(lambda: two.manager.is_leader, timeout=LEASE + 10, message="takeover after expiry")
        waited = time.monotonic() - stopped
        # not before the lease could have expired (the last renewal was at most a retry period before the stop);
        # how long after depends on the machine's load, so the upper bound is only the eventually's
        assert waited >= LEASE - 0.6, waited
    finally:
        await one.close()
        await two.close()


async def test_losing_the_lease_stops_the_controllers_until_it_is_regained(cluster: ClusterInfo,
                                                                           client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("work"))
    one = Replica(cluster, "one")
    try:
        await one.manager.start()
        await eventually(lambda: one.controller.running and one.calls)
        # another holder takes the lease (as a replica that saw it expire during a long pause would)
        current = await client.get(LEASES, "runtime-test", namespace="default")
        current["spec"].update(holderIdentity="intruder", leaseDurationSeconds=3)
        await client.update(LEASES, current)
        await eventually(lambda: not one.controller.running and not one.manager.is_leader, timeout=LEASE,
                         message="controllers stopped")
        one.calls.clear()
        await hold_for(0.5, lambda: not one.calls)
        # the intruder stops renewing: the lease expires and the replica leads again
        await eventually(lambda: one.controller.running and one.calls, timeout=3 + LEASE + 2,
                         message="leading again")
        assert (await lease(client))["holderIdentity"] == "one"
    finally:
        await one.close()


class Unreachable:
    """A hub that cannot be reached: every lease request fails at once."""

    async def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionFailed("the hub is down")


async def test_a_leader_gives_up_at_the_renew_deadline_not_a_retry_period_later() -> None:
    election = LeaderElection(cast(ClusterClient, Unreachable()), "default", "deadline", "me", lease_duration=3.0,
                              renew_deadline=1.0, retry_period=0.9)
    election.is_leader = True
    started = time.monotonic()
    await asyncio.wait_for(election.hold(), 10)
    elapsed = time.monotonic() - started
    assert not election.is_leader
    # a failed renewal at 0.9 s, then the deadline at 1.0 s (sleeping a whole retry period would give 1.8 s)
    assert 1.0 <= elapsed < 1.5, elapsed


class Hanging:
    """A hub that accepts connections and never answers."""

    async def get(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_releasing_on_stop_does_not_wait_on_a_hub_that_never_answers() -> None:
    election = LeaderElection(cast(ClusterClient, Hanging()), "default", "hang", "me", lease_duration=3.0,
                              renew_deadline=0.5, retry_period=0.2)
    election.is_leader = True
    holding = asyncio.create_task(election.hold())
    await asyncio.sleep(0.1)
    holding.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(holding, 10)
    assert time.monotonic() - started < 2.0  # the release gave up after renew_deadline
    assert not election.is_leader
