"""Benchmark of the embedded API server against SQLite (the storage limit) and etcd (what Kubernetes uses).

    .venv/bin/python -m bench.apiserver_bench [--quick] [--json-out FILE]

Every server under test (ours, etcd, the raw SQLite loop) runs in its own process pinned to CPU 0; this
process, the load generator, pins itself to CPU 1. Measured, in one run:

- writes/s: ConfigMap creates with ~1 KB of data over HTTPS (aiohttp, one keep-alive session per client),
  1 and 16 concurrent clients, p50/p99; etcd takes the same bodies as puts via its HTTP gateway
  (`/v3/kv/put`) from the same client code; SQLite takes the same rows directly;
- list latency at 10,000 objects: the full list, a label-selected list (1 in 10) and limit=500 pages;
- watch events/s delivered to 100 concurrent watchers while 16 clients write N objects, and the same
  events replayed from the history window to 100 new watchers;
- memory per idle logical cluster (RSS of a process with 1,001 clusters minus one with 1, over 1,000) and
  the time to bring 1,000 logical clusters up: cold, on restart, and one by one via `POST /admin/clusters`.

Every figure is also given as a ratio to the reference measured in the same run, each table is printed
with the machine it ran on, and the run says whether other processes disturbed it (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import machine
from bench.load import LoadResult, percentile, run_count, run_load, session
from bench.procs import (
    REPO,
    ApiserverProcess,
    EtcdProcess,
    cpu_seconds,
    install_etcd_hint,
    pin_self,
    try_install_etcd,
)
from bench.workload import configmap_bytes, list_labels

JSON_HEADERS = {"Content-Type": "application/json"}
LIST_OBJECTS = 10_000
WATCHERS = 100
PHASES = machine.PhaseLog()
CLUSTERS = 1_000


@dataclass
class Settings:
    quick: bool
    write_seconds: float
    write_reps: int
    list_reps: int
    watch_writes: int
    clusters: int
    sqlite_seconds: float
    admin_batch: int
    admin_budget: float  # seconds of `POST /admin/clusters` before projecting the rest

    @staticmethod
    def make(quick: bool) -> Settings:
        if quick:
            return Settings(True, 1.5, 1, 4, 300, CLUSTERS, 0.7, 25, 3.0)
        return Settings(False, 5.0, 3, 20, 2_000, CLUSTERS, 3.0, 50, 40.0)


@dataclass
class WriteFigure:
    rate: float
    p50: float
    p99: float
    cpu: float  # server CPU cores used
    client_cpu: float = 0.0  # load generator CPU cores used
    errors: int = 0


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sqlite: dict[str, Any] = field(default_factory=dict)
    etcd: dict[str, Any] = field(default_factory=dict)
    ours: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)  # --before: the same figures of an earlier checkout
    background: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def measured_load(run: Callable[[], Awaitable[LoadResult]], pid: int) -> WriteFigure:
    c0 = _cpu(pid)
    res = await run()
    used = (_cpu(pid) - c0) / res.seconds if res.seconds else 0.0
    if res.errors:
        print(f"    ! {res.errors} errors, first: {res.first_error}", flush=True)
    client = res.client_cpu / res.seconds if res.seconds else 0.0
    return WriteFigure(res.rate, res.p(50), res.p(99), used, client, res.errors)


def median_figure(figs: list[WriteFigure]) -> WriteFigure:
    ordered = sorted(figs, key=lambda f: f.rate)
    return ordered[len(ordered) // 2]


def fmt_rate(v: float) -> str:
    return f"{v:,.0f}"


def fmt_ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine_short(info: dict[str, str]) -> str:
    return (f"_machine: {info['cpu']}, {info['cores']}, {info['python']}, SQLite {info['sqlite']}, "
            f"etcd {info['etcd']}; server on CPU 0, client on CPU 1_")


def machine_line(info: dict[str, str]) -> str:
    return (f"machine: {info['cpu']}, {info['cores']}, {info['memory']}, {info['os']}, {info['python']}, "
            f"SQLite {info['sqlite']}, etcd {info['etcd']}; servers pinned to CPU 0, load generator to CPU 1")


# --------------------------------------------------------------------------- SQLite reference
def run_sqlite_reference(s: Settings) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.sqlite_ref", "--json", "--seconds", str(s.sqlite_seconds),
           "--list-reps", str(s.list_reps)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True, timeout=600).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- etcd reference
async def etcd_writes(etcd: EtcdProcess, s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clients in (1, 16):
        figs = []
        for rep in range(s.write_reps):
            def make(w: int, i: int, rep: int = rep, clients: int = clients) -> tuple[str, bytes, dict[str, str]]:
                name = f"cm-{clients}-{rep}-{w}-{i}"
                body = orjson.dumps({"key": b64(f"/registry/configmaps/w/{name}"), "value": b64(configmap_bytes(name))})
                return f"{etcd.url}/v3/kv/put", body, JSON_HEADERS

            figs.append(await measured_load(partial(run_load, make, clients, seconds=s.write_seconds), etcd.pid))
        out[f"writes_{clients}"] = median_figure(figs).__dict__
        print(f"  etcd writes, {clients} clients: {out[f'writes_{clients}']['rate']:,.0f}/s", flush=True)
    return out


async def etcd_lists(etcd: EtcdProcess, s: Settings) -> dict[str, Any]:
    prefix = "/registry/configmaps/list/"

    numbers = count()

    def make(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
        n = next(numbers)
        name = f"cm-{n:08d}"
        body = orjson.dumps({"key": b64(prefix + name), "value": b64(configmap_bytes(name, list_labels(n)))})
        return f"{etcd.url}/v3/kv/put", body, JSON_HEADERS

    load = await run_count(make, 16, LIST_OBJECTS)
    assert load.errors == 0, load.first_error
    url = f"{etcd.url}/v3/kv/range"
    out: dict[str, Any] = {}
    async with session(None) as sess:
        async def full() -> bytes:
            body = orjson.dumps({"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
            async with sess.post(url, data=body, headers=JSON_HEADERS) as resp:
                return await resp.read()

        first = orjson.loads(await full())
        assert len(first["kvs"]) == LIST_OBJECTS, len(first["kvs"])
        cpu0 = _cpu(etcd.pid)
        lat = [await _timed(full) for _ in range(s.list_reps)]
        out["full"] = {"p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
                       "server_cpu_ms": (_cpu(etcd.pid) - cpu0) / len(lat) * 1000}
        page_lat: list[float] = []
        walks: list[float] = []
        for _ in range(max(1, s.list_reps // 2)):
            key = prefix
            walk = 0.0
            while True:
                body = orjson.dumps({"key": b64(key), "range_end": b64(prefix_end(prefix)), "limit": 500})
                t0 = time.perf_counter()
                async with sess.post(url, data=body, headers=JSON_HEADERS) as resp:
                    raw = await resp.read()
                dt = time.perf_counter() - t0
                page_lat.append(dt)
                walk += dt
                doc = orjson.loads(raw)
                if not doc.get("more"):
                    break
                key = base64.b64decode(doc["kvs"][-1]["key"]).decode() + "\x00"
            walks.append(walk)
        out["page500"] = {"p50_ms": percentile(page_lat, 50) * 1000, "p99_ms": percentile(page_lat, 99) * 1000,
                          "walk_ms": percentile(walks, 50) * 1000}
    return out


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def etcd_watch(etcd: EtcdProcess, s: Settings) -> dict[str, Any]:
    prefix = "/registry/configmaps/watch/"
    n = s.watch_writes
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as sess:
        streams = []
        create = orjson.dumps({"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}})
        for _ in range(WATCHERS):
            resp = await sess.post(f"{etcd.url}/v3/watch", data=create, headers=JSON_HEADERS)
            await resp.content.readline()  # {"result": {"created": true}}: the watch is registered
            streams.append(resp)

        def make(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
            name = f"cm-{w}-{i}"
            body = orjson.dumps({"key": b64(prefix + name), "value": b64(configmap_bytes(name))})
            return f"{etcd.url}/v3/kv/put", body, JSON_HEADERS

        return await _watch_run(streams, make, n, etcd.pid, token=b'{"kv":', warm_get=(f"{etcd.url}/health", {}))


def _stream_counters(streams: list[aiohttp.ClientResponse], n: int, token: bytes
                     ) -> tuple[list[asyncio.Task[None]], list[float], list[int]]:
    """One reader task per stream counting `token` until it has seen `n`; returns (tasks, done times, counts)."""
    done_at: list[float] = []
    counts = [0] * len(streams)

    async def reader(idx: int, resp: aiohttp.ClientResponse) -> None:
        tail = b""
        keep = len(token) - 1
        async for chunk in resp.content.iter_any():
            data = tail + chunk
            counts[idx] += data.count(token)
            tail = data[-keep:] if keep else b""
            if token in tail:
                tail = b""
            if counts[idx] >= n:
                done_at.append(time.perf_counter())
                break
        resp.close()

    return [asyncio.create_task(reader(i, r)) for i, r in enumerate(streams)], done_at, counts


async def _finish(tasks: list[asyncio.Task[None]], timeout: float = 120.0) -> None:
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=timeout)
    except TimeoutError:
        for t in tasks:
            t.cancel()


async def _watch_run(streams: list[aiohttp.ClientResponse], make: Any, n: int, pid: int, token: bytes,
                     warm_get: tuple[str, dict[str, str]], ssl_ctx: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Counts `token` in every stream until each has seen `n` events; writes `n` objects meanwhile."""
    readers, done_at, counts = _stream_counters(streams, n, token)
    started: list[float] = []
    c0 = [0.0]

    def first(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
        if not started:  # the clock starts at the first write, after the writers' warm-up
            started.append(time.perf_counter())
            c0[0] = _cpu(pid)
        result: tuple[str, bytes, dict[str, str]] = make(w, i)
        return result

    load = await run_count(first, 16, n, ssl_ctx=ssl_ctx, warm_get=warm_get)
    start = started[0]
    await _finish(readers)
    complete = len(done_at) == len(streams)
    elapsed = (max(done_at) if complete else time.perf_counter()) - start
    delivered = sum(min(c, n) for c in counts)
    return {"events": delivered, "expected": n * len(streams), "seconds": elapsed,
            "rate": delivered / elapsed if elapsed else 0.0, "write_rate": load.rate,
            "write_seconds": load.seconds, "cpu": (_cpu(pid) - c0[0]) / elapsed if elapsed else 0.0,
            "complete": complete}


def _cpu(pid: int) -> float:
    return cpu_seconds(pid)


async def run_etcd(work: Path, s: Settings) -> dict[str, Any]:
    etcd = EtcdProcess(work).start()
    try:
        await asyncio.sleep(0.5)
        out: dict[str, Any] = {"startup_s": etcd.ready_seconds, "idle_rss": etcd.proc.rss() if etcd.proc else 0}
        print(f"  etcd up in {etcd.ready_seconds:.2f}s, idle RSS {out['idle_rss'] / 2**20:.1f} MiB", flush=True)
        out.update(await etcd_writes(etcd, s))
        out["lists"] = await etcd_lists(etcd, s)
        print(f"  etcd range of {LIST_OBJECTS:,}: p50 {out['lists']['full']['p50_ms']:.1f} ms", flush=True)
        out["watch"] = await etcd_watch(etcd, s)
        print(f"  etcd watch: {out['watch']['rate']:,.0f} events/s", flush=True)
        return out
    finally:
        etcd.stop()


# --------------------------------------------------------------------------- our API server
class Ours:
    def __init__(self, srv: ApiserverProcess) -> None:
        self.srv = srv
        self.ssl = srv.ssl_context()
        self.tokens = srv.tokens()

    def headers(self, cluster: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[cluster]}", **JSON_HEADERS}

    def url(self, cluster: str, path: str) -> str:
        return f"{self.srv.url}/clusters/{cluster}{path}"

    async def create_namespace(self, sess: aiohttp.ClientSession, cluster: str, ns: str) -> None:
        body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        async with sess.post(self.url(cluster, "/api/v1/namespaces"), data=body, headers=self.headers(cluster)) as r:
            if r.status not in (201, 409):
                raise RuntimeError(f"namespace {ns}: {r.status} {await r.text()}")

    def configmap_maker(self, cluster: str, ns: str, prefix: str,
                        labels: Callable[[int], dict[str, str]] | None = None) -> Any:
        url = self.url(cluster, f"/api/v1/namespaces/{ns}/configmaps")
        headers = self.headers(cluster)

        numbers = count()

        def make(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
            n = next(numbers)
            return url, configmap_bytes(f"{prefix}{n:08d}", labels(n) if labels else None), headers

        return make


async def ours_writes(o: Ours, s: Settings, label: str = "ours") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clients in (1, 16):
        figs = []
        for rep in range(s.write_reps):
            make = o.configmap_maker("bench", "w", f"cm-{clients}-{rep}-")
            figs.append(await measured_load(partial(run_load, make, clients, seconds=s.write_seconds, ssl_ctx=o.ssl),
                                            o.srv.pid))
        out[f"writes_{clients}"] = median_figure(figs).__dict__
        print(f"  {label} writes, {clients} clients: {out[f'writes_{clients}']['rate']:,.0f}/s", flush=True)
    return out


async def ours_lists(o: Ours, s: Settings) -> dict[str, Any]:
    make = o.configmap_maker("lists", "list", "cm-", list_labels)
    async with session(o.ssl) as sess, sess.get(o.url("lists", "/api/v1/namespaces/list/configmaps"),
                                                  headers=o.headers("lists")) as r:
        before = len((await r.json())["items"])
    load = await run_count(make, 16, LIST_OBJECTS, ssl_ctx=o.ssl)
    assert load.errors == 0, load.first_error
    base = o.url("lists", "/api/v1/namespaces/list/configmaps")
    headers = o.headers("lists")
    out: dict[str, Any] = {}
    async with session(o.ssl) as sess:
        async def get(url: str) -> bytes:
            async with sess.get(url, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {url}: {resp.status} {body[:300]!r}")
                return body

        # the namespace controller adds kube-root-ca.crt to every namespace, as Kubernetes does
        for label, url, expect in (("full", base, LIST_OBJECTS + before),
                                   ("selected", f"{base}?labelSelector=sel%3Dyes", LIST_OBJECTS // 10)):
            items = len(orjson.loads(await get(url))["items"])
            assert items == expect, (label, items)
            cpu0 = _cpu(o.srv.pid)
            lat = [await _timed(partial(get, url)) for _ in range(s.list_reps)]
            out[label] = {"p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000,
                          "server_cpu_ms": (_cpu(o.srv.pid) - cpu0) / len(lat) * 1000}
        page_lat: list[float] = []
        walks: list[float] = []
        for _ in range(max(1, s.list_reps // 2)):
            cont = ""
            walk = 0.0
            seen = 0
            while True:
                url = f"{base}?limit=500" + (f"&continue={cont}" if cont else "")
                t0 = time.perf_counter()
                raw = await get(url)
                dt = time.perf_counter() - t0
                page_lat.append(dt)
                walk += dt
                doc = orjson.loads(raw)
                seen += len(doc["items"])
                cont = doc["metadata"].get("continue", "")
                if not cont:
                    break
            assert seen == LIST_OBJECTS + before, seen
            walks.append(walk)
        out["page500"] = {"p50_ms": percentile(page_lat, 50) * 1000, "p99_ms": percentile(page_lat, 99) * 1000,
                          "walk_ms": percentile(walks, 50) * 1000}
    return out


async def ours_watch(o: Ours, s: Settings) -> dict[str, Any]:
    n = s.watch_writes
    headers = o.headers("watch")
    async with session(o.ssl) as sess:
        await o.create_namespace(sess, "watch", "w")
        await asyncio.sleep(0.5)  # the namespace controller's kube-root-ca.crt lands before the watch starts
        async with sess.get(o.url("watch", "/api/v1/namespaces/w/configmaps"), headers=headers) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
    conn = aiohttp.TCPConnector(limit=0, ssl=o.ssl)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as sess:
        url = o.url("watch", f"/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}")
        # the server registers the watcher before it sends the response headers
        streams = list(await asyncio.gather(*(sess.get(url, headers=headers) for _ in range(WATCHERS))))
        assert all(r.status == 200 for r in streams), [r.status for r in streams]
        make = o.configmap_maker("watch", "w", "cm-")
        warm = (o.url("watch", "/api/v1/namespaces/w/configmaps?limit=1"), headers)
        out = await _watch_run(streams, make, n, o.srv.pid, token=b"\n", warm_get=warm, ssl_ctx=o.ssl)
        # replay: 100 new watchers from the same resourceVersion get the n events from the history window
        c0 = _cpu(o.srv.pid)
        start = time.perf_counter()
        streams = list(await asyncio.gather(*(sess.get(url, headers=headers) for _ in range(WATCHERS))))
        readers, done_at, counts = _stream_counters(streams, n, b"\n")
        await _finish(readers)
        complete = len(done_at) == len(streams)
        elapsed = (max(done_at) if complete else time.perf_counter()) - start
        delivered = sum(min(c, n) for c in counts)
        out["replay"] = {"events": delivered, "expected": n * WATCHERS, "seconds": elapsed,
                         "rate": delivered / elapsed if elapsed else 0.0, "complete": complete,
                         "cpu": (_cpu(o.srv.pid) - c0) / elapsed if elapsed else 0.0}
        return out


async def _warm_rss(o: Ours, cluster: str) -> int:
    """RSS after a few requests to `cluster` (the request path warmed, like a cluster that has been used)."""
    async with session(o.ssl) as sess:
        for _ in range(5):
            async with sess.get(o.url(cluster, "/api/v1/namespaces"), headers=o.headers(cluster)) as r:
                await r.read()
                assert r.status == 200, r.status
    await asyncio.sleep(0.5)
    return o.srv.proc.rss() if o.srv.proc else 0


async def ours_admin_adds(work: Path, s: Settings) -> dict[str, Any]:
    """Adds clusters through `POST /admin/clusters` (16 clients) in batches, until N or the time budget."""
    srv = ApiserverProcess(work / "admin-state", ["c0"]).start()
    out: dict[str, Any] = {"batch": s.admin_batch, "batches": []}
    try:
        o = Ours(srv)
        rss1 = await _warm_rss(o, "c0")
        admin = {"Authorization": f"Bearer {srv.admin_token()}", **JSON_HEADERS}
        numbers = count(1)

        def make(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
            return f"{srv.url}/admin/clusters", orjson.dumps({"name": f"c{next(numbers)}"}), admin

        added = 0
        total = 0.0
        cpu0 = _cpu(srv.pid)
        p50s: list[float] = []
        while added < s.clusters and total < s.admin_budget:
            load = await run_count(make, 16, s.admin_batch, ssl_ctx=o.ssl, expect=(201,))
            assert load.errors == 0, load.first_error
            added += s.admin_batch
            total += load.seconds
            out["batches"].append(load.seconds)
            p50s.append(load.p(50))
            print(f"    admin API: {added} clusters added, {total:.1f}s", flush=True)
        out.update({"added": added, "seconds": total, "cpu_s": _cpu(srv.pid) - cpu0, "last_p50_ms": p50s[-1]})
        await asyncio.sleep(0.5)
        rss2 = srv.proc.rss() if srv.proc else 0
        out["per_cluster"] = (rss2 - rss1) / added
        # a cluster added last answers with its own token
        last = f"c{added}"
        token = srv.token(last)
        async with session(o.ssl) as sess, sess.get(f"{srv.url}/clusters/{last}/api/v1/namespaces",
                                                      headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, r.status
    finally:
        srv.stop()
    if added < s.clusters:
        # batch k (0-based) takes about a + b*k: fit the line and sum it to N clusters
        ys = out["batches"]
        k = len(ys)
        if k >= 2:
            xs = list(range(k))
            mx, my = sum(xs) / k, sum(ys) / k
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
            a = my - b * mx
            n_batches = s.clusters // s.admin_batch
            out["projected_s"] = sum(a + b * i for i in range(n_batches))
    return out


async def ours_clusters(work: Path, s: Settings) -> dict[str, Any]:
    """RSS of a process with 1 cluster vs 1 + N; the time to bring N + 1 up, cold and on restart."""
    n = s.clusters
    out: dict[str, Any] = {"clusters": n}
    one = ApiserverProcess(work / "one-state", ["c0"]).start()
    try:
        out["rss_1"] = await _warm_rss(Ours(one), "c0")
    finally:
        one.stop()
    names = ["c0", *(f"c{i}" for i in range(1, n + 1))]
    state = work / "many-state"
    last = f"c{n}"

    async def up(label: str) -> ApiserverProcess:
        t0 = time.perf_counter()
        srv = ApiserverProcess(state, names).start(timeout=300)
        o = Ours(srv)
        async with session(o.ssl) as sess, sess.get(o.url(last, "/api/v1/namespaces"), headers=o.headers(last)) as r:
            assert r.status == 200, r.status
            out[f"{label}_namespaces"] = len((await r.json())["items"])
        out[f"{label}_s"] = time.perf_counter() - t0
        out[f"{label}_cpu_s"] = _cpu(srv.pid)
        out[f"rss_{label}"] = await _warm_rss(o, "c0")
        return srv

    srv = await up("cold")
    srv.stop()
    print(f"  {n + 1:,} clusters from cold: {out['cold_s']:.1f}s, RSS {out['rss_cold'] / 2**20:.1f} MiB", flush=True)
    srv = await up("restart")
    srv.stop()
    print(f"  restart on {n + 1:,} clusters: {out['restart_s']:.1f}s", flush=True)
    out["per_cluster"] = (out["rss_cold"] - out["rss_1"]) / n
    out["per_cluster_restart"] = (out["rss_restart"] - out["rss_1"]) / n
    out["admin"] = await ours_admin_adds(work, s)
    return out


async def durable_writes(state: Path, s: Settings, label: str, tree: Path | None = None) -> dict[str, Any]:
    """Writes of a `--durable` server (the WAL synced before a write is answered, as etcd syncs per batch)."""
    srv = ApiserverProcess(state, ["bench"], durable=True, tree=tree).start()
    try:
        o = Ours(srv)
        async with session(o.ssl) as sess:
            await o.create_namespace(sess, "bench", "w")
        with PHASES.phase(f"{label} writes"):
            result: dict[str, Any] = await ours_writes(o, s, label)
            return result
    finally:
        srv.stop()


async def run_before(work: Path, s: Settings, tree: Path) -> dict[str, Any]:
    """Writes and watch of an earlier checkout, in the same run (the same machine state) as ours."""
    srv = ApiserverProcess(work / "before-state", ["bench", "watch"], tree=tree).start()
    try:
        o = Ours(srv)
        async with session(o.ssl) as sess:
            await o.create_namespace(sess, "bench", "w")
        with PHASES.phase("before: writes"):
            out: dict[str, Any] = await ours_writes(o, s, "before")
        with PHASES.phase("before: watch"):
            out["watch"] = await ours_watch(o, s)
    finally:
        srv.stop()
    out["durable"] = await durable_writes(work / "before-durable-state", s, "before --durable", tree)
    out["commit"] = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"], capture_output=True,
                                   text=True).stdout.strip() or str(tree)
    return out


async def run_ours(work: Path, s: Settings) -> dict[str, Any]:
    srv = ApiserverProcess(work / "state", ["bench", "lists", "watch"]).start()
    try:
        o = Ours(srv)
        async with session(o.ssl) as sess:
            await o.create_namespace(sess, "bench", "w")
            await o.create_namespace(sess, "lists", "list")
        with PHASES.phase("ours writes"):
            out: dict[str, Any] = await ours_writes(o, s)
        with PHASES.phase("ours lists"):
            out["lists"] = await ours_lists(o, s)
        print(f"  ours list of {LIST_OBJECTS:,}: p50 {out['lists']['full']['p50_ms']:.1f} ms", flush=True)
        with PHASES.phase("ours watch"):
            out["watch"] = await ours_watch(o, s)
        print(f"  ours watch: {out['watch']['rate']:,.0f} events/s", flush=True)
    finally:
        srv.stop()
    out["durable"] = await durable_writes(work / "durable-state", s, "ours --durable")
    with PHASES.phase("ours clusters"):
        out["cluster_mem"] = await ours_clusters(work, s)
    return out


# --------------------------------------------------------------------------- report
def report(r: Results) -> str:
    m = machine_line(r.machine)
    ms = machine_short(r.machine)
    sq, et, us = r.sqlite, r.etcd, r.ours
    parts = [m, ""]
    if r.notes:
        parts += [f"note: {n}" for n in r.notes] + [""]

    # writes
    rows = []

    def wrow(label: str, f: dict[str, Any], e: dict[str, Any] | None, q: dict[str, Any] | None) -> list[str]:
        server = f"{f['cpu']:.2f}" if "cpu" in f else "1 (in-process)"
        client = f"{f['client_cpu']:.2f}" if "client_cpu" in f else "-"
        return [label, fmt_rate(f["rate"]), fmt_ms(f.get("p50_ms", f.get("p50", 0.0))),
                fmt_ms(f.get("p99_ms", f.get("p99", 0.0))), server, client,
                ratio(f["rate"], e["rate"]) if e else "-", ratio(f["rate"], q["rate"]) if q else "-"]

    for c in (1, 16):
        rows.append(wrow(f"**ours**, ConfigMap create over HTTPS, {c} client{'s' if c > 1 else ''}",
                         us[f"writes_{c}"], et.get(f"writes_{c}"), sq.get(f"normal_{c}")))
    for c in (1, 16):
        if r.before:
            rows.append(wrow(f"before ({r.before['commit']}), the same, {c} client{'s' if c > 1 else ''}",
                             r.before[f"writes_{c}"], et.get(f"writes_{c}"), sq.get(f"normal_{c}")))
    for c in (1, 16):
        if "durable" in us:
            rows.append(wrow(f"ours `--durable` (WAL synced per group commit), {c} client{'s' if c > 1 else ''}",
                             us["durable"][f"writes_{c}"], et.get(f"writes_{c}"), sq.get(f"full_{c}")))
    for c in (1, 16):
        if "durable" in r.before:
            rows.append(wrow(f"before ({r.before['commit']}) `--durable`, {c} client{'s' if c > 1 else ''}",
                             r.before["durable"][f"writes_{c}"], et.get(f"writes_{c}"), sq.get(f"full_{c}")))
    for c in (1, 16):
        if f"writes_{c}" in et:
            rows.append(wrow(f"etcd put via HTTP gateway (fsync per batch), {c} client{'s' if c > 1 else ''}",
                             et[f"writes_{c}"], None, sq.get(f"full_{c}")))
    labels = {"normal_1": "SQLite WAL sync=NORMAL, 1 writer, 1 txn/row",
              "normal_16": "SQLite WAL sync=NORMAL, 16 threads, 1 txn/row",
              "normal_group_16": "SQLite NORMAL, 16 tasks, group commit, the server's 3 statements/write",
              "full_1": "SQLite WAL sync=FULL, 1 writer, 1 txn/row",
              "full_16": "SQLite WAL sync=FULL, 16 threads, 1 txn/row"}
    for key, label in labels.items():
        if key in sq:
            rows.append(wrow(label, sq[key], None, None))
    parts += ["### Writes (1 KB ConfigMaps)", "", ms, "",
              table(["workload", "writes/s", "p50 ms", "p99 ms", "server cores", "client cores", "÷ etcd",
                     "÷ SQLite, same sync"], rows), ""]

    # lists
    rows = []
    ours_l, etcd_l, sq_l = us["lists"], et.get("lists", {}), sq.get("lists", {})
    for key, label, etcd_key in (("full", f"full list ({LIST_OBJECTS:,} objects)", "full"),
                                 ("selected", "label-selected list (1,000 of 10,000)", "full"),
                                 ("page500", "limit=500 page", "page500")):
        f = ours_l[key]
        e = etcd_l.get(etcd_key)
        q = sq_l.get(key)
        cpu_ms = f"{f['server_cpu_ms']:.1f}" if "server_cpu_ms" in f else "-"
        rows.append([label, fmt_ms(f["p50_ms"]), fmt_ms(f["p99_ms"]), cpu_ms,
                     f"{fmt_ms(e['p50_ms'])} / {fmt_ms(e['p99_ms'])}" if e else "-",
                     f"{fmt_ms(q['p50_ms'])} / {fmt_ms(q['p99_ms'])}" if q else "-",
                     ratio(f["p50_ms"], e["p50_ms"]) if e else "-", ratio(f["p50_ms"], q["p50_ms"]) if q else "-"])
    f = ours_l["page500"]
    e = etcd_l.get("page500")
    q = sq_l.get("page500")
    rows.append(["walk all 20 pages", fmt_ms(f["walk_ms"]), "-", "-", fmt_ms(e["walk_ms"]) if e else "-",
                 fmt_ms(q["walk_ms"]) if q else "-", ratio(f["walk_ms"], e["walk_ms"]) if e else "-",
                 ratio(f["walk_ms"], q["walk_ms"]) if q else "-"])
    parts += [f"### List latency at {LIST_OBJECTS:,} objects (ms; lower is better; ratios of p50)", "", ms, "",
              table(["list", "ours p50", "ours p99", "ours server CPU ms", "etcd range p50 / p99",
                     "SQLite SELECT p50 / p99",
                     "÷ etcd", "÷ SQLite"], rows), ""]

    # watch
    w = us["watch"]
    ew = et.get("watch")
    def watch_row(label: str, x: dict[str, Any], vs: str, target: str) -> list[str]:
        return [label, fmt_rate(x["rate"]), f"{x['events']:,} / {x['expected']:,}",
                f"{x['write_seconds']:.2f} / {x['seconds']:.2f}", fmt_rate(x["write_rate"]), f"{x['cpu']:.2f}",
                vs, target]

    rows = [watch_row("**ours**", w, ratio(w["rate"], ew["rate"]) if ew else "-", ratio(w["rate"], 50_000))]
    rp = w.get("replay")
    if rp:
        rows.append(["ours, 100 new watchers replaying those events from the history window", fmt_rate(rp["rate"]),
                     f"{rp['events']:,} / {rp['expected']:,}", f"- / {rp['seconds']:.2f}", "-", f"{rp['cpu']:.2f}",
                     ratio(rp["rate"], ew["rate"]) if ew else "-", ratio(rp["rate"], 50_000)])
    if r.before:
        bw = r.before["watch"]
        rows.append(watch_row(f"before ({r.before['commit']})", bw, ratio(bw["rate"], ew["rate"]) if ew else "-",
                              ratio(bw["rate"], 50_000)))
    if ew:
        rows.append(watch_row("etcd watch via HTTP gateway", ew, "1", "-"))
    parts += [f"### Watch: {WATCHERS} watchers, events delivered/s while 16 clients create "
              f"{w['expected'] // WATCHERS:,} objects", "", ms, "",
              table(["server", "events/s", "delivered", "last write / all delivered (s)", "writes/s meanwhile",
                     "server cores", "÷ etcd", "÷ target 50k"], rows), ""]

    # clusters
    c = us["cluster_mem"]
    a = c["admin"]
    n = c["clusters"]
    mib = 2**20
    etcd_rss = et.get("idle_rss", 0)
    etcd_up = et.get("startup_s", 0.0)
    vs_etcd_mem = f"{ratio(c['per_cluster'], etcd_rss)} of one idle etcd" if etcd_rss else "-"

    def vs_up(x: float) -> str:
        return f"{ratio(x, etcd_up)} x one etcd start" if etcd_up else "-"

    if a["added"] >= n:
        admin_cell = f"{a['seconds']:.1f} s"
        admin_detail = f"last batch of {a['batch']}: {a['batches'][-1]:.1f} s"
        admin_time = a["seconds"]
    else:
        admin_time = a.get("projected_s", 0.0)
        admin_cell = f"~{admin_time:,.0f} s (projected)"
        admin_detail = (f"measured {a['added']} in {a['seconds']:.1f} s; batches of {a['batch']} took "
                        f"{a['batches'][0]:.1f} s first, {a['batches'][-1]:.1f} s last (grows linearly: quadratic)")
    rows = [
        ["memory per idle logical cluster", f"{c['per_cluster'] / mib:.3f} MiB",
         f"RSS {c['rss_1'] / mib:.1f} MiB (1 cluster) -> {c['rss_cold'] / mib:.1f} MiB ({n + 1:,})",
         vs_etcd_mem, ratio(c["per_cluster"], mib) + " of 1 MiB"],
        ["same, after a restart (loaded from SQLite)", f"{c['per_cluster_restart'] / mib:.3f} MiB",
         f"RSS {c['rss_restart'] / mib:.1f} MiB", "-", ratio(c["per_cluster_restart"], mib) + " of 1 MiB"],
        [f"memory per cluster added via the admin API ({a['added']})", f"{a['per_cluster'] / mib:.3f} MiB", "", "-",
         ratio(a["per_cluster"], mib) + " of 1 MiB"],
        [f"{n + 1:,} clusters up from cold (`apiserver --cluster` x {n + 1:,}) until the last answers",
         f"{c['cold_s']:.1f} s", f"{c['cold_cpu_s']:.1f} s server CPU", vs_up(c["cold_s"]),
         ratio(c["cold_s"], 10.0) + " of 10 s"],
        [f"restart on {n + 1:,} clusters until the last answers", f"{c['restart_s']:.1f} s",
         f"{c['restart_cpu_s']:.1f} s server CPU", vs_up(c["restart_s"]), ratio(c["restart_s"], 10.0) + " of 10 s"],
        [f"{n:,} clusters added one by one via POST /admin/clusters (16 clients)", admin_cell, admin_detail,
         vs_up(admin_time), ratio(admin_time, 10.0) + " of 10 s"],
    ]
    if etcd_rss:
        rows.append(["reference: one idle etcd", f"{etcd_rss / mib:.1f} MiB RSS", f"started in {etcd_up:.2f} s",
                     "1", "-"])
    parts += ["### Logical clusters", "", ms, "",
              table(["measurement", "ours", "detail", "÷ etcd", "÷ target"], rows), ""]
    return "\n".join(parts)


def targets(r: Results) -> list[str]:
    us, et = r.ours, r.etcd
    lines = []
    w16 = us["writes_16"]["rate"]
    for c in (1, 16):
        ours_rate = us[f"writes_{c}"]["rate"]
        etcd_rate = et.get(f"writes_{c}", {}).get("rate")
        if etcd_rate:
            verdict = "MET" if ours_rate >= etcd_rate else "MISSED"
            lines.append(f"writes/s ({c} client{'s' if c > 1 else ''}) >= etcd's: {ours_rate:,.0f} vs "
                         f"{etcd_rate:,.0f} -> {verdict}")
    lines.append(f"writes/s >= 5,000: {w16:,.0f} -> {'MET' if w16 >= 5000 else 'MISSED'}")
    wr = us["watch"]["rate"]
    lines.append(f"watch >= 50,000 events/s: {wr:,.0f} -> {'MET' if wr >= 50_000 else 'MISSED'}")
    c = us["cluster_mem"]
    per = c["per_cluster"] / 2**20
    lines.append(f"<= 1 MiB per idle cluster: {per:.3f} MiB -> {'MET' if per <= 1 else 'MISSED'}")
    add_time = c["admin"]["seconds"] if c["admin"]["added"] >= c["clusters"] else c["admin"].get("projected_s", 0.0)
    for label, secs in (("from cold", c["cold_s"]), ("on restart", c["restart_s"]), ("via the admin API", add_time)):
        lines.append(f"1,000 clusters up < 10 s {label}: {secs:,.1f} s -> {'MET' if secs < 10 else 'MISSED'}")
    return lines


# --------------------------------------------------------------------------- main
async def amain(args: argparse.Namespace) -> Results:
    s = Settings.make(args.quick)
    r = Results(machine=machine.machine_info())
    if pin_self():
        pass
    else:
        r.notes.append("fewer than 2 CPUs: servers and load generator share the CPU")
    print(machine_line(r.machine), flush=True)
    if args.wait_quiet > 0:
        machine.wait_quiet(args.wait_quiet)
    started = time.perf_counter()
    background = machine.BackgroundLoad()
    load1 = os.getloadavg()[0]
    print("SQLite reference ...", flush=True)
    with PHASES.phase("SQLite"):
        r.sqlite = run_sqlite_reference(s)
    print(f"  SQLite NORMAL 1 writer: {r.sqlite['normal_1']['rate']:,.0f}/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="apiserver-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        if args.no_etcd:
            r.notes.append("etcd skipped (--no-etcd)")
        elif not EtcdProcess.available() and not (args.install_etcd and try_install_etcd()):
            r.notes.append(f"etcd not installed, its reference was skipped; install it with: {install_etcd_hint()}")
            print(f"etcd not found: skipping the etcd reference (install: {install_etcd_hint()})", flush=True)
        else:
            r.machine["etcd"] = machine.etcd_version()
            print("etcd reference ...", flush=True)
            (work / "etcd").mkdir()
            with PHASES.phase("etcd"):
                r.etcd = await run_etcd(work / "etcd", s)
        print("our API server ...", flush=True)
        r.ours = await run_ours(work, s)
        if args.before:
            print(f"the API server of {args.before} ...", flush=True)
            r.before = await run_before(work, s, args.before)
    other, wall = background.other_cpu_seconds()
    share = other / wall if wall else 0.0
    r.background = {"other_cpu_s": other, "wall_s": wall, "cores": share, "loadavg_at_start": load1}
    r.notes.append(f"other processes on the machine used {other:.1f} CPU-s during the run ({share:.2f} cores "
                   f"on average; load average {load1:.2f} at the start)"
                   + (": the machine was NOT quiet, figures are disturbed" if share > 0.1 else ": quiet machine"))
    r.background["phases"] = PHASES.other_cores
    r.notes.append(f"cores used by other processes, per phase: {PHASES.summary()}")
    r.notes.append(f"whole run took {time.perf_counter() - started:.0f} s"
                   + (" (--quick: 1 run per write figure, fewer list repetitions and watch writes)" if s.quick
                      else f" (write figures: median of {s.write_reps} runs of {s.write_seconds:.0f} s)"))
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="API server benchmark against SQLite and etcd")
    parser.add_argument("--quick", action="store_true", help="one short run of each (under a minute)")
    parser.add_argument("--json-out", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--no-etcd", action="store_true", help="skip the etcd reference")
    parser.add_argument("--install-etcd", action="store_true",
                        help=f"if etcd is missing, run `{install_etcd_hint()}` (root only)")
    parser.add_argument("--before", type=Path, metavar="TREE",
                        help="also measure writes and watch of another checkout (with its own .venv), e.g. a "
                             "`git worktree` of an earlier commit: before/after rows from one run")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for other processes to leave the CPUs idle")
    args = parser.parse_args(argv)
    r = asyncio.run(amain(args))
    print()
    print(report(r))
    print("targets:")
    for line in targets(r):
        print("  " + line)
    if args.json_out:
        args.json_out.write_text(json.dumps(r.__dict__, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
