"""The work agent's share of "a WorkSet to N members": one Work per member, created at once on the hub, until each
member's Work reports Applied and Available; and the floor of that path, N writes at once plus their watch delivery
through the same server.

    .venv/bin/python -m bench.work_bench [--sizes 10,100] [--rounds 5] [--deployment] [--workset]

One process runs the embedded fleet (as `clusterset up`: the server, the hub's controllers, every member's agent)
and the observer: one watch of every Work on the hub, and one of the floor's ConfigMaps, with the admin token,
timestamping each event on arrival (`time.monotonic()`). Nothing polls. A round creates one Work per member (a
ConfigMap; with `--deployment` also a Deployment of 1 replica, whose pod the members' simulated kubelets make
Ready at once) and times each member from the burst's start until its Work's status has Applied=True and
Available=True for its generation. The floor round creates one ConfigMap per member hub namespace at once and
times each until the watch delivers it. The observer shares the fleet's event loop and the two cores, so both
figures carry the same overhead.

With `--workset` a round is the issue's whole path instead: one WorkSet (same manifests) whose Placement (made and
decided before the clock starts) chose every member; the hub's `workset` controller writes the N Works, the agents
apply them. The clock runs from just before the WorkSet's create.

The Work path has at least four writes in sequence (the Work, the finalizer, the member's object and the Work's
status; the AppliedWork is one more), each followed by its watch delivery, so its floor is about 4 x the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from bench.procs import run_as_up
from clusterset.api.placement import PLACEMENT_DECISIONS, PLACEMENTS, WORK_SETS, WORKS
from clusterset.api.resources import CONFIG_MAPS
from clusterset.cli.common import settle_heap
from clusterset.client import ClusterClient
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions

Obj = dict[str, Any]
TIMEOUT = 120.0
FLOOR_LABEL = "bench.clusterset.io/floor"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def done(work: Obj) -> bool:
    generation = work["metadata"].get("generation")
    conditions = {c["type"]: c for c in (work.get("status") or {}).get("conditions") or []}
    return all(conditions.get(t, {}).get("status") == "True" and conditions[t].get("observedGeneration") == generation
               for t in ("Applied", "Available"))


class Observer:
    """Arrival times of Works turning Applied and Available, and of floor ConfigMaps, by (namespace, name)."""

    def __init__(self, hub: ClusterClient) -> None:
        self.hub = hub
        self.waiting: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def expect(self, keys: list[tuple[str, str]]) -> list[asyncio.Future[float]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in keys]
        self.waiting.update(zip(keys, futures, strict=True))
        return futures

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._follow(WORKS, None, done)),
                      asyncio.create_task(self._follow(CONFIG_MAPS, FLOOR_LABEL, lambda _obj: True))]

    async def _follow(self, resource: Any, selector: str | None, complete: Any) -> None:
        listed = await self.hub.list(resource, label_selector=selector)
        version = listed["metadata"]["resourceVersion"]
        while True:
            async with contextlib.aclosing(self.hub.watch(resource, label_selector=selector,
                                                          resource_version=version)) as events:
                async for event in events:
                    now = time.monotonic()
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    key = (obj["metadata"].get("namespace", ""), obj["metadata"].get("name", ""))
                    future = self.waiting.get(key)
                    if future is not None and not future.done() and event["type"] != "DELETED" and complete(obj):
                        future.set_result(now)
                        del self.waiting[key]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def work(name: str, namespace: str, deployment: bool) -> Obj:
    manifests: list[Obj] = [{"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": name, "namespace": "default"}, "data": {"round": name}}]
    if deployment:
        labels = {"app": name}
        manifests.append({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": name, "namespace": "default"},
                          "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                   "template": {"metadata": {"labels": labels},
                                                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}})
    return {"apiVersion": WORKS.api_version, "kind": WORKS.kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"workload": {"manifests": manifests}}}


async def burst(observer: Observer, writes: list[Any], keys: list[tuple[str, str]]) -> list[float]:
    futures = observer.expect(keys)
    started = time.monotonic()
    await asyncio.gather(*writes)
    arrived = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    return [t - started for t in arrived]


async def decided(hub: ClusterClient, namespace: str, placement: str, n: int) -> None:
    """Waits until the Placement's first slice names n clusters (before any clock starts: polling is fine here)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if len((await hub.get(PLACEMENT_DECISIONS, f"{placement}-decision-0", namespace))["decisions"]) == n:
                return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{namespace}/{placement} not decided")


