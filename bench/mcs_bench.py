"""Multi-Cluster Services propagation (KEP-1645) through the embedded fleet: export → imported everywhere, endpoint
change → imported slices changed everywhere, the floor of one write plus its watch delivery, and agent restarts
with 10,000 imported endpoints.

    .venv/bin/python -m bench.mcs_bench [--sizes 3,10,100] [--quick] [--no-pin] [--profile DIR]

One process runs the fleet as `clusterset up` does (the server with `hub` and `member-1..N`, the hub's controllers,
every member's agent; pinned to CPU 0). A second process, the **observer** (this module with `--observe`, pinned
to CPU 1), lists then watches every member over HTTPS with the admin token (ServiceImports, imported
EndpointSlices, the exporter's own EndpointSlices, one ConfigMap namespace) and timestamps each event on arrival
(`time.monotonic()`, CLOCK_MONOTONIC, the same clock in both processes). Nothing polls the server while a figure
is timed. Before each timed write the fleet process tells the observer what it expects (and waits for its ack);
the observer answers with the arrival time of the event that completed it.

Figures (P50/P99 over the samples; sequential samples are 0.2 s apart):
- **export → imported**: from just before the ServiceExport create (the Service and its Ready endpoints exist:
  a Deployment of 2 replicas in member-1) until every member has the ServiceImport with `ips` and imported
  slices holding every endpoint, Ready. One export at a time, then a burst (all created at once, each timed from
  the burst's start).
- **endpoint flip → imported**: a pod of an exported service gets `clusterset.io/simulate-ready: "false"` (then
  loses it) until every member's imported slices show the new ready count; and, for reference, until the
  exporter's own slice shows it (the member-local part: kubelet and EndpointSlice controller).
- **floor**: a ConfigMap merge-patched in one member (members in turn) until the observer's watch sees it; and N
  ConfigMaps patched at once, one per member, until all N are seen. The MCS path needs at least 1 + 1 + N writes
  in sequence (the exporter's record on the hub, the hub's merge, then one write per member in parallel), so its
  floor is `2 x single + parallel(N)`, composed from the two measured figures, P50 from P50s and P99 from P99s.
- **agent restart** (a fleet of its own): 10 selectorless Services x 1,000 endpoints (10 slices of 100 each,
  written directly: 10,000 pods would take minutes to schedule and run, and the agent reads slices the same way
  whoever wrote them) exported from member-1 and imported into every member. Then one importing member's agent is
  restarted (`members.remove` + `join_member`), a source endpoint flips right after, and the clock runs until
  that member's imported slices show the flip; imported objects' uids and resourceVersions are compared before
  and after. The same for the exporting member's agent (hub records compared too). This fleet runs without the
  members' DNS servers unless `--restart-with-dns`: they re-pack every answer of a service on each of its slice
  events, which makes a 10,000-endpoint import take minutes (BENCHMARKS.md).

- **endpoint flip → DNS answer changed**: the same flips on a headless exported service, until the
  `clusterset.local` server of each of up to 10 members (spread over the fleet) answers its A query with the new
  number of records. DNS has no watch: the observer asks each of those servers every 10 ms while it waits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.apiserver_bench import table
from bench.machine import LIVE_CHILDREN, BackgroundLoad, CollectorClock, machine_info
from bench.procs import run_as_up
from clusterset.api.mcs import (
    CLUSTERSET_ENDPOINTS,
    EXPORTED_ENDPOINTS,
    EXPORTED_SERVICES,
    KUBE_SERVICE_NAME_LABEL,
    MANAGED_BY_LABEL,
    MCS_CONTROLLER,
    SERVICE_EXPORTS,
    SERVICE_IMPORTS,
    SERVICE_NAME_LABEL,
)
from clusterset.api.objects import condition
from clusterset.api.resources import (
    CONFIG_MAPS,
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    NAMESPACES,
    PODS,
    SERVICES,
    Resource,
)
from clusterset.cli.common import settle_heap
from clusterset.client import ClientConfig, ClusterClient
from clusterset.client.errors import Gone
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions
from clusterset.fleet.hub import HUB

Obj = dict[str, Any]
NS = "bench"
HEADLESS = "headless-0"  # its DNS answer lists the Ready endpoints, so a readiness flip changes it
FLOOR_NS = "bench-floor"
READY_HOOK = "clusterset.io/simulate-ready"
IMPORTED = f"{MANAGED_BY_LABEL}={MCS_CONTROLLER}"
LOCAL = f"{KUBE_SERVICE_NAME_LABEL},{MANAGED_BY_LABEL}!={MCS_CONTROLLER}"
GAP = 0.2  # seconds between sequential samples
TIMEOUT = 300.0
DNS_PERIOD = 0.01  # seconds between DNS queries to each member's server while one is awaited
DNS_SAMPLE = 10  # members whose DNS answers are timed (spread over the fleet)
PHASE = ["setup"]  # the phase running now (for diagnostics that count requests per phase)


# =========================================================================== the observer (its own process)
def _counts(slice_: Obj) -> tuple[int, int]:
    endpoints = [e for e in slice_.get("endpoints") or [] if isinstance(e, dict)]
    ready = sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready") is not False)
    return len(endpoints), ready


@dataclass
class Expectation:
    id: int
    kind: str  # svc (imported everywhere) | loc (the exporter's own slices) | cm (a ConfigMap's data.v)
    ns: str
    name: str
    remaining: set[str]
    total: int = 0
    ready: int = 0
    value: str = ""
    ips: bool = True


@dataclass
class ObserverState:
    ips: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # (cluster, ns, import) → has ips
    imported: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(dict))  # (cluster, ns, service) → slice → (endpoints, ready)
    local: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = field(default_factory=lambda: defaultdict(dict))
    values: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (cluster, ns, configmap) → data.v
    waiting: dict[tuple[str, str, str], list[Expectation]] = field(default_factory=lambda: defaultdict(list))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def satisfied(self, e: Expectation, cluster: str) -> bool:
        key = (cluster, e.ns, e.name)
        if e.kind == "cm":
            return self.values.get(key) == e.value
        slices = (self.imported if e.kind == "svc" else self.local).get(key) or {}
        total = sum(t for t, _ in slices.values())
        ready = sum(r for _, r in slices.values())
        if (total, ready) != (e.total, e.ready):
            return False
        return e.kind != "svc" or not e.ips or self.ips.get(key, False)

    def check(self, group: str, cluster: str, ns: str, name: str, now: float) -> None:
        pending = self.waiting.get((group, ns, name))
        if not pending:
            return
        for e in list(pending):
            if cluster in e.remaining and self.satisfied(e, cluster):
                e.remaining.discard(cluster)
                if not e.remaining:
                    pending.remove(e)
                    _emit({"done": e.id, "t": now})

    def add(self, spec: Obj) -> None:
        if spec["kind"] == "dns":
            task = asyncio.create_task(_dns(spec["id"], spec["addresses"], spec["name"], spec["ready"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            _emit({"ack": spec["id"]})
            return
        e = Expectation(spec["id"], spec["kind"], spec["ns"], spec["name"], set(spec["members"]),
                        spec.get("total", 0), spec.get("ready", 0), str(spec.get("value", "")), spec.get("ips", True))
        now = time.monotonic()
        e.remaining = {m for m in e.remaining if not self.satisfied(e, m)}
        if not e.remaining:
            _emit({"done": e.id, "t": now, "already": True})
        else:
            group = "svc" if e.kind == "svc" else e.kind
            self.waiting[(group, e.ns, e.name)].append(e)
        _emit({"ack": e.id})


def _dns_query(name: str) -> bytes:
    """A DNS query for `name` A (RD clear), id 1."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\x01\x00\x01"


