"""The embedded fleet: `clusterset up` to ready and healthy, memory per member, health-change detection.

    .venv/bin/python -m bench.fleet_bench [--sizes 10,100,1000] [--quick] [--asyncio]

What is timed (one process on the event loop `clusterset up` runs on: uvloop when installed, or asyncio's with
`--asyncio`, as the figures before the fourth session of 2026-12-05 were measured; the fleet's own clock):
- **up → ready**: `EmbeddedFleet.start()` from an empty state directory: the server and its
  1 + N logical clusters, the inventory CRDs, N joins (ServiceAccount, Role, RoleBinding, TokenRequest,
  member Secret and ClusterProperties each; the fleet's requests are answered in the server's process, as
  `Apiserver.in_process`), the hub manager and N agents.
- **up → all healthy**: until every ClusterProfile says `ControlPlaneHealthy=True` (listed over HTTPS).
- **restart → all healthy**: the same directory started again (state from SQLite, joins are no-ops).
- **process CPU**: the process's CPU seconds over all of it (cold start, stop, restart, stop): on a shared machine
  steadier than wall times.
- **memory per member**: process RSS growth from before start to all healthy, divided by N (it holds
  the members' API objects, their simulated nodes, the agents and the hub); and the hub's part alone:
  the bytes of hub API objects per member (namespace, ServiceAccount, Role, RoleBinding, ClusterReport,
  ClusterProfile), which is what a real hub stores per member.
- **writes**: every cluster's resourceVersion summed, 2 s after all healthy: per member from cold (objects a new
  cluster is born with count too) and what the restart wrote. Unlike times, these do not drift with the machine.
- **health-change detection** (N = 10, heartbeat 1 s, grace 3 s): a member's logical cluster is
  removed → its profile turns `ControlPlaneHealthy=False`; an agent is stopped → `Unknown`. Reported
  as seconds and as a ratio to the heartbeat (resp. the grace period), which bound them by design.

Reference on the same kind of machine: none runs here; Karmada's published cluster registration is
P50/P90/P99 5.4/6.1/6.9 s per cluster (anchors.md), given as context only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bench.apiserver_bench import table
from bench.machine import machine_info
from clusterset.api.inventory import CONTROL_PLANE_HEALTHY
from clusterset.api.objects import condition
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.cli.common import fast_loop
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions
from clusterset.fleet.hub import HUB


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def hub_bytes(fleet: EmbeddedFleet) -> int:
    return fleet.server.stored_bytes(HUB)


def versions(fleet: EmbeddedFleet) -> int:
    """Every cluster's resourceVersion, summed: each write takes one (and each object a new cluster is born with), so
    the difference between two moments counts what the fleet wrote, a figure this noisy machine does not move."""
    return sum(fleet.server.resource_version(name) for name in fleet.server.cluster_names())


T = TypeVar("T")
SETTLE_SECONDS = 2.0  # after all healthy, before the writes are counted: what a start sets off lands in them


async def size_run(n: int) -> dict[str, float]:
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        base_hub = 0
        before = rss_mib()
        started = time.monotonic()
        fleet = EmbeddedFleet(FleetOptions(state, members=n))
        await fleet.start()
        ready = time.monotonic() - started
        await fleet.wait_healthy(timeout=600)
        healthy = time.monotonic() - started
        after = rss_mib()
        base_hub = hub_bytes(fleet)
        port = fleet.server.port
        await asyncio.sleep(SETTLE_SECONDS)
        cold_versions = versions(fleet)
        await fleet.stop()

        started = time.monotonic()
        again = EmbeddedFleet(FleetOptions(state, members=n, port=port))
        await again.start()
        await again.wait_healthy(timeout=600)
        restart = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        restart_writes = versions(again) - cold_versions
        await again.stop()
    return {"n": n, "ready": ready, "healthy": healthy, "restart": restart, "cpu": time.process_time() - cpu,
            "rss_per_member": (after - before) / n, "hub_kib_per_member": base_hub / n / 1024,
            "versions_per_member": cold_versions / n, "restart_writes_per_member": restart_writes / n}


async def profile_health(fleet: EmbeddedFleet, name: str) -> str | None:
    cp = await fleet.admin_client(HUB).get(CLUSTER_PROFILES, name, fleet.options.clusterset)
    c = condition((cp.get("status") or {}).get("conditions"), CONTROL_PLANE_HEALTHY)
    return None if c is None else str(c["status"])


async def until(fleet: EmbeddedFleet, name: str, status: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while await profile_health(fleet, name) != status:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{name} never became {status}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def detection_run(reps: int) -> dict[str, list[float]]:
    heartbeat, grace = 1.0, 3.0
    out: dict[str, list[float]] = {"removed": [], "silent": []}
    with tempfile.TemporaryDirectory() as tmp:
        fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=10, heartbeat=heartbeat, grace=grace))
        await fleet.start()
        await fleet.wait_healthy(timeout=120)
        for rep in range(reps):
            name = f"member-{rep + 1}"
            await fleet.server.remove_cluster(name)
            out["removed"].append(await until(fleet, name, "False"))
            name = f"member-{10 - rep}"
            await fleet.members.remove(name)
            out["silent"].append(await until(fleet, name, "Unknown"))
        await fleet.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--quick", action="store_true", help="sizes 10,100 and 2 detection runs")
    parser.add_argument("--asyncio", action="store_true", help="asyncio's event loop, not `clusterset up`'s")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [int(x) for x in args.sizes.split(",")]
    loop = None if args.asyncio else fast_loop()
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']}, {info['memory']}, {info['python']}; "
          f"event loop: {'asyncio' if loop is None else loop.__module__.split('.')[0]}", flush=True)

    def run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=loop) as runner:
            return runner.run(coro)

    rows = []
    for n in sizes:
        r = run(size_run(n))
        print(f"  N={n}: ready {r['ready']:.1f}s, healthy {r['healthy']:.1f}s, restart {r['restart']:.1f}s, "
              f"process CPU {r['cpu']:.1f}s", flush=True)
        rows.append([f"{n:,}", f"{r['ready']:.1f}", f"{r['healthy']:.1f}", f"{r['healthy'] / n * 1000:.0f}",
                     f"{r['restart']:.1f}", f"{r['cpu']:.1f}", f"{r['rss_per_member']:.2f}",
                     f"{r['hub_kib_per_member']:.1f}", f"{r['versions_per_member']:.1f}",
                     f"{r['restart_writes_per_member']:.2f}"])
    print(table(["members", "up → ready (s)", "up → all healthy (s)", "per member (ms)", "restart → healthy (s)",
                 "process CPU (s)", "RSS per member (MiB)", "hub objects per member (KiB)",
                 "resourceVersions per member (cold)", "writes per member (restart)"], rows))
    det = run(detection_run(2 if args.quick else 5))
    drows = []
    for key, label, bound in (("removed", "member API gone → False", 1.0), ("silent", "agent silent → Unknown", 3.0)):
        values = det[key]
        drows.append([label, f"{statistics.median(values):.2f}", f"{max(values):.2f}",
                      f"{statistics.median(values) / bound:.2f}"])
    print(table(["change (heartbeat 1 s, grace 3 s)", "median (s)", "max (s)", "median / bound"], drows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