async def workset_round(hub: ClusterClient, observer: Observer, name: str, members: list[str],
                        deployment: bool) -> list[float]:
    """One WorkSet to every member, through a Placement decided beforehand."""
    await hub.create(PLACEMENTS, {"apiVersion": PLACEMENTS.api_version, "kind": PLACEMENTS.kind,
                                  "metadata": {"name": name, "namespace": "default"}, "spec": {}})
    await decided(hub, "default", name, len(members))
    workset = {"apiVersion": WORK_SETS.api_version, "kind": WORK_SETS.kind,
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"placementRef": {"name": name},
                        "manifests": work(name, "", deployment)["spec"]["workload"]["manifests"]}}
    return await burst(observer, [hub.create(WORK_SETS, workset)],
                       [(f"clusterset-{m}", f"default.{name}") for m in members])


async def size_run(n: int, rounds: int, deployment: bool, workset: bool = False) -> Obj:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=n, dns=False, member_settings={"pod_ready_delay": 0}))
        await fleet.start()
        try:
            await fleet.wait_healthy(timeout=TIMEOUT)
            settle_heap()  # as clusterset up does
            hub = fleet.admin_client("hub")
            namespaces = [f"clusterset-{m}" for m in fleet.member_ids]
            observer = Observer(hub)
            observer.start()
            # one heartbeat: the start's own work (every agent's first report and Lease, spread over the interval,
            # and the profiles they update) is done before the first round, as mcs_bench's idle phase lets it be
            await asyncio.sleep(fleet.options.heartbeat)
            works, floor, alls = [], [], []
            for r in range(rounds):
                name = f"round-{r}"
                if workset:
                    took = await workset_round(hub, observer, name, fleet.member_ids, deployment)
                else:
                    took = await burst(observer, [hub.create(WORKS, work(name, ns, deployment)) for ns in namespaces],
                                       [(ns, name) for ns in namespaces])
                works += took
                alls.append(max(took))
                floor += await burst(observer, [hub.create(CONFIG_MAPS, {
                    "metadata": {"name": name, "namespace": ns, "labels": {FLOOR_LABEL: "x"}}}) for ns in namespaces],
                    [(ns, name) for ns in namespaces])
            await observer.stop()
        finally:
            await fleet.stop()
    return {"n": n, "works": works, "all": alls, "floor": floor}


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="member counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per size")
    parser.add_argument("--deployment", action="store_true", help="each Work also holds a Deployment of 1 replica")
    parser.add_argument("--workset", action="store_true",
                        help="a WorkSet through a decided Placement makes the Works (the whole path)")
    args = parser.parse_args()
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']}, {info['memory']}, {info['os']}, {info['python']}, "
          f"SQLite {info['sqlite']}; not pinned; " + ("WorkSet → Works" if args.workset else "Works made directly"))
    print("| members | Work → Applied+Available P50 / P99 | all N (median of rounds) | floor: N writes → watch "
          "P50 / P99 | P99 / floor P99 |")
    print("|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        r = run_as_up(size_run(n, args.rounds, args.deployment, args.workset))
        p99, floor99 = pct(r["works"], 99), pct(r["floor"], 99)
        print(f"| {n} | {ms(statistics.median(r['works']))} / {ms(p99)} | {ms(statistics.median(r['all']))} | "
              f"{ms(statistics.median(r['floor']))} / {ms(floor99)} | {p99 / floor99:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