async def _dns(id_: int, addresses: list[str], name: str, count: int) -> None:
    """DNS has no watch: asks every member's server every DNS_PERIOD until its answer has `count` A records;
    done at the arrival of the last member's first such answer."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    remaining = {(host, int(port)) for host, _, port in (a.rpartition(":") for a in addresses)}
    query, last = _dns_query(name), time.monotonic()
    try:
        while remaining:
            for addr in remaining:
                sock.sendto(query, addr)
            deadline = time.monotonic() + DNS_PERIOD
            while remaining and (left := deadline - time.monotonic()) > 0:
                try:
                    data, addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 4096), left)
                except TimeoutError:
                    break
                now = time.monotonic()
                if addr in remaining and data[3] & 0xF == 0 and int.from_bytes(data[6:8], "big") == count:
                    remaining.discard(addr)
                    last = now
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        sock.close()
    _emit({"done": id_, "t": last})


def _emit(msg: Obj) -> None:
    sys.stdout.buffer.write(orjson.dumps(msg) + b"\n")
    sys.stdout.buffer.flush()


def _apply(state: ObserverState, cluster: str, what: str, event_type: str, obj: Obj, now: float) -> None:
    meta = obj.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    gone = event_type == "DELETED"
    if what == "si":
        state.ips[(cluster, ns, name)] = not gone and bool((obj.get("spec") or {}).get("ips"))
        state.check("svc", cluster, ns, name, now)
    elif what in ("imp", "loc"):
        labels = meta.get("labels") or {}
        service = labels.get(SERVICE_NAME_LABEL if what == "imp" else KUBE_SERVICE_NAME_LABEL)
        if not service:
            return
        table_ = state.imported if what == "imp" else state.local
        slices = table_[(cluster, ns, service)]
        if gone:
            slices.pop(name, None)
        else:
            slices[name] = _counts(obj)
        state.check("svc" if what == "imp" else "loc", cluster, ns, service, now)
    elif what == "cm":
        state.values[(cluster, ns, name)] = "" if gone else str((obj.get("data") or {}).get("v", ""))
        state.check("cm", cluster, ns, name, now)


async def _follow(state: ObserverState, client: ClusterClient, cluster: str, what: str, res: Resource,
                  namespace: str | None, selector: str | None, listed: asyncio.Event) -> None:
    """List, then watch from the list's version (no event lost between them); again after a 410."""
    while True:
        page = await client.list(res, namespace, label_selector=selector)
        now = time.monotonic()
        for obj in page.get("items") or []:
            _apply(state, cluster, what, "ADDED", obj, now)
        rv = page["metadata"]["resourceVersion"]
        listed.set()
        try:
            while True:
                async for event in client.watch(res, namespace, label_selector=selector, resource_version=rv):
                    now = time.monotonic()
                    obj = event["object"]
                    rv = obj["metadata"].get("resourceVersion") or rv
                    if event["type"] != "BOOKMARK":
                        _apply(state, cluster, what, event["type"], obj, now)
        except Gone:
            continue


