"""Where a fleet's start spends the event loop's time: per kind of task, and per kind of in-process request.

    .venv/bin/python -m bench.fleet_steps [--members 1000] [--restart] [--top 25]

Every task's coroutine is wrapped, and each of its steps (`send` or `throw`) is timed with `perf_counter`. The same
is done for each in-process request (`Apiserver.in_process`). A figure is therefore the time its own code and what
it awaits ran on the loop, never what other tasks ran meanwhile. A request's time is part of its task's time too.

What is not in a task (the starting coroutine itself, callbacks such as the group commit) is the rest of the
thread's CPU, printed as the total against the sum.

Sampling profilers mislead on the machines these benches run on: py-spy's default mode over-samples system calls
(an `os.urandom` per uid showed as a fifth of a cluster's birth and cost nothing measurable), and cProfile's
overhead is uneven. Use these figures to find where the time goes, and measure a change by alternating runs of
`bench/fleet_bench.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine, Generator, Mapping
from pathlib import Path
from typing import Any

from bench import machine
from clusterset.apiserver import inprocess
from clusterset.cli.common import fast_loop
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions

STEP_SECONDS: defaultdict[str, float] = defaultdict(float)
CALLS: Counter[str] = Counter()


class Timed:
    """Awaits `coro`, adding the time of each of its steps to `key`."""

    __slots__ = ("coro", "key")

    def __init__(self, coro: Coroutine[Any, Any, Any], key: str) -> None:
        self.coro, self.key = coro, key

    def __await__(self) -> Generator[Any, Any, Any]:
        CALLS[self.key] += 1
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                step = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as done:
                STEP_SECONDS[self.key] += time.perf_counter() - started
                return done.value
            except BaseException:
                STEP_SECONDS[self.key] += time.perf_counter() - started
                raise
            STEP_SECONDS[self.key] += time.perf_counter() - started
            try:
                value, error = (yield step), None
            except BaseException as exc:  # thrown into the task (a cancellation): pass it on
                value, error = None, exc


async def _timed(timed: Timed) -> Any:
    return await timed


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
    key = "task " + str(getattr(coro, "__qualname__", "?"))
    context: contextvars.Context | None = kwargs.get("context")
    return asyncio.Task(_timed(Timed(coro, key)), loop=loop, context=context)


def _request_kind(cluster: str, method: str, path: str, query: Mapping[str, str]) -> str:
    """`PATCH clusterprofiles/status hub`: the verb, the resource (and subresource), and hub or member."""
    parts = [p for p in path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        rest = rest[2:]  # a namespaced resource's path
    resource = rest[0] if rest else path
    if len(rest) >= 3:
        resource += "/" + rest[2]
    verb = "WATCH" if query.get("watch") else method
    return f"{verb} {resource} {'hub' if cluster == 'hub' else 'member'}"


def _time_requests() -> None:
    real = inprocess.InProcess.request

    def request(self: inprocess.InProcess, token: str | None, method: str, path: str, query: Mapping[str, str],
                *args: Any, **kwargs: Any) -> Any:
        key = "request " + _request_kind(self.cluster, method, path, query)
        return Timed(real(self, token, method, path, query, *args, **kwargs), key)

    inprocess.InProcess.request = request  # type: ignore[method-assign]


async def run(members: int, restart: bool) -> tuple[float, float, dict[str, float], Counter[str]]:
    """(wall seconds, thread CPU seconds, step seconds per kind, calls per kind) of the start measured."""
    asyncio.get_running_loop().set_task_factory(_task_factory)
    with tempfile.TemporaryDirectory() as tmp:
        port = 0
        if restart:  # the state to restart from, not measured
            fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=members))
            await fleet.start()
            await fleet.wait_healthy(600)
            port = fleet.server.port
            await fleet.stop()
        fleet = EmbeddedFleet(FleetOptions(Path(tmp), members=members, port=port))
        STEP_SECONDS.clear()
        CALLS.clear()
        wall, cpu = time.monotonic(), time.thread_time()
        await fleet.start()
        await fleet.wait_healthy(600)
        wall, cpu = time.monotonic() - wall, time.thread_time() - cpu
        measured = dict(STEP_SECONDS), Counter(CALLS)
        await fleet.stop()
    return wall, cpu, *measured


def _rows(prefix: str, members: int, top: int, seconds: dict[str, float], calls: Counter[str]) -> list[str]:
    kinds = sorted((k for k in seconds if k.startswith(prefix)), key=lambda k: -seconds[k])[:top]
    rows = [f"| {prefix.strip()} | ms per member | per member | µs each |", "|---|---|---|---|"]
    for kind in kinds:
        rows.append(f"| {kind[len(prefix):]} | {seconds[kind] / members * 1e3:.3f} | {calls[kind] / members:.2f} | "
                    f"{seconds[kind] / calls[kind] * 1e6:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--restart", action="store_true", help="measure a restart instead of a cold start")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    args = parser.parse_args()
    _time_requests()
    with asyncio.Runner(loop_factory=fast_loop()) as runner:
        wall, cpu, seconds, calls = runner.run(run(args.members, args.restart))
    what = "restart" if args.restart else "cold start"
    print("machine:")
    print(machine.describe())
    in_tasks = sum(v for k, v in seconds.items() if k.startswith("task "))
    print(f"\n{what} of {args.members} members to all healthy: {wall:.2f} s, loop thread CPU {cpu:.2f} s, "
          f"of which in tasks {in_tasks:.2f} s\n")
    print("\n".join(_rows("task ", args.members, args.top, seconds, calls)))
    print()
    print("\n".join(_rows("request ", args.members, args.top, seconds, calls)))

if __name__ == "__main__":
    main()
