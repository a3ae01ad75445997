"""The WorkSet controller's fan-out on the hub: one WorkSet to N decided clusters, until every cluster's Work
exists, and until the WorkSet's summary counts them all Available.

    .venv/bin/python -m bench.workset_bench [--sizes 100,1000] [--runs 3]

One process: the embedded API server with a `hub` cluster only (the CRDs, N member namespaces labelled
`clusterset.io/member`, N ClusterProfiles, the decision slices of 100), the hub's `workset` controller on the
runtime, and a stand-in for the N agents: a watch on Works that writes, for each Work it sees at a new generation,
`Applied`/`Available=True` for that generation (what the member agent does once its objects are applied and
available; the member side is not measured here). Every time is taken on the same monotonic clock, from just
before the WorkSet's create (or its template update) to the watch event that completed it.

Figures: per-Work latency (P50/P99 over the N Works: WorkSet written → its Work seen), all Works seen, all
Available in the summary; a template change to every cluster (maxUnavailable: all) until the summary counts every
cluster Available at the new version; and the **floor**: one ConfigMap create until its watch event on the same
server (P50/P99 of 50).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

from bench.procs import run_as_up
from clusterset.api.inventory import MEMBER_LABEL, member_namespace
from clusterset.api.placement import (
    DECISION_INDEX_LABEL,
    DECISION_KEY_LABEL,
    MAX_DECISIONS_PER_SLICE,
    PLACEMENT_DECISIONS,
    WORK_SETS,
    WORKS,
    decision_name,
)
from clusterset.api.resources import CLUSTER_PROFILES, CONFIG_MAPS, NAMESPACES
from clusterset.apiserver import Apiserver
from clusterset.cli.common import settle_heap
from clusterset.client import ApiError, ClientConfig, ClusterClient
from clusterset.inventory.registration import prepare_hub
from clusterset.runtime import Manager, StaticProvider
from clusterset.runtime.informer import Event, Informer
from clusterset.workset.controller import workset_controller
from clusterset.workset.works import TEMPLATE_HASH_ANNOTATION, WORKSET_LABEL

Obj = dict[str, Any]
CLUSTERSET = "clusterset"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def pair(values: list[float]) -> str:
    return f"{pct(values, 0.5) * 1000:.0f} / {pct(values, 0.99) * 1000:.0f} ms"


async def gather_limited(coros: list[Any], limit: int = 32) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(c: Any) -> None:
        async with gate:
            await c

    await asyncio.gather(*(one(c) for c in coros))


class Agents:
    """Stands in for every member's agent: reports each Work Applied and Available at its generation."""

    def __init__(self, hub: ClusterClient) -> None:
        self.hub = hub
        self.informer = Informer(hub, WORKS, label_selector=WORKSET_LABEL, cluster="hub")
        self.seen: dict[tuple[str, str], float] = {}  # (namespace, version) → first seen
        self.tasks: set[asyncio.Task[None]] = set()
        self.informer.add_handler(self.on_event)

    def on_event(self, event: Event) -> None:
        work = event.obj
        meta = work["metadata"]
        if event.type == "DELETED":
            return
        version = (meta.get("annotations") or {}).get(TEMPLATE_HASH_ANNOTATION, "")
        self.seen.setdefault((meta["namespace"], version), time.monotonic())
        reported = [c.get("observedGeneration") for c in (work.get("status") or {}).get("conditions") or []]
        if meta["generation"] not in reported:
            task = asyncio.create_task(self.report(work))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def report(self, work: Obj) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = [{"type": t, "status": "True", "reason": "Bench", "message": "", "lastTransitionTime": now,
                       "observedGeneration": work["metadata"]["generation"]} for t in ("Applied", "Available")]
        with contextlib.suppress(ApiError):  # a newer generation arrived meanwhile: its own event reports it
            await self.hub.update(WORKS, {**work, "status": {"conditions": conditions}}, subresource="status")