async def observe(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = orjson.loads(await reader.readline())
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    state = ObserverState()
    tasks, events = [], []
    for name, (url, token) in config["clusters"].items():
        client = ClusterClient(ClientConfig(server=url, name=name, ca_data=config["ca"].encode(), token=token),
                               session)
        views: list[tuple[str, Resource, str | None, str | None]] = [
            ("si", SERVICE_IMPORTS, None, None), ("imp", ENDPOINT_SLICES, None, IMPORTED),
            ("cm", CONFIG_MAPS, FLOOR_NS, None)]
        if name in config["exporters"]:
            views.append(("loc", ENDPOINT_SLICES, NS, LOCAL))
        for what, res, namespace, selector in views:
            listed = asyncio.Event()
            events.append(listed)
            tasks.append(asyncio.create_task(_follow(state, client, name, what, res, namespace, selector, listed)))
    await asyncio.gather(*(e.wait() for e in events))
    _emit({"ready": True})
    while line := await reader.readline():
        state.add(orjson.loads(line))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


class Observer:
    """The fleet process's handle on the observer process."""

    def __init__(self, pin: bool) -> None:
        self.pin = pin
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[float]] = {}
        self.acks: dict[int, asyncio.Future[None]] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, fleet: EmbeddedFleet, members: list[str], exporters: list[str]) -> None:
        args = ["--cpu", "1"] if self.pin else []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.mcs_bench", "--observe", *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        LIVE_CHILDREN[self.proc.pid] = 0.0
        config = {"ca": fleet.server.ca_pem, "exporters": exporters,
                  "clusters": {m: (fleet.server.cluster_url(m), fleet.server.cluster_token(m)) for m in members}}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(config) + b"\n")
        line = await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)
        if not orjson.loads(line).get("ready"):
            raise RuntimeError(f"observer: {line!r}")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            msg = orjson.loads(line)
            if "ack" in msg:
                self.acks.pop(msg["ack"]).set_result(None)
            elif "done" in msg:
                fut = self.pending.pop(msg["done"])
                if not fut.done():
                    fut.set_result(float(msg["t"]))

    async def expect(self, kind: str, members: list[str], ns: str, name: str, **more: Any) -> asyncio.Future[float]:
        """Registers what the next write should bring about; the future is the arrival time of the event that
        completed it in the last member."""
        assert self.proc is not None and self.proc.stdin is not None
        id_ = next(self.ids)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        ack: asyncio.Future[None] = loop.create_future()
        self.pending[id_], self.acks[id_] = fut, ack
        self.proc.stdin.write(orjson.dumps({"id": id_, "kind": kind, "members": members, "ns": ns, "name": name,
                                            **more}) + b"\n")
        await ack
        return fut

    async def close(self) -> None:
        if self.proc is None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        LIVE_CHILDREN.pop(self.proc.pid, None)
        if self._reader is not None:
            self._reader.cancel()


async def timed(fut: asyncio.Future[float], started: float) -> float:
    return (await asyncio.wait_for(fut, TIMEOUT)) - started


# =========================================================================== workload
async def gather_limited(coros: list[Any], limit: int = 32) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with sem:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros))


async def namespaces(fleet: EmbeddedFleet, names: list[str]) -> None:
    coros = []
    for member in fleet.member_ids:
        client = fleet.admin_client(member)
        coros += [client.create(NAMESPACES, {"metadata": {"name": n}}) for n in names]
    await gather_limited(coros)


