"""Controllers on the real server: coalescing, retries with backoff, one worker per key, cross-cluster keys."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES
from clusterset.client import ClientConfig, ClusterClient
from clusterset.runtime import (
    Controller,
    Manager,
    ObjectKey,
    RateLimiter,
    Request,
    Result,
    StaticProvider,
    Watch,
)
from clusterset.runtime.informer import MODIFIED, Event
from clusterset.testing import ClusterInfo, ServerThread
from tests.runtime.util import MINE, client_of, cm, eventually


@contextlib.asynccontextmanager
async def on_unreachable_cluster(controller: Controller) -> AsyncIterator[Manager]:
    """`controller` running in a Manager with one engaged cluster, `c`, whose API is never asked (keys are enqueued
    by hand)."""
    manager = Manager()
    manager.add(controller)
    async with manager, ClusterClient.from_config(ClientConfig(server="http://127.0.0.1:1")) as unused:
        await manager.add_cluster("c", unused, owned=False)
        yield manager

MY_CONFIGMAPS = Watch(CONFIG_MAPS, namespace="default", label_selector=MINE)


def value(req: Request) -> str | None:
    obj = req.cluster.cache(CONFIG_MAPS, "default", MINE).get(req.key)
    return obj["data"]["v"] if obj else None


async def test_a_burst_of_1000_updates_costs_a_handful_of_reconciles(cluster: ClusterInfo,
                                                                     client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("burst", v="0"))
    seen: list[str | None] = []
    busy = asyncio.Event()
    burst_written = asyncio.Event()

    async def reconcile(req: Request) -> None:
        seen.append(value(req))
        if len(seen) == 1:  # a slow reconcile: the burst lands while it runs
            busy.set()
            await burst_written.wait()

    controller = Controller("burst", reconcile, [MY_CONFIGMAPS])
    manager = Manager(StaticProvider({"c": client}))
    manager.add(controller)
    async with manager:
        await asyncio.wait_for(busy.wait(), 10)
        modified = Counter[str]()

        def count(event: Event) -> None:
            modified[event.type] += 1

        manager.cluster("c").informer(CONFIG_MAPS, "default", MINE).add_handler(count)
        for v in range(1, 1001):
            await client.patch(CONFIG_MAPS, "burst", {"data": {"v": str(v)}}, namespace="default")
        burst_written.set()
        await eventually(lambda: modified[MODIFIED] == 1000, message="all 1000 watch events")
        await eventually(lambda: seen[-1] == "1000" and controller.queue is not None
                         and controller.queue.pending() == 0, message="a reconcile of the final state")
    assert seen[0] == "0"
    assert 2 <= len(seen) <= 10, seen


async def test_a_failing_reconcile_backs_off_and_does_not_stop_the_others(cluster: ClusterInfo,
                                                                          client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("bad", v="1"))
    await client.create(CONFIG_MAPS, cm("good", v="1"))
    attempts: list[float] = []
    good_seen: list[str | None] = []
    other_seen: list[tuple[str, str | None]] = []
    broken = True

    async def flaky(req: Request) -> None:
        if req.name == "bad":
            attempts.append(time.monotonic())
            if broken:
                raise RuntimeError("the bad object is bad")
        else:
            good_seen.append(value(req))

    async def other(req: Request) -> None:
        other_seen.append((req.name, value(req)))

    flaky_ctrl = Controller("flaky", flaky, [MY_CONFIGMAPS], workers=1,
                            rate_limiter=RateLimiter(base_delay=0.05, max_delay=5.0, qps=0))
    manager = Manager(StaticProvider({"c": client}))
    manager.add(flaky_ctrl)
    manager.add(Controller("other", other, [MY_CONFIGMAPS]))
    async with manager:
        await eventually(lambda: len(attempts) >= 3, message="the bad key to be retried")
        # while "bad" keeps failing, the same worker reconciles "good", and the other controller both keys
        await client.patch(CONFIG_MAPS, "good", {"data": {"v": "2"}}, namespace="default")
        await eventually(lambda: "2" in good_seen and ("good", "2") in other_seen,
                         message="the others to keep reconciling")
        await eventually(lambda: len(attempts) >= 6, message="six attempts")
        # the delays double (0.2, 0.4, 0.8 s from the third failure on; a loaded machine only adds to each)
        gaps = [b - a for a, b in itertools.pairwise(attempts[2:6])]
        assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(gaps)), gaps
        assert gaps[-1] >= 0.05 * 2 ** 4 * 0.9, gaps
        # an event on the failing key reaches the other controller at once
        await client.patch(CONFIG_MAPS, "bad", {"data": {"v": "2"}}, namespace="default")
        await eventually(lambda: ("bad", "2") in other_seen, message="the other controller to see the bad key")
        errors = manager.metrics.registry.get_sample_value(
            "controller_runtime_reconcile_errors_total", {"controller": "flaky", "cluster": "c"})
        assert errors is not None and errors >= 6
        broken = False
        item = ("c", ObjectKey("default", "bad"))
        assert flaky_ctrl.queue is not None and flaky_ctrl.queue.num_requeues(item) >= 5
        await eventually(lambda: flaky_ctrl.queue is not None and flaky_ctrl.queue.num_requeues(item) == 0,
                         timeout=20, message="a success to reset the backoff")


async def test_workers_never_share_a_key_and_clusters_are_independent(server: ServerThread) -> None:
    clients = {name: client_of(server.add_cluster(controllers=False)) for name in ("a", "b")}
    active: set[tuple[str, Any]] = set()
    overlaps: list[tuple[str, Any]] = []
    runs = Counter[tuple[str, Any]]()
    both_clusters = asyncio.Barrier(2)

    async def reconcile(req: Request) -> None:
        item = (req.cluster.name, req.key)
        if item in active:
            overlaps.append(item)
        active.add(item)
        try:
            if req.key == "shared" and runs[item] == 0:
                # both clusters' "shared" must be in flight at once, or this times out
                await asyncio.wait_for(both_clusters.wait(), 10)
            await asyncio.sleep(random.uniform(0, 0.004))
        finally:
            active.discard(item)
            runs[item] += 1

    controller = Controller("workers", reconcile, workers=4)
    manager = Manager(StaticProvider(clients))
    manager.add(controller)
    async with manager:
        await eventually(lambda: set(manager.clusters) == {"a", "b"})
        controller.enqueue("a", "shared")
        controller.enqueue("b", "shared")
        await eventually(lambda: runs[("a", "shared")] and runs[("b", "shared")], message="the shared key in both")
        keys = ["k0", "k1", "k2"]
        rounds, repeats = 100, 10
        for _ in range(rounds):  # each key is queued `repeats` times between two chances for the workers
            for name in clients:
                for key in keys:
                    for _ in range(repeats):
                        controller.enqueue(name, key)
            await asyncio.sleep(0.001)
        await eventually(lambda: controller.queue is not None and controller.queue.pending() == 0)
    for c in clients.values():
        await c.close()
    assert overlaps == []
    per_key = [runs[(name, key)] for name in clients for key in keys]
    assert all(n >= 2 for n in per_key), per_key
    # coalesced: the adds of one round are one entry (the workers cannot run between them), so at most one
    # run per round, however the workers were scheduled
    assert all(n <= rounds for n in per_key), per_key


async def test_a_hub_controller_maps_hub_objects_to_member_keys(server: ServerThread) -> None:
    hub = client_of(server.add_cluster(controllers=False))
    member = client_of(server.add_cluster(controllers=False))
    late = server.add_cluster(controllers=False)
    reconciled: list[tuple[str, Any]] = []

    def member_of(cluster: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
        namespace = obj["metadata"]["namespace"]
        return [("hub", namespace.removeprefix("clusterset-"))] if namespace.startswith("clusterset-") else []

    def to_late_cluster(cluster: str, obj: dict[str, Any]) -> list[tuple[str, tuple[str, str]]]:
        return [("late", ("default", obj["metadata"]["name"]))] if obj["metadata"]["name"] == "fan-out" else []

    async def reconcile(req: Request) -> Result:
        reconciled.append((req.cluster.name, req.key))
        return Result.done()

    controller = Controller(
        "members",
        reconcile,
        [
            Watch(CONFIG_MAPS, label_selector=MINE, map_to=member_of),  # hub namespaces → member keys
            Watch(CONFIG_MAPS, namespace="default", label_selector=MINE, map_to=to_late_cluster),
            Watch(CONFIG_MAPS, namespace="default", label_selector=MINE, clusters=lambda name: name != "hub"),
        ],
        clusters="hub",
    )
    manager = Manager(StaticProvider({"hub": hub, "m1": member}))
    manager.add(controller)
    async with manager:
        await hub.create(NAMESPACES, {"metadata": {"name": "clusterset-m1"}})
        await hub.create(CONFIG_MAPS, cm("report", namespace="clusterset-m1"))
        await member.create(CONFIG_MAPS, cm("local"))
        await hub.create(CONFIG_MAPS, cm("fan-out"))
        await eventually(lambda: ("hub", "m1") in reconciled and ("m1", ObjectKey("default", "local")) in reconciled,
                         message="hub and member keys")
        # hub objects are not reconciled as themselves (the hub watches map them), members' objects are
        assert ("hub", ObjectKey("clusterset-m1", "report")) not in reconciled
        assert ("hub", ObjectKey("default", "fan-out")) not in reconciled
        # a key for a cluster that is not engaged yet waits for it
        assert not any(c == "late" for c, _ in reconciled)
        await manager.add_cluster("late", client_of(late))
        await eventually(lambda: ("late", ObjectKey("default", "fan-out")) in reconciled, message="the parked key")
    await hub.close()
    await member.close()


async def test_requeue_after_periodic_resync_and_direct_enqueue(cluster: ClusterInfo, client: ClusterClient) -> None:
    await client.create(CONFIG_MAPS, cm("tick", v="1"))
    times: dict[Any, list[float]] = {}

    async def reconcile(req: Request) -> Result | None:
        times.setdefault(req.key, []).append(time.monotonic())
        if req.key == ObjectKey("default", "tick") and len(times[req.key]) < 4:
            return Result(requeue_after=0.1)
        return None

    ticking = Controller("ticking", reconcile, [MY_CONFIGMAPS])
    resyncing = Controller("resyncing", reconcile, [Watch(CONFIG_MAPS, namespace="default", label_selector=MINE,
                                                          map_to=lambda c, o: [(c, "resynced")])],
                           resync_period=0.1)
    manager = Manager(StaticProvider({"c": client}))
    manager.add(ticking)
    manager.add(resyncing)
    async with manager:
        await eventually(lambda: len(times.get(ObjectKey("default", "tick"), [])) == 4, message="requeue_after")
        ticks = times[ObjectKey("default", "tick")]
        assert all(b - a >= 0.09 for a, b in itertools.pairwise(ticks)), ticks
        await eventually(lambda: len(times.get("resynced", [])) >= 3, message="periodic resync")
        ticking.enqueue("c", "direct")
        ticking.enqueue(manager.cluster("c"), ("default", "tuple-key"))
        await eventually(lambda: "direct" in times and ObjectKey("default", "tuple-key") in times)


async def test_a_key_asking_for_later_waits_for_the_keys_queued_meanwhile() -> None:
    """`Result(later=True)`: the key is looked at again, once no key waits at normal priority (one worker)."""
    order: list[str] = []
    finished = asyncio.Event()

    async def reconcile(req: Request) -> Result | None:
        order.append(f"{req.key}#{order.count(f'{req.key}#1') + 1}" if req.key == "status" else str(req.key))
        if req.key == "status" and len(order) == 1:
            for key in ("a", "b"):
                controller.enqueue("c", key)
            controller.enqueue("c", "status")  # as its own write's event would, while it runs
            return Result(later=True)
        if req.key == "a":
            controller.enqueue("c", "c")  # queued after "status" was: still ahead of it
        if len(order) == 5:
            finished.set()
        return None

    controller = Controller("lanes", reconcile, workers=1)
    async with on_unreachable_cluster(controller) as manager:
        controller.enqueue("c", "status")
        await asyncio.wait_for(finished.wait(), 10)
        assert order == ["status#1", "a", "b", "c", "status#2"]
        await manager.remove_cluster("c")


async def test_a_reconcile_returning_something_else_is_an_error_and_the_worker_survives() -> None:
    answers: list[object] = [{"not": "a Result"}, None]
    done = asyncio.Event()

    async def reconcile(req: Request) -> Any:
        answer = answers.pop(0)
        if not answers:
            done.set()
        return answer

    controller = Controller("odd", reconcile, rate_limiter=RateLimiter(base_delay=0.01, qps=0))
    async with on_unreachable_cluster(controller) as manager:
        controller.enqueue("c", "k")
        await asyncio.wait_for(done.wait(), 10)  # retried after the bad answer: the one worker is alive
        assert manager.metrics.registry.get_sample_value(
            "controller_runtime_reconcile_errors_total", {"controller": "odd", "cluster": "c"}) == 1
        await manager.remove_cluster("c")


async def test_a_non_graceful_stop_cancels_what_a_graceful_stop_waits_for() -> None:
    """A lease lost while the manager stops gracefully: the running reconcile must end at once."""
    started = asyncio.Event()

    async def reconcile(req: Request) -> None:
        started.set()
        await asyncio.sleep(3600)

    controller = Controller("slow", reconcile, graceful_timeout=600)
    async with on_unreachable_cluster(controller) as manager:
        controller.enqueue("c", "k")
        await asyncio.wait_for(started.wait(), 10)
        graceful = asyncio.create_task(controller.stop())
        await asyncio.sleep(0.05)
        assert not graceful.done()
        await asyncio.wait_for(controller.stop(graceful=False), 10)
        await asyncio.wait_for(graceful, 10)
        assert not controller.running and controller.queue is None
        await manager.remove_cluster("c")


async def test_a_removed_clusters_failing_key_is_dropped_not_parked() -> None:
    """A reconcile that fails while its cluster is removed is not kept for a cluster that may never return."""
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def reconcile(req: Request) -> None:
        calls.append(str(req.key))
        if req.key == "k":
            started.set()
            await release.wait()
            raise RuntimeError("the cluster went away mid-reconcile")

    controller = Controller("gone", reconcile, rate_limiter=RateLimiter(base_delay=0.01, qps=0))
    manager = Manager()
    manager.add(controller)
    async with manager, ClusterClient.from_config(ClientConfig(server="http://127.0.0.1:1")) as unused:
        await manager.add_cluster("c", unused, owned=False)
        controller.enqueue("c", "k")
        await asyncio.wait_for(started.wait(), 10)
        await manager.remove_cluster("c")
        release.set()
        queue = controller.queue
        assert queue is not None
        await eventually(lambda: queue.pending() == 0 and not controller._parked, message="the retry is dropped")
        # a cluster of that name engaged again starts clean, and is reconciled as usual
        await manager.add_cluster("c", unused, owned=False)
        controller.enqueue("c", "k2")
        await eventually(lambda: calls == ["k", "k2"], message="the new cluster's key, and no retry of the old one")


async def test_a_reconcile_failing_because_its_cluster_went_meanwhile_is_dropped_quietly(
        client: ClusterClient, caplog: Any) -> None:
    """A cluster disengaged while one of its reconciles runs (a fleet member removed) makes that reconcile fail on
    its gone caches: that is the cluster going, not an error to log or a key to retry."""
    started, finish = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def reconcile(req: Request) -> None:
        calls.append(req.cluster.name)
        if req.cluster.name == "going":
            started.set()
            await finish.wait()
            req.cluster.cache(CONFIG_MAPS, "default", MINE)  # its caches are gone: this raises

    controller = Controller("going", reconcile, [])
    manager = Manager(StaticProvider({"going": client, "staying": client}))
    manager.add(controller)
    async with manager:
        await eventually(lambda: set(manager.clusters) == {"going", "staying"}, message="both engaged")
        controller.enqueue("going", "key")
        await asyncio.wait_for(started.wait(), 10)
        await manager.remove_cluster("going")
        finish.set()
        controller.enqueue("staying", "after")
        await eventually(lambda: "staying" in calls and controller.queue is not None
                         and controller.queue.pending() == 0, message="the queue drained")
    assert calls.count("going") == 1, calls  # not retried
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
