"""The placement scheduler: Placements decided per second and per-decision latency over 100 and 1,000 clusters,
through the real controller and API server, and the pure scheduler's own rate.

    .venv/bin/python -m bench.placement_bench [--sizes 100,1000] [--quick] [--no-pin]

For each size N a hub runs as `clusterset up --clusters 0` does (the embedded server, the hub's controllers, the
`placement-scheduler` among them) in a child process pinned to CPU 0. This process (pinned to CPU 1) makes N
ClusterProfiles directly (another cluster manager's; status through the status subresource: healthy, half of them
`env=prod`, zones z0-z2, a `gpus` property), waits until a probe Placement is decided over all of them, then:

- **latency**: Placements created one at a time (`numberOfClusters: 3`, a label predicate over `env=prod`, the
  default prioritizers Steady + Balance, so Balance reads every Placement's current choice), each timed from just
  before its create until this process's watch of PlacementDecisions delivers its slice 0 with three decisions;
  P50/P99 over the samples;
- **throughput**: a burst of Placements created at once (32 requests in flight), from the first create until the
  last one's decision is seen: placements decided per second;
- **floor**: a ConfigMap created in the same namespace, timed until this process's watch delivers it: one write
  and its watch delivery through the same server (a decision needs at least two: the Placement, then its slice);
- **pure scheduler**: `scheduler.schedule` alone, in this process, over the same N clusters and spec, with the
  Balance load of the burst: schedules per second (the floor the controller's writes add to).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.apiserver_bench import table
from bench.machine import machine_info
from clusterset.api.placement import PLACEMENT_DECISIONS, PLACEMENTS
from clusterset.api.resources import CLUSTER_PROFILES, CONFIG_MAPS, NAMESPACES
from clusterset.client import ClusterClient
from clusterset.placement.scheduler import Cluster, compile_policy, schedule

CLUSTERSET = "clusterset"
NAMESPACE = "default"  # bound to the ClusterSet by `clusterset up`
SPEC = {"numberOfClusters": 3, "predicates": [{"labelSelector": {"matchLabels": {"env": "prod"}}}]}
TIMEOUT = 120.0
Obj = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    sequential: int = 200
    burst: int = 1000
    pure_runs: int = 200
    pin: bool = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def profile(i: int) -> tuple[Obj, Obj]:
    name = f"cluster-{i:04d}"
    obj = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
           "metadata": {"name": name, "namespace": CLUSTERSET,
                        "labels": {"x-k8s.io/cluster-manager": "bench", "env": "prod" if i % 2 else "dev",
                                   "zone": f"z{i % 3}"}},
           "spec": {"displayName": name, "clusterManager": {"name": "bench"}}}
    status = {"conditions": [{"type": "ControlPlaneHealthy", "status": "True", "reason": "Bench", "message": "",
                              "lastTransitionTime": "2026-01-01T00:00:00Z"}],
              "properties": [{"name": "gpus", "value": str(i % 17)}]}
    return obj, status


async def limited(coros: list[Any], limit: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


class Decisions:
    """This process's watch of PlacementDecisions: when each Placement's slice 0 first held three decisions."""

    def __init__(self, hub: ClusterClient) -> None:
        self.hub = hub
        self.seen: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.hub.list(PLACEMENT_DECISIONS, NAMESPACE)
        self.task = asyncio.create_task(self._follow(str(listed["metadata"]["resourceVersion"])))

    async def _follow(self, version: str) -> None:
        async for event in self.hub.watch(PLACEMENT_DECISIONS, NAMESPACE, resource_version=version):
            now = time.monotonic()
            obj = event["object"]
            if event["type"] not in ("ADDED", "MODIFIED") or len(obj.get("decisions") or []) < 3:
                continue
            name = obj["metadata"]["name"].removesuffix("-decision-0")
            if name not in self.seen:
                self.seen[name] = now
                waiter = self.waiters.pop(name, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    def decided(self, name: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if name in self.seen:
            fut.set_result(self.seen[name])
        else:
            self.waiters[name] = fut
        return fut

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def placement(name: str) -> Obj:
    return {"apiVersion": "clusterset.io/v1alpha1", "kind": "Placement",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": SPEC}


async def decide(hub: ClusterClient, decisions: Decisions, name: str) -> float:
    """Seconds from just before the create until the decision is seen."""
    started = time.monotonic()
    waiter = decisions.decided(name)
    await hub.create(PLACEMENTS, placement(name))
    return await asyncio.wait_for(waiter, TIMEOUT) - started


async def write_floor(hub: ClusterClient, samples: int) -> list[float]:
    """Seconds from a ConfigMap's create until a watch delivers it, one at a time."""
    listed = await hub.list(CONFIG_MAPS, NAMESPACE)
    arrived: dict[str, asyncio.Future[float]] = {}

    async def follow() -> None:
        async for event in hub.watch(CONFIG_MAPS, NAMESPACE, resource_version=listed["metadata"]["resourceVersion"]):
            fut = arrived.get(event["object"]["metadata"]["name"])
            if fut is not None and not fut.done():
                fut.set_result(time.monotonic())

    task = asyncio.create_task(follow())
    out = []
    try:
        for i in range(samples):
            name = f"floor-{i}"
            arrived[name] = asyncio.get_running_loop().create_future()
            started = time.monotonic()
            await hub.create(CONFIG_MAPS, {"metadata": {"name": name, "namespace": NAMESPACE}, "data": {"i": str(i)}})
            out.append(await asyncio.wait_for(arrived[name], TIMEOUT) - started)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(hub: ClusterClient, n: int, s: Settings, pid: int) -> dict[str, Any]:
    made = time.monotonic()
    profiles = [profile(i) for i in range(n)]
    await limited([hub.create(CLUSTER_PROFILES, obj) for obj, _ in profiles])
    await limited([hub.patch(CLUSTER_PROFILES, obj["metadata"]["name"], {"status": status}, namespace=CLUSTERSET,
                             subresource="status") for obj, status in profiles])
    decisions = Decisions(hub)
    await decisions.start()
    # warm: a Placement over every profile, decided once the scheduler has them all
    probe = {**placement("probe"), "spec": {}}
    await hub.create(PLACEMENTS, probe)
    deadline = time.monotonic() + TIMEOUT
    while True:
        slices = (await hub.list(PLACEMENT_DECISIONS, NAMESPACE))["items"]
        if sum(len(x.get("decisions") or []) for x in slices) >= n:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the probe Placement was never decided over every profile")
        await asyncio.sleep(0.1)
    setup = time.monotonic() - made

    floor = await write_floor(hub, s.sequential)
    latencies = [await decide(hub, decisions, f"seq-{i}") for i in range(s.sequential)]
    started, cpu = time.monotonic(), cpu_seconds(pid)
    names = [f"burst-{i}" for i in range(s.burst)]
    waiters = [decisions.decided(name) for name in names]
    await limited([hub.create(PLACEMENTS, placement(name)) for name in names])
    done = await asyncio.wait_for(asyncio.gather(*waiters), TIMEOUT)
    elapsed = max(done) - started
    hub_cpu = cpu_seconds(pid) - cpu  # the status writes and Events of the last ones may still be running
    burst_latencies = [t - started for t in done]
    await decisions.stop()
    return {"n": n, "setup": setup, "floor": floor, "latency": latencies, "burst": s.burst, "burst_seconds": elapsed,
            "burst_latency": burst_latencies, "hub_cpu": hub_cpu,
            "pure": pure_rate(n, s.sequential + s.burst, s.pure_runs)}