async def until(predicate: Any, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's condition never held")
        await asyncio.sleep(0.002)
    return time.monotonic()


async def floor(hub: ClusterClient, samples: int = 50) -> list[float]:
    informer = Informer(hub, CONFIG_MAPS, namespace="default", cluster="hub")
    informer.start()
    await informer.cache.wait_synced(30)
    out = []
    for i in range(samples):
        started = time.monotonic()
        await hub.create(CONFIG_MAPS, {"metadata": {"name": f"floor-{i}", "namespace": "default"}})
        await informer.cache.wait_for(("default", f"floor-{i}"), lambda o: o is not None, 10)
        out.append(time.monotonic() - started)
    await informer.stop()
    return out


async def size_run(n: int, runs: int) -> dict[str, Any]:
    server = Apiserver(None)
    await server.add_cluster("hub")
    await server.start()
    hub = ClusterClient(ClientConfig(server=server.cluster_url("hub"), name="hub", ca_data=server.ca_pem.encode(),
                                     token=server.cluster_token("hub")))
    await prepare_hub(hub, CLUSTERSET)
    members = [f"member-{i}" for i in range(1, n + 1)]
    await gather_limited([hub.create(NAMESPACES, {"metadata": {"name": member_namespace(m),
                                                               "labels": {MEMBER_LABEL: m}}}) for m in members])
    await gather_limited([hub.create(CLUSTER_PROFILES, {
        "metadata": {"name": m, "namespace": CLUSTERSET},
        "spec": {"displayName": m, "clusterManager": {"name": "bench"}}}) for m in members])
    agents = Agents(hub)
    agents.informer.start()
    manager = Manager(StaticProvider({"hub": hub}), name="bench")
    manager.add(workset_controller("hub", workers=4))
    results: dict[str, Any] = {"n": n, "per_work": [], "all_seen": [], "all_available": [], "update": []}
    async with manager:
        await manager.wait_synced()
        await agents.informer.cache.wait_synced(30)
        settle_heap()  # as clusterset up does
        results["floor"] = await floor(hub)
        sets = Informer(hub, WORK_SETS, cluster="hub")
        sets.start()
        await sets.cache.wait_synced(30)
        for run in range(runs):
            ns = f"bench-{run}"
            await hub.create(NAMESPACES, {"metadata": {"name": ns}})
            for index in range(0, n, MAX_DECISIONS_PER_SLICE):
                await hub.create(PLACEMENT_DECISIONS, {
                    "metadata": {"name": decision_name("web", index // MAX_DECISIONS_PER_SLICE), "namespace": ns,
                                 "labels": {DECISION_KEY_LABEL: "web",
                                            DECISION_INDEX_LABEL: str(index // MAX_DECISIONS_PER_SLICE)}},
                    "decisions": [{"clusterProfileRef": {"name": m, "namespace": CLUSTERSET}}
                                  for m in members[index:index + MAX_DECISIONS_PER_SLICE]]})

            def available(version_image: str, ns: str = ns) -> bool:
                ws = sets.cache.get((ns, "web"))
                if ws is None:
                    return False
                status = ws.get("status") or {}
                summary = status.get("summary") or {}
                images = str(ws.get("spec", {}).get("manifests", [{}])[0].get("data", {}).get("image"))
                return images == version_image and summary.get("available") == n and \
                    status.get("observedGeneration") == ws["metadata"]["generation"] \
                    and not any(c.get("type") == "Progressing" and c.get("status") == "True"
                                for c in status.get("conditions") or [])

            started = time.monotonic()
            await hub.create(WORK_SETS, {"metadata": {"name": "web", "namespace": ns}, "spec": {
                "placementRef": {"name": "web"},
                "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web",
                                                                                     "namespace": "default"},
                               "data": {"image": "v1", "cluster": "${cluster.name}"}}]}})
            await until(lambda: available("v1"))
            results["all_available"].append(time.monotonic() - started)
            firsts = {k[0]: t for k, t in agents.seen.items()
                      if k[0].startswith("clusterset-") and t >= started}
            results["per_work"] += [t - started for t in firsts.values()]
            results["all_seen"].append(max(firsts.values()) - started)
            ws = sets.cache.get((ns, "web"))
            assert ws is not None
            started = time.monotonic()
            await hub.patch(WORK_SETS, "web", {"spec": {"manifests": [{
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "default"},
                "data": {"image": "v2", "cluster": "${cluster.name}"}}]}}, namespace=ns)
            await until(lambda: available("v2"))
            results["update"].append(time.monotonic() - started)
            await hub.delete(WORK_SETS, "web", namespace=ns)
            await until(lambda ns=ns: sets.cache.get((ns, "web")) is None)
            agents.seen.clear()
        await sets.stop()
    await agents.informer.stop()
    await hub.close()
    await server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated cluster counts (default 100,1000)")
    parser.add_argument("--runs", type=int, default=3, help="WorkSets per size, one after the other (default 3)")
    args = parser.parse_args()
    print("| clusters | per Work P50 / P99 | all Works seen P50 / max | all Available P50 / max | "
          "template change to all, all Available P50 / max | floor P50 / P99 |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        r = run_as_up(size_run(n, args.runs))
        print(f"| {n} | {pair(r['per_work'])} | {statistics.median(r['all_seen']) * 1000:.0f} / "
              f"{max(r['all_seen']) * 1000:.0f} ms | {statistics.median(r['all_available']) * 1000:.0f} / "
              f"{max(r['all_available']) * 1000:.0f} ms | {statistics.median(r['update']) * 1000:.0f} / "
              f"{max(r['update']) * 1000:.0f} ms | {pair(r['floor'])} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
