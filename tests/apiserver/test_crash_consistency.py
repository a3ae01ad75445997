"""kill -9 under load: what any client saw survives the crash, with the same resourceVersion.

Writers create, update and delete ConfigMaps while watchers stream them; the server process is killed at a
random moment, restarted on the same state directory, and the restarted server must hold every event a
watcher received (same type, same object, same resourceVersion) and every acknowledged write, and must
never hand out a resourceVersion a client already saw. `CRASH_ITERATIONS` sets how many crashes (the
benchmark script runs hundreds; see BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.apiserver.test_restart_isolation import _cluster_from_kubeconfig, _free_port, _start_process

ITERATIONS = int(os.environ.get("CRASH_ITERATIONS", "5"))
WRITERS = 8
WATCHERS = 3
READERS = 4
NAMESPACE = "default"


@dataclass
class Seen:
    """What clients were told: watch events and acknowledged writes, each keyed by resourceVersion."""

    events: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    acknowledged: dict[int, tuple[str, str]] = field(default_factory=dict)  # rv → (type, name)
    deleted: set[str] = field(default_factory=set)  # a ConfigMap's delete answers a Status, without its rv
    in_flight: list[str] = field(default_factory=list)  # names being created: readers look for them
    read: dict[int, dict[str, Any]] = field(default_factory=dict)  # rv → object, as a GET returned it

    def saw_event(self, rv: int, type_: str, obj: dict[str, Any]) -> None:
        earlier = self.events.setdefault(rv, (type_, obj))
        assert earlier == (type_, obj), f"two watchers got different events for rv {rv}: {earlier} / {(type_, obj)}"


class Client:
    def __init__(self, server: str, token: str, ca: str) -> None:
        self.base = f"{server}/api/v1/namespaces/{NAMESPACE}/configmaps"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ssl = ssl.create_default_context(cafile=ca)

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers=self.headers, connector=aiohttp.TCPConnector(ssl=self.ssl))


async def _write(client: Client, worker: int, seen: Seen, stop: asyncio.Event) -> None:
    rng = random.Random(worker)
    mine: list[str] = []
    async with client.session() as http:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if mine and rng.random() < 0.3:
                    name = mine.pop(rng.randrange(len(mine)))
                    async with http.delete(f"{client.base}/{name}") as resp:
                        await resp.read()
                        if resp.status == 200:
                            seen.deleted.add(name)
                elif mine and rng.random() < 0.4:
                    name = mine[rng.randrange(len(mine))]
                    patch = {"data": {"n": str(n)}}
                    async with http.patch(f"{client.base}/{name}", data=orjson.dumps(patch),
                                          headers={"Content-Type": "application/merge-patch+json"}) as resp:
                        body = await resp.read()
                        if resp.status == 200:
                            seen.acknowledged[_rv(orjson.loads(body))] = ("MODIFIED", name)
                else:
                    name = f"w{worker}-{n}-{os.urandom(4).hex()}"
                    cm = {"metadata": {"name": name}, "data": {"n": str(n), "pad": "x" * 300}}
                    seen.in_flight.append(name)
                    async with http.post(client.base, data=orjson.dumps(cm),
                                         headers={"Content-Type": "application/json"}) as resp:
                        body = await resp.read()
                        if resp.status == 201:
                            seen.acknowledged[_rv(orjson.loads(body))] = ("ADDED", name)
                            mine.append(name)
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                return  # the server is gone: a write without an answer is not acknowledged


async def _read(client: Client, seen: Seen, stop: asyncio.Event) -> None:
    """GETs objects whose create is not answered yet: a read must not show what a crash can still take back."""
    async with client.session() as http:
        while not stop.is_set():
            if not seen.in_flight:
                await asyncio.sleep(0)
                continue
            try:
                async with http.get(f"{client.base}/{seen.in_flight[-1]}") as resp:
                    body = await resp.read()
                    if resp.status == 200:
                        obj = orjson.loads(body)
                        seen.read[_rv(obj)] = obj
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                return


async def _watch(client: Client, start_rv: str, seen: Seen, ready: asyncio.Event) -> None:
    """Reads until the connection ends: bytes the server wrote before it died still arrive, and count."""
    async with client.session() as http:
        try:
            async with http.get(client.base, params={"watch": "1", "resourceVersion": start_rv},
                                timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as resp:
                assert resp.status == 200
                ready.set()
                async for line in resp.content:
                    event = orjson.loads(line)
                    obj = event["object"]
                    seen.saw_event(_rv(obj), event["type"], obj)
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            pass


def _rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def _current_rv(client: Client) -> str:
    async with client.session() as http, http.get(client.base, params={"limit": "1"}) as resp:
        assert resp.status == 200
        rv: str = (await resp.json())["metadata"]["resourceVersion"]
        return rv


async def _crash_once(state: Path, port: int, rng: random.Random, options: tuple[str, ...]) -> tuple[Seen, int]:
    proc = _start_process(state, port, *options)
    info = _cluster_from_kubeconfig(state)
    client = Client(info.server, info.token, info.ca_file)
    seen = Seen()
    stop = asyncio.Event()
    start_rv = await _current_rv(client)
    ready = [asyncio.Event() for _ in range(WATCHERS)]
    watchers = [asyncio.create_task(_watch(client, start_rv, seen, r)) for r in ready]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
    writers = [asyncio.create_task(_write(client, w, seen, stop)) for w in range(WRITERS)]
    writers += [asyncio.create_task(_read(client, seen, stop)) for _ in range(READERS)]
    await asyncio.sleep(rng.uniform(0.05, 0.6))  # the crash comes at a random moment of the load
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 10)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*writers, *watchers), 30)
    return seen, int(start_rv)


async def _history_after(client: Client, after_rv: int) -> tuple[dict[int, tuple[str, dict[str, Any]]], int, set[str]]:
    """Every event after `after_rv` as the restarted server replays it, up to a fresh write (whose rv is returned),
    and the names of the ConfigMaps there are."""
    async with client.session() as http:
        async with http.get(client.base) as resp:
            assert resp.status == 200
            names = {item["metadata"]["name"] for item in (await resp.json())["items"]}
        sentinel = {"metadata": {"generateName": "sentinel-"}}
        async with http.post(client.base, data=orjson.dumps(sentinel),
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 201, await resp.text()
            sentinel_rv = _rv(await resp.json())
        history: dict[int, tuple[str, dict[str, Any]]] = {}
        async with http.get(client.base, params={"watch": "1", "resourceVersion": str(after_rv)}) as resp:
            assert resp.status == 200
            async for line in resp.content:
                event = orjson.loads(line)
                assert event["type"] != "ERROR", event
                history[_rv(event["object"])] = (event["type"], event["object"])
                if _rv(event["object"]) >= sentinel_rv:
                    break
        return history, sentinel_rv, names


def _check(seen: Seen, history: dict[int, tuple[str, dict[str, Any]]], sentinel_rv: int, names: set[str]) -> None:
    for rv, (type_, obj) in sorted(seen.events.items()):
        assert rv < sentinel_rv, f"resourceVersion {rv} was seen before the crash and issued again after it"
        assert history.get(rv) == (type_, obj), (
            f"a watcher saw {type_} {obj['metadata']['name']} at rv {rv} before the crash; after the restart the "
            f"server has {history.get(rv, ('nothing', {}))[0]} there")
    for rv, (type_, name) in sorted(seen.acknowledged.items()):
        assert rv < sentinel_rv, f"acknowledged resourceVersion {rv} was issued again after the crash"
        got = history.get(rv)
        assert got is not None and got[0] == type_ and got[1]["metadata"]["name"] == name, (
            f"acknowledged {type_} of {name} at rv {rv} is missing after the restart (found {got and got[0]})")
    for rv, obj in sorted(seen.read.items()):
        assert rv < sentinel_rv, f"resourceVersion {rv} was read before the crash and issued again after it"
        got = history.get(rv)
        assert got is not None and got[1] == obj, (
            f"a GET returned {obj['metadata']['name']} at rv {rv} before the crash; after the restart the server "
            f"has {got and got[0]} there (watch from {min(history)})")
    back = seen.deleted & names
    assert not back, f"acknowledged deletes undone by the crash: {sorted(back)}"


@pytest.mark.parametrize("options", [(), ("--durable",)], ids=["default", "durable"])
def test_what_any_client_saw_survives_kill_9(tmp_path: Path, options: tuple[str, ...]) -> None:
    async def run() -> None:
        rng = random.Random(int.from_bytes(os.urandom(4)))
        port = _free_port()
        totals = [0, 0, 0]
        for _ in range(ITERATIONS):
            seen, start_rv = await _crash_once(tmp_path, port, rng, options)
            totals[0] += len(seen.events)
            totals[1] += len(seen.acknowledged)
            totals[2] += len(seen.read)
            proc = _start_process(tmp_path, port, *options)
            try:
                info = _cluster_from_kubeconfig(tmp_path)
                client = Client(info.server, info.token, info.ca_file)
                history, sentinel_rv, names = await _history_after(client, start_rv)
                _check(seen, history, sentinel_rv, names)
            finally:
                proc.send_signal(signal.SIGINT)
                await asyncio.to_thread(proc.wait, 10)
        assert totals[0] > 0 and totals[1] > 0, f"the load did nothing: {totals} events / acknowledged writes"
        print(f"{ITERATIONS} crashes: {totals[0]} watch events, {totals[1]} acknowledged writes and {totals[2]} reads "
              "of unanswered creates, all found again after the restarts")

    asyncio.run(run())