async def deployment_services(fleet: EmbeddedFleet, member: str, names: list[str], replicas: int,
                              headless: tuple[str, ...] = ()) -> None:
    """A Deployment with a Service for each name, in `member`; returns once every slice lists them all Ready."""
    client = fleet.admin_client(member)
    coros = []
    for name in names:
        labels = {"app": name}
        coros.append(client.create(DEPLOYMENTS, {
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}))
        coros.append(client.create(SERVICES, {
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                     **({"clusterIP": "None"} if name in headless else {})}}))
    await gather_limited(coros)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # setup, not timed: polling is fine here
        ready: dict[str, int] = defaultdict(int)
        for s in (await client.list(ENDPOINT_SLICES, NS, label_selector=LOCAL))["items"]:
            ready[s["metadata"]["labels"][KUBE_SERVICE_NAME_LABEL]] += _counts(s)[1]
        if all(ready[name] == replicas for name in names):
            return
        await asyncio.sleep(0.25)
    raise TimeoutError("the exporter's pods never became Ready")


def writes(fleet: EmbeddedFleet) -> tuple[int, int]:
    """(hub, members): every write bumps its cluster's resourceVersion by one; read in-process, no request."""
    hub = fleet.server.resource_version(HUB)
    return hub, sum(fleet.server.resource_version(m) for m in fleet.member_ids)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def mark(fleet: EmbeddedFleet, collector: CollectorClock) -> dict[str, float]:
    """Writes to the hub and to the members so far, the fleet process's CPU and collector seconds, the time."""
    hub, members = writes(fleet)
    return {"hub": hub, "members": members, "cpu": cpu_seconds(), "gc": collector.seconds, "wall": time.monotonic()}


def usage(fleet: EmbeddedFleet, collector: CollectorClock, start: dict[str, float]) -> dict[str, float]:
    """What `mark` counts, since `start`."""
    return {k: v - start[k] for k, v in mark(fleet, collector).items()}


async def statuses_written(fleet: EmbeddedFleet, members: list[str], name: str) -> None:
    """Until every member's import of `name` says Ready: the statuses wait for the data plane (the import
    reconciler's low lane), so the exports' cost counts them too. Read in process, after the timed part."""
    deadline = time.monotonic() + TIMEOUT
    waiting = list(members)
    while waiting:
        imports = [await fleet.local_client(m).get(SERVICE_IMPORTS, name, NS) for m in waiting]
        waiting = [m for m, obj in zip(waiting, imports, strict=True)
                   if (condition((obj.get("status") or {}).get("conditions"), "Ready") or {}).get("status") != "True"]
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no Ready import status in {len(waiting)} members")
        if waiting:
            await asyncio.sleep(0.05)


def export(name: str) -> Obj:
    return {"metadata": {"name": name, "namespace": NS}}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def p50_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), pct(values, 99)


@dataclass
class Settings:
    sequential: int = 30
    burst: int = 30
    replicas: int = 2
    flips: int = 20
    floor_single: int = 50
    floor_parallel: int = 10
    idle: float = 10.0  # one heartbeat: every member's agent probes it and renews its Lease once
    restart_members: int = 10
    restart_services: int = 10
    restart_endpoints: int = 1000
    restart_dns: bool = False  # the members' DNS servers re-pack a service's every answer on each slice event
    pin: bool = True
    profile: Path | None = None
    settle: bool = True  # settle the heap once the fleet is healthy, as clusterset up does