def pure_rate(n: int, placements: int, runs: int) -> float:
    """Schedules per second of the pure function over n clusters, with `placements` other choices as Balance load."""
    clusters = []
    for i in range(n):
        obj, status = profile(i)
        clusters.append(Cluster(CLUSTERSET, obj["metadata"]["name"], obj["metadata"]["labels"],
                                {p["name"]: p["value"] for p in status["properties"]}))
    load = {c.ref: (3 * placements) // max(1, n // 2) for c in clusters}
    policy = compile_policy(SPEC)
    started = time.perf_counter()
    for _ in range(runs):
        schedule(policy, clusters, frozenset({CLUSTERSET}), frozenset(), load)
    return runs / (time.perf_counter() - started)


async def run_size(n: int, s: Settings, state: Path) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "clusterset.cli.main", "up", "--clusters", "0", "--state-dir", str(state),
               "--port", str(port)]
    if s.pin:
        command = ["taskset", "-c", "0", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "clusterset fleet ready" in line:
                break
        else:
            raise RuntimeError(f"clusterset up ended: {proc.wait()}")
        hub = await ClusterClient.from_kubeconfig(str(state / "kubeconfig"), "hub")
        try:
            await hub.get(NAMESPACES, NAMESPACE)
            return await measure(hub, n, s, proc.pid)
        finally:
            await hub.close()
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--quick", action="store_true", help="50 sequential samples, bursts of 200")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the hub to CPU 0 and this process to CPU 1")
    args = parser.parse_args()
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    s = Settings(sequential=50, burst=200, pure_runs=50, pin=pin) if args.quick else Settings(pin=pin)
    if pin:
        os.sched_setaffinity(0, {1})
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']}, {info['memory']}, {info['os']}, {info['python']}, "
          f"SQLite {info['sqlite']}; " + ("hub pinned to CPU 0, load and watch to CPU 1" if pin else "not pinned"),
          flush=True)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            r = asyncio.run(run_size(n, s, Path(tmp) / "state"))
        lat = [x * 1000 for x in r["latency"]]
        floor = [x * 1000 for x in r["floor"]]
        rate = r["burst"] / r["burst_seconds"]
        print(f"  N={n}: setup {r['setup']:.1f}s, latency P50/P99 {statistics.median(lat):.1f}/{pct(lat, 0.99):.1f} ms,"
              f" burst {rate:.0f} placements/s, pure {r['pure']:.0f}/s", flush=True)
        rows.append([f"{n:,}", f"{len(lat)}", f"{statistics.median(lat):.1f}", f"{pct(lat, 0.99):.1f}",
                     f"{statistics.median(floor):.1f} / {pct(floor, 0.99):.1f}",
                     f"{r['burst']:,}", f"{r['burst_seconds']:.2f}", f"{rate:.0f}",
                     f"{r['hub_cpu'] / r['burst'] * 1000:.1f}", f"{r['pure']:.0f}"])
    print()
    print(table(["clusters", "sequential samples", "latency P50 (ms)", "latency P99 (ms)",
                 "floor P50 / P99 (ms)", "burst", "burst (s)",
                 "placements/s", "hub CPU per placement (ms)", "pure scheduler (/s)"], rows))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
