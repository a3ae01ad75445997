"""Write throughput of servers measured in alternation: short slices of the same load, A B C A B C ..., so that a
noisy machine's drift falls on every server alike.

    .venv/bin/python -m bench.paired_writes [--before TREE] [--no-etcd] [--rounds 10] [--seconds 3] [--clients 16]

`apiserver_bench` measures each server for a whole phase in turn (minutes apart); on this shared machine one
code's 16-client figure moved from 1,759 to 2,409 writes/s between such runs. Here every server under test runs at
once, each pinned to CPU 0 and idle while the others take their slice; the load (the same 1 KB ConfigMap creates
over HTTPS, or the same puts to etcd) runs on CPU 1. Each round gives one figure per server; the report is the
median over rounds of each server's figure and of its ratios to the reference (etcd, else the last server) and to
ours in the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson

from bench import machine
from bench.apiserver_bench import JSON_HEADERS, Ours, b64, machine_line, measured_load, table
from bench.load import run_load, session
from bench.procs import ApiserverProcess, EtcdProcess, pin_self
from bench.workload import configmap_bytes

Maker = Callable[[int, int], tuple[str, bytes, dict[str, str]]]


@dataclass
class Contender:
    label: str
    make: Callable[[int], Maker]  # round → the load's request maker
    pid: int
    ssl: ssl.SSLContext | None = None
    rates: list[float] = field(default_factory=list)


def _commit(tree: Path | None) -> str:
    out = subprocess.run(["git", "-C", str(tree or Path.cwd()), "log", "-1", "--format=%h"], capture_output=True,
                         text=True)
    return out.stdout.strip() or str(tree)


async def amain(args: argparse.Namespace) -> int:
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="paired-"))
    servers: list[ApiserverProcess] = []
    etcd: EtcdProcess | None = None
    contenders: list[Contender] = []
    try:
        trees: list[tuple[str, Path | None]] = [(f"ours ({_commit(None)})", None)]
        if args.before:
            trees.append((f"before ({_commit(args.before)})", args.before))
        for i, (label, tree) in enumerate(trees):
            srv = ApiserverProcess(work / f"state-{i}", ["bench"], tree=tree).start()
            servers.append(srv)
            o = Ours(srv)
            async with session(o.ssl) as sess:
                await o.create_namespace(sess, "bench", "w")

            def make_ours(rnd: int, o: Ours = o) -> Maker:
                maker: Maker = o.configmap_maker("bench", "w", f"cm-{rnd}-")
                return maker

            contenders.append(Contender(label, make_ours, srv.pid, o.ssl))
        if not args.no_etcd and EtcdProcess.available():
            etcd = EtcdProcess(work).start()

            def make_etcd(rnd: int, etcd: EtcdProcess = etcd) -> Maker:
                def make(w: int, i: int) -> tuple[str, bytes, dict[str, str]]:
                    name = f"cm-{rnd}-{w}-{i}"
                    body = orjson.dumps({"key": b64(f"/registry/configmaps/w/{name}"),
                                         "value": b64(configmap_bytes(name))})
                    return f"{etcd.url}/v3/kv/put", body, JSON_HEADERS
                return make

            contenders.append(Contender("etcd", make_etcd, etcd.pid))
        reference = contenders[-1]
        print(machine_line(machine.machine_info()), flush=True)
        others = machine.BackgroundLoad()
        for rnd in range(args.rounds):
            order = contenders if rnd % 2 == 0 else contenders[::-1]  # nobody always goes first
            for c in order:
                fig = await measured_load(partial(run_load, c.make(rnd), args.clients, seconds=args.seconds,
                                                  ssl_ctx=c.ssl), c.pid)
                c.rates.append(fig.rate)
            print(f"  round {rnd + 1}: " + ", ".join(f"{c.label} {c.rates[-1]:,.0f}/s" for c in contenders),
                  flush=True)
        ours = contenders[0]
        rows = []
        for c in contenders:
            row = [c.label, f"{statistics.median(c.rates):,.0f}", f"{min(c.rates):,.0f}-{max(c.rates):,.0f}"]
            for ref in (reference, ours):
                ratios = [r / base for r, base in zip(c.rates, ref.rates, strict=True)]
                row += [f"{statistics.median(ratios):.2f}", f"{min(ratios):.2f}-{max(ratios):.2f}"]
            rows.append(row)
        other, wall = others.other_cpu_seconds()
        print(f"\n{args.clients} clients, {args.rounds} rounds of {args.seconds:g} s each, in alternation; other "
              f"processes used {other / wall:.2f} cores on average")
        print(table(["server", "writes/s (median)", "range", f"÷ {reference.label} (median of rounds)", "range",
                     f"÷ {ours.label}", "range"], rows))
    finally:
        for srv in servers:
            srv.stop()
        if etcd is not None:
            etcd.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, metavar="TREE", help="another checkout (with its .venv) to compare")
    parser.add_argument("--no-etcd", action="store_true")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=16)
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
