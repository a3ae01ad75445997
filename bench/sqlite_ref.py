"""The storage reference: the same 1 KB ConfigMap rows written and read straight from SQLite.

Run pinned to the server's CPU (`taskset -c 0 python -m bench.sqlite_ref --json`); it prints one
JSON document with every figure, which `bench.apiserver_bench` folds into its tables.

Writes (WAL, one row of ~1.1 KB per write, into a table shaped like the server's `objects`):
- `normal_1`:  synchronous=NORMAL, 1 writer, one transaction per row;
- `normal_16`: synchronous=NORMAL, 16 writer threads, each its own connection, one transaction per row;
- `normal_group_16`: 16 asyncio tasks on one connection, writing what the server writes per object
  (object row + event row + cluster rv update) and sharing one commit per loop turn, as the server's
  group commit does: the storage ceiling of our design;
- `full_1`, `full_16`: the same as the first two with synchronous=FULL (an fsync per commit).
Reads (10,000 rows in one namespace): the full list, a label-selected list (json_extract) and 500-row pages.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.load import percentile
from bench.workload import list_labels, stored_configmap_bytes
from clusterset.apiserver.storage.sqlite import PUT_EVENT, PUT_OBJECT, SCHEMA

INSERT = PUT_OBJECT  # the reference stores rows exactly as the server does
LIST_OBJECTS = 10_000


def connect(path: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO clusters VALUES ('bench', 0, x'')")
    return conn


def _row(writer: int, i: int) -> tuple[str, str, str, str, bytes]:
    name = f"cm-{writer}-{i}"
    return ("bench", "configmaps", "w", name, stored_configmap_bytes(name, "w", i + 1))


def writes_serial(path: Path, sync: str, seconds: float) -> dict[str, float]:
    conn = connect(path, sync)
    lat: list[float] = []
    i = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        row = _row(0, i)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(INSERT, row)
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t0)
        i += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return _summary(i, elapsed, lat)


def writes_threads(path: Path, sync: str, seconds: float, writers: int) -> dict[str, float]:
    lat: list[float] = []
    counts = [0] * writers
    stop = threading.Event()
    conns = [connect(path, sync) for _ in range(writers)]
    barrier = threading.Barrier(writers + 1)

    def run(w: int) -> None:
        conn = conns[w]
        barrier.wait()
        i = 0
        while not stop.is_set():
            row = _row(w + 1, i)
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(INSERT, row)
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t0)
            i += 1
        counts[w] = i

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return _summary(sum(counts), elapsed, lat)


def writes_group_commit(path: Path, sync: str, seconds: float, writers: int) -> dict[str, float]:
    """16 tasks; each write = object + event + rv rows; one COMMIT per event-loop turn (like the server)."""
    conn = connect(path, sync)
    state: dict[str, Any] = {"in_txn": False, "scheduled": False, "waiters": [], "rv": 0, "commits": 0}

    def commit() -> None:
        state["scheduled"] = False
        waiters, state["waiters"] = state["waiters"], []
        if state["in_txn"]:
            conn.execute("COMMIT")
            state["commits"] += 1
            state["in_txn"] = False
        for fut in waiters:
            fut.set_result(None)

    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        lat: list[float] = []
        count = [0]
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                if not state["in_txn"]:
                    conn.execute("BEGIN")
                    state["in_txn"] = True
                if not state["scheduled"]:
                    state["scheduled"] = True
                    loop.call_soon(commit)
                state["rv"] += 1
                rv = state["rv"]
                name = f"cm-g{w}-{i}"
                data = stored_configmap_bytes(name, "w", rv)
                conn.execute(INSERT, ("bench", "configmaps", "w", name, data))
                conn.execute(PUT_EVENT, ("bench", rv, "ADDED", "configmaps", data))
                conn.execute("UPDATE clusters SET rv=? WHERE name=?", (rv, "bench"))
                fut: asyncio.Future[None] = loop.create_future()
                state["waiters"].append(fut)
                await fut
                lat.append(time.perf_counter() - t0)
                count[0] += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(writers)))
        elapsed = time.perf_counter() - start
        out = _summary(count[0], elapsed, lat)
        out["rows_per_commit"] = count[0] / max(1, state["commits"])
        return out

    result = asyncio.run(main())
    conn.close()
    return result


def _summary(n: int, elapsed: float, lat: list[float]) -> dict[str, float]:
    return {"rate": n / elapsed if elapsed else 0.0, "count": n, "seconds": elapsed,
            "p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}


def lists(path: Path, objects: int, reps: int) -> dict[str, dict[str, float]]:
    conn = connect(path, "NORMAL")
    conn.execute("BEGIN")
    for i in range(objects):
        name = f"cm-{i:05d}"
        conn.execute(INSERT, ("bench", "configmaps", "list", name,
                              stored_configmap_bytes(name, "list", i + 1, list_labels(i))))
    conn.execute("COMMIT")
    where = "cluster='bench' AND resource='configmaps' AND namespace='list'"

    def full() -> int:
        rows = conn.execute(f"SELECT data FROM objects WHERE {where} ORDER BY name").fetchall()
        body = b'{"items":[' + b",".join(r[0] for r in rows) + b"]}"
        return len(body)

    def selected() -> int:
        rows = conn.execute(f"SELECT data FROM objects WHERE {where} AND "
                            "json_extract(data, '$.metadata.labels.sel') = 'yes' ORDER BY name").fetchall()
        return len(b",".join(r[0] for r in rows))

    def paged() -> list[float]:
        times = []
        last = ""
        while True:
            t0 = time.perf_counter()
            rows = conn.execute(f"SELECT name, data FROM objects WHERE {where} AND name > ? ORDER BY name LIMIT 500",
                                (last,)).fetchall()
            b",".join(r[1] for r in rows)
            times.append(time.perf_counter() - t0)
            if len(rows) < 500:
                return times
            last = rows[-1][0]

    out: dict[str, dict[str, float]] = {}
    for label, fn in (("full", full), ("selected", selected)):
        lat = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            lat.append(time.perf_counter() - t0)
        out[label] = {"p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
    pages: list[float] = []
    walks: list[float] = []
    for _ in range(max(1, reps // 2)):
        t = paged()
        pages.extend(t)
        walks.append(sum(t))
    out["page500"] = {"p50_ms": percentile(pages, 50) * 1000, "p99_ms": percentile(pages, 99) * 1000,
                      "walk_ms": percentile(walks, 50) * 1000}
    conn.close()
    return out


def run(seconds: float, list_reps: int, objects: int = LIST_OBJECTS) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sqlite-ref-", dir="/var/tmp") as tmp:
        d = Path(tmp)
        results["normal_1"] = writes_serial(d / "n1.db", "NORMAL", seconds)
        results["normal_16"] = writes_threads(d / "n16.db", "NORMAL", seconds, 16)
        results["normal_group_16"] = writes_group_commit(d / "g16.db", "NORMAL", seconds, 16)
        results["full_1"] = writes_serial(d / "f1.db", "FULL", seconds)
        results["full_16"] = writes_threads(d / "f16.db", "FULL", seconds, 16)
        results["lists"] = lists(d / "list.db", objects, list_reps)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per write measurement")
    parser.add_argument("--list-reps", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    results = run(args.seconds, args.list_reps)
    if args.json:
        sys.stdout.write(orjson.dumps(results).decode() + "\n")
        return 0
    from bench.machine import describe

    print("machine:\n" + describe() + "\n")
    print("| writes | rows/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for key, value in results.items():
        if key != "lists":
            print(f"| {key} | {value['rate']:,.0f} | {value['p50_ms']:.2f} | {value['p99_ms']:.2f} |")
    print(f"\n| list of {LIST_OBJECTS:,} rows | p50 ms | p99 ms |\n|---|---|---|")
    for key, value in results["lists"].items():
        print(f"| {key} | {value['p50_ms']:.2f} | {value['p99_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