async def size_run(n: int, s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=n, member_settings={"pod_ready_delay": 0}))
        started = time.monotonic()
        await fleet.start()
        await fleet.wait_healthy(timeout=TIMEOUT)
        if s.settle:
            settle_heap()
        members = list(fleet.member_ids)
        exporter = members[0]
        await namespaces(fleet, [NS, FLOOR_NS])
        await gather_limited([fleet.admin_client(m).create(CONFIG_MAPS, {
            "metadata": {"name": "probe", "namespace": FLOOR_NS}, "data": {"v": "0"}}) for m in members])
        await deployment_services(fleet, exporter, [*(f"svc-{i}" for i in range(s.sequential + s.burst)), HEADLESS],
                                  s.replicas, headless=(HEADLESS,))
        out["setup"] = time.monotonic() - started
        observer = Observer(s.pin)
        await observer.start(fleet, members, [exporter])
        client = fleet.admin_client(exporter)
        fut = await observer.expect("svc", members, NS, HEADLESS, total=s.replicas, ready=s.replicas, ips=False)
        await client.create(SERVICE_EXPORTS, export(HEADLESS))
        await asyncio.wait_for(fut, TIMEOUT)
        step = max(1, n // DNS_SAMPLE)
        dns_members = members[::step][:DNS_SAMPLE]
        dns_addresses = [str(fleet.dns.address(m)) for m in dns_members]
        probe = BackgroundLoad()
        collector = CollectorClock()
        profiler = cProfile.Profile() if s.profile else None
        try:
            # ---- floor: one write, its watch event
            PHASE[0] = "floor"
            single = []
            for k in range(s.floor_single):
                member = members[k % n]
                fut = await observer.expect("cm", [member], FLOOR_NS, "probe", value=f"s{k}")
                t0 = time.monotonic()
                await fleet.admin_client(member).patch(CONFIG_MAPS, "probe", {"data": {"v": f"s{k}"}}, FLOOR_NS)
                single.append(await timed(fut, t0))
                await asyncio.sleep(GAP / 4)
            parallel = []
            for k in range(s.floor_parallel):
                fut = await observer.expect("cm", members, FLOOR_NS, "probe", value=f"p{k}")
                t0 = time.monotonic()
                await asyncio.gather(*(fleet.admin_client(m).patch(CONFIG_MAPS, "probe", {"data": {"v": f"p{k}"}},
                                                                   FLOOR_NS) for m in members))
                parallel.append(await timed(fut, t0))
                await asyncio.sleep(GAP)
            out["floor_single"], out["floor_parallel"] = single, parallel

            # ---- the background: heartbeats (Lease renewals) and reports (writes counted from resourceVersions)
            PHASE[0] = "idle"
            start = mark(fleet, collector)
            await asyncio.sleep(s.idle)
            out["idle"] = usage(fleet, collector, start)

            if profiler is not None:
                profiler.enable()
            # ---- export → imported, one at a time
            PHASE[0] = "sequential"
            start = mark(fleet, collector)
            seq = []
            for i in range(s.sequential):
                fut = await observer.expect("svc", members, NS, f"svc-{i}", total=s.replicas, ready=s.replicas)
                t0 = time.monotonic()
                await client.create(SERVICE_EXPORTS, export(f"svc-{i}"))
                seq.append(await timed(fut, t0))
                await asyncio.sleep(GAP)
            out["sequential"] = seq
            await statuses_written(fleet, members, f"svc-{s.sequential - 1}")
            out["sequential_usage"] = usage(fleet, collector, start)

            # ---- endpoint flips: a pod not ready, then ready again
            PHASE[0] = "flips"
            flips, local = [], []
            for k in range(s.flips):
                name = f"svc-{k // 2 % s.sequential}"
                pod = sorted(p["metadata"]["name"] for p in
                             (await client.list(PODS, NS, label_selector=f"app={name}"))["items"])[0]
                down = k % 2 == 0
                ready = s.replicas - 1 if down else s.replicas
                fut = await observer.expect("svc", members, NS, name, total=s.replicas, ready=ready)
                loc = await observer.expect("loc", [exporter], NS, name, total=s.replicas, ready=ready)
                t0 = time.monotonic()
                await client.patch(PODS, pod, {"metadata": {"annotations": {READY_HOOK: "false" if down else None}}},
                                   NS)
                flips.append(await timed(fut, t0))
                local.append(await timed(loc, t0))
                await asyncio.sleep(GAP)
            out["flips"], out["flip_local"] = flips, local

            # ---- endpoint flips of a headless service: → imported everywhere, → DNS answer changed
            PHASE[0] = "dns"
            pod = sorted(p["metadata"]["name"] for p in
                         (await client.list(PODS, NS, label_selector=f"app={HEADLESS}"))["items"])[0]
            hl_flips, dns = [], []
            for k in range(s.flips):
                down = k % 2 == 0
                ready = s.replicas - 1 if down else s.replicas
                fut = await observer.expect("svc", members, NS, HEADLESS, total=s.replicas, ready=ready, ips=False)
                answer = await observer.expect("dns", dns_members, NS, f"{HEADLESS}.{NS}.svc.clusterset.local",
                                               ready=ready, addresses=dns_addresses)
                t0 = time.monotonic()
                await client.patch(PODS, pod, {"metadata": {"annotations": {READY_HOOK: "false" if down else None}}},
                                   NS)
                hl_flips.append(await timed(fut, t0))
                dns.append(await timed(answer, t0))
                await asyncio.sleep(GAP)
            out["headless_flips"], out["dns"], out["dns_members"] = hl_flips, dns, len(dns_members)

            # ---- a burst: every remaining export created at once
            PHASE[0] = "burst"
            names = [f"svc-{i}" for i in range(s.sequential, s.sequential + s.burst)]
            futs = [await observer.expect("svc", members, NS, nm, total=s.replicas, ready=s.replicas) for nm in names]
            t0 = time.monotonic()
            await asyncio.gather(*(client.create(SERVICE_EXPORTS, export(nm)) for nm in names))
            out["burst"] = [await timed(f, t0) for f in futs]
        finally:
            if profiler is not None:
                profiler.disable()
                assert s.profile is not None
                s.profile.mkdir(parents=True, exist_ok=True)
                profiler.dump_stats(str(s.profile / f"mcs-{n}.pstats"))
            other, wall = probe.other_cpu_seconds()
            out["other_cores"] = other / wall if wall else 0.0
            collector.close()
            await observer.close()
            await fleet.stop()
    return out


# =========================================================================== agent restart
def endpoint_slices(service: str, index: int, endpoints: int, per_slice: int = 100) -> list[Obj]:
    out = []
    for j in range(0, endpoints, per_slice):
        eps = [{"addresses": [f"10.{100 + index}.{k // 250}.{k % 250 + 1}"],
                "conditions": {"ready": True, "serving": True, "terminating": False}}
               for k in range(j, min(endpoints, j + per_slice))]
        out.append({"metadata": {"name": f"{service}-{j // per_slice}", "namespace": NS,
                                 "labels": {KUBE_SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: "bench.clusterset.io"}},
                    "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                    "endpoints": eps})
    return out


View = tuple[Resource, str | None, str | None]
Snapshot = dict[str, tuple[str, str]]


async def snapshot(client: ClusterClient, views: Sequence[View]) -> Snapshot:
    """name → (uid, resourceVersion) of every object of the views."""
    out: dict[str, tuple[str, str]] = {}
    for res, namespace, selector in views:
        for obj in (await client.list(res, namespace, label_selector=selector))["items"]:
            meta = obj["metadata"]
            out[f"{res.plural}/{meta.get('namespace')}/{meta['name']}"] = (meta["uid"], meta["resourceVersion"])
    return out


def compare(before: Snapshot, after: Snapshot) -> tuple[int, int, int]:
    """(objects, recreated or gone, rewritten)."""
    recreated = sum(1 for k, (uid, _) in before.items() if k not in after or after[k][0] != uid)
    rewritten = sum(1 for k, (uid, rv) in before.items() if k in after and after[k][0] == uid and after[k][1] != rv)
    return len(before), recreated, rewritten


async def flip_source(client: ClusterClient, service: str, ready: bool) -> None:
    slice_ = await client.get(ENDPOINT_SLICES, f"{service}-0", NS)
    slice_["endpoints"][0]["conditions"]["ready"] = ready
    await client.update(ENDPOINT_SLICES, slice_)


async def restart_run(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m, services, per = s.restart_members, s.restart_services, s.restart_endpoints
    with tempfile.TemporaryDirectory() as tmp:
        fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=m, member_settings={"nodes": 1}, dns=s.restart_dns))
        await fleet.start()
        await fleet.wait_healthy(timeout=TIMEOUT)
        members = list(fleet.member_ids)
        exporter, importer = members[0], members[1]
        await namespaces(fleet, [NS, FLOOR_NS])
        client = fleet.admin_client(exporter)
        names = [f"svc-{i}" for i in range(services)]
        coros = []
        for i, name in enumerate(names):
            coros.append(client.create(SERVICES, {"metadata": {"name": name, "namespace": NS}, "spec": {
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
            coros += [client.create(ENDPOINT_SLICES, sl) for sl in endpoint_slices(name, i, per)]
        await gather_limited(coros)
        observer = Observer(s.pin)
        await observer.start(fleet, members, [exporter])
        try:
            futs = [await observer.expect("svc", members, NS, nm, total=per, ready=per) for nm in names]
            t0 = time.monotonic()
            await asyncio.gather(*(client.create(SERVICE_EXPORTS, export(nm)) for nm in names))
            out["initial"] = max([await timed(f, t0) for f in futs])
            await asyncio.sleep(2.0)  # trailing status writes settle

            imported: list[View] = [(SERVICE_IMPORTS, NS, None), (ENDPOINT_SLICES, NS, IMPORTED),
                        (SERVICES, NS, SERVICE_NAME_LABEL)]
            hub_ns = fleet.members.agents[exporter].hub_namespace
            hub_views: list[View] = [(EXPORTED_SERVICES, hub_ns, None), (EXPORTED_ENDPOINTS, hub_ns, None),
                         (CLUSTERSET_ENDPOINTS, fleet.options.clusterset, None)]
            for who, ready in ((importer, False), (exporter, True)):
                watched = [importer] if who == importer else members
                before = {c: await snapshot(fleet.admin_client(c), imported) for c in (importer, exporter)}
                before[HUB] = await snapshot(fleet.admin_client(HUB), hub_views)
                fut = await observer.expect("svc", watched, NS, names[0], total=per, ready=per - (not ready))
                others = [x for x in members if x != who]
                ref = await observer.expect("svc", others, NS, names[0], total=per, ready=per - (not ready)) \
                    if who == importer else None
                t0 = time.monotonic()
                await fleet.members.remove(who)
                t_removed = time.monotonic()
                await fleet.join_member(who)
                t_joined = time.monotonic()
                await flip_source(client, names[0], ready)
                t_changed = time.monotonic()
                synced_at = None
                while not fut.done():  # in-process flags, no request
                    agent = fleet.agent_manager.clusters.get(who)
                    view = fleet.agent_manager.clusters.get(f"{who}@hub")
                    if synced_at is None and agent is not None and view is not None and agent.synced and view.synced \
                            and agent.informers():
                        synced_at = time.monotonic()
                    await asyncio.sleep(0.005)
                consistent = await timed(fut, t0)
                reference = await timed(ref, t_changed) if ref is not None else None
                await asyncio.sleep(2.0)
                after = {c: await snapshot(fleet.admin_client(c), imported) for c in (importer, exporter)}
                after[HUB] = await snapshot(fleet.admin_client(HUB), hub_views)
                out[who] = {
                    "role": "importer" if who == importer else "exporter",
                    "remove": t_removed - t0, "join": t_joined - t_removed, "changed": t_changed - t0,
                    "synced": (synced_at - t0) if synced_at else None, "consistent": consistent,
                    "reference": reference,
                    "objects": {c: compare(before[c], after[c]) for c in before},
                }
        finally:
            await observer.close()
            await fleet.stop()
    return out


# =========================================================================== report
def ms(x: float) -> str:
    return f"{x * 1000:,.0f}" if x >= 0.1 else f"{x * 1000:.1f}"


def pair(values: list[float]) -> str:
    p50, p99 = p50_p99(values)
    return f"{ms(p50)} / {ms(p99)}"


def report(runs: list[dict[str, Any]], s: Settings) -> None:
    rows, ratios = [], []
    for r in runs:
        n = r["n"]
        f1, fp = p50_p99(r["floor_single"]), p50_p99(r["floor_parallel"])
        chain = (2 * f1[0] + fp[0], 2 * f1[1] + fp[1])
        seq, burst, flips = p50_p99(r["sequential"]), p50_p99(r["burst"]), p50_p99(r["flips"])
        rows.append([f"{n}", pair(r["sequential"]), f"{pair(r['burst'])} / {ms(max(r['burst']))}",
                     pair(r["flips"]), pair(r["flip_local"]), pair(r["floor_single"]), pair(r["floor_parallel"]),
                     f"{ms(chain[0])} / {ms(chain[1])}", f"{r['other_cores']:.2f}"])
        ratios.append([f"{n}", f"{seq[0] / f1[0]:.0f} / {seq[1] / f1[1]:.0f}",
                       f"{seq[0] / chain[0]:.1f} / {seq[1] / chain[1]:.1f}",
                       f"{flips[0] / chain[0]:.1f} / {flips[1] / chain[1]:.1f}",
                       f"{burst[1] / chain[1]:.1f}",
                       "met" if seq[1] <= 1.0 else f"**missed** ({seq[1]:.2f} s)",
                       "met" if seq[1] <= 5 * chain[1] else f"**missed** ({seq[1] / chain[1]:.1f}x)"])
    print()
    print(f"P50 / P99 in ms; {s.sequential} exports one at a time, then a burst of {s.burst}; {s.flips} endpoint "
          f"flips; floor: {s.floor_single} single writes, {s.floor_parallel} x N parallel")
    print(table(["members", "export → imported everywhere, one at a time", "burst: P50 / P99 / last",
                 "endpoint flip → imported everywhere", "(flip → exporter's own slice)", "floor: 1 write + watch",
                 "floor: N writes in parallel", "floor chain 2 x 1 + N", "other procs (cores)"], rows))
    print()
    print(table(["members", "export ÷ single-write floor (P50 / P99)", "export ÷ chain floor",
                 "flip ÷ chain floor", "burst P99 ÷ chain P99", "P99 ≤ 1 s", "P99 ≤ 5x floor"], ratios))
    drows = []
    for r in runs:
        f1, fp = p50_p99(r["floor_single"]), p50_p99(r["floor_parallel"])
        chain = (2 * f1[0] + fp[0], 2 * f1[1] + fp[1])
        d = p50_p99(r["dns"])
        drows.append([f"{r['n']}", pair(r["headless_flips"]), f"{pair(r['dns'])} ({r['dns_members']} members)",
                      f"{d[0] / chain[0]:.1f} / {d[1] / chain[1]:.1f}"])
    print()
    print(table(["members", "headless flip → imported everywhere", "→ DNS answer changed (A records)",
                 "DNS ÷ chain floor"], drows))
    costs = []
    for r in runs:
        n, idle, use, count = r["n"], r["idle"], r["sequential_usage"], len(r["sequential"])
        bg_hub, bg_members, bg_cpu = (idle[k] / idle["wall"] for k in ("hub", "members", "cpu"))
        member_writes = (use["members"] - bg_members * use["wall"]) / count
        hub_writes = (use["hub"] - bg_hub * use["wall"]) / count
        cpu = (use["cpu"] - bg_cpu * use["wall"]) / count
        costs.append([f"{n}", f"{bg_hub:.1f} / {bg_members:.1f}", f"{bg_cpu:.2f}",
                      f"{member_writes:.1f} / {hub_writes:.1f}", f"{member_writes / n:.1f}", f"{cpu * 1000:,.0f}",
                      f"{cpu * 1000 / n:.1f}", f"{use['cpu'] / use['wall']:.2f}", f"{use['gc'] / use['cpu']:.0%}"])
    print()
    print(table(["members", "idle: writes/s hub / members", "idle: fleet CPU (cores)",
                 "writes per export: members / hub", "per member", "fleet CPU per export (ms)",
                 "per member (ms)", "fleet CPU while exporting one at a time (cores)",
                 "of which the cyclic collector"], costs))


def report_restart(r: dict[str, Any], s: Settings) -> None:
    print()
    total = s.restart_services * s.restart_endpoints
    print(f"agent restart, {s.restart_members} members, {s.restart_services} services x {s.restart_endpoints:,} "
          f"endpoints ({total:,}) exported from member-1; initial import into all members: {r['initial']:.1f} s")
    rows = []
    for key in sorted(k for k in r if k != "initial"):
        x = r[key]
        objs = "; ".join(f"{c}: {o[0]} objects, {o[1]} recreated, {o[2]} rewritten" for c, o in x["objects"].items())
        rows.append([f"{key} ({x['role']})", f"{x['remove']:.2f}", f"{x['join']:.2f}",
                     "-" if x["synced"] is None else f"{x['synced']:.2f}", f"{x['consistent']:.2f}",
                     "-" if x["reference"] is None else f"{x['reference']:.2f}",
                     "met" if x["consistent"] <= 10 else "**missed**", objs])
    print(table(["agent restarted", "stop (s)", "join + start (s)", "caches synced (s)",
                 "→ change reflected (s)", "same change, other members (s)", "≤ 10 s", "objects before → after"],
                rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="3,10,100")
    parser.add_argument("--quick", action="store_true", help="sizes 3,10, few samples, 1,000-endpoint restart")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the fleet to CPU 0, the observer to CPU 1")
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument("--restart-only", action="store_true")
    parser.add_argument("--restart-with-dns", action="store_true",
                        help="run the members' DNS servers in the restart fleet too (slow: see BENCHMARKS.md)")
    parser.add_argument("--unsettled-heap", action="store_true",
                        help="leave the collector as CPython starts it (what settle_heap buys)")
    parser.add_argument("--profile", type=Path, help="cProfile the export/flip phases into DIR/mcs-N.pstats")
    parser.add_argument("--observe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.observe:
        asyncio.run(observe(args.cpu))
        return 0
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    s = Settings(pin=pin, profile=args.profile, restart_dns=args.restart_with_dns, settle=not args.unsettled_heap)
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.quick:
        sizes = [3, 10]
        s = Settings(sequential=8, burst=8, flips=6, floor_single=16, floor_parallel=4, idle=2.0, restart_members=3,
                     restart_endpoints=100, pin=pin, profile=args.profile,
                     restart_dns=args.restart_with_dns, settle=not args.unsettled_heap)
    if pin:
        os.sched_setaffinity(0, {0})
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['cores']}, {info['memory']}, {info['os']}, {info['python']}, "
          f"SQLite {info['sqlite']}, aiohttp {info['aiohttp']}; "
          + ("fleet pinned to CPU 0, observer to CPU 1" if pin else "not pinned"), flush=True)
    runs = []
    if not args.restart_only:
        for n in sizes:
            r = run_as_up(size_run(n, s))
            print(f"  N={n}: setup {r['setup']:.1f}s, export P50/P99 {pair(r['sequential'])} ms, "
                  f"flip {pair(r['flips'])} ms, floor {pair(r['floor_single'])} ms", flush=True)
            runs.append(r)
    if runs:
        report(runs, s)
    if not args.no_restart:
        report_restart(run_as_up(restart_run(s)), s)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
