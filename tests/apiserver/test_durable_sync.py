"""`--durable`: a write is acknowledged only once the WAL holding its commit is synced; the sync runs off the event
loop, one sync covers every group committed before it started, and a failed sync stops the server (fail-stop)."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from clusterset.apiserver.storage import sqlite as storage
from clusterset.apiserver.storage.sqlite import Database, StorageFailed
from clusterset.testing import ServerThread


class GatedSync:
    """Stands between the database and the real fdatasync: counts the syncs and holds them until released."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.calls = 0
        self.gate = threading.Event()
        self.fail_with: OSError | None = None

    def __call__(self, fd: int) -> None:
        self.calls += 1
        assert self.gate.wait(30), "the test never released the sync"
        if self.fail_with is not None:
            raise self.fail_with
        self.real(fd)


@pytest.fixture
def gated_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedSync]:
    gated = GatedSync(os.fdatasync)
    monkeypatch.setattr(storage.os, "fdatasync", gated)
    yield gated
    gated.gate.set()


def _stored(path: Path, name: str) -> bool:
    with sqlite3.connect(path) as other:
        return bool(other.execute("SELECT 1 FROM objects WHERE name=?", (name,)).fetchall())


async def _until(condition: Callable[[], bool], what: str, deadline: float = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_a_write_is_acknowledged_only_after_its_wal_is_synced(tmp_path: Path, gated_sync: GatedSync) -> None:
    db = Database(tmp_path / "apiserver.db", durable=True)
    try:
        db.put_object("c", "configmaps", "default", "first", b"{}")
        acknowledged = db.committed()
        await _until(lambda: gated_sync.calls == 1, "the first sync to start")
        assert _stored(db.path, "first")  # type: ignore[arg-type]  # committed to the WAL ...
        await asyncio.sleep(0.05)  # the loop turns meanwhile: the sync does not hold it
        assert not acknowledged.done()  # ... but not acknowledged before its sync returns
        # groups committed while a sync runs wait for the next one, which covers them all
        later = []
        for name in ("second", "third", "fourth"):
            db.put_object("c", "configmaps", "default", name, b"{}")
            later.append(db.committed())
            await asyncio.sleep(0)  # a loop turn each: three commit groups
        assert db.commits == 4 and db.durable == 0
        gated_sync.gate.set()
        await asyncio.wait_for(acknowledged, 10)
        await asyncio.wait_for(asyncio.gather(*later), 10)
        assert gated_sync.calls == 2 and db.durable == db.written == 4
    finally:
        db.close()


async def test_a_failed_sync_fails_every_waiting_and_later_write(tmp_path: Path, gated_sync: GatedSync) -> None:
    db = Database(tmp_path / "apiserver.db", durable=True)
    try:
        db.put_object("c", "configmaps", "default", "lost", b"{}")
        acknowledged = db.committed()
        gated_sync.fail_with = OSError(errno.EIO, "Input/output error")
        gated_sync.gate.set()
        with pytest.raises(StorageFailed, match="Input/output error"):
            await asyncio.wait_for(acknowledged, 10)
        with pytest.raises(StorageFailed):
            db.put_object("c", "configmaps", "default", "after", b"{}")
    finally:
        gated_sync.fail_with = None
        db.close()


def test_a_durable_server_answers_writes_and_keeps_them_over_a_restart(tmp_path: Path) -> None:
    server = ServerThread(tmp_path, durable=True)
    try:
        api = client.CoreV1Api(server.add_cluster("sync", controllers=False).api_client())
        for i in range(20):
            api.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i}"}})
        assert server.server._db.durable == server.server._db.written
    finally:
        server.stop()
    restarted = ServerThread(tmp_path, durable=True)
    try:
        api = client.CoreV1Api(restarted.info("sync").api_client())
        names = {cm.metadata.name for cm in api.list_namespaced_config_map("default").items}
        assert {f"cm-{i}" for i in range(20)} <= names
    finally:
        restarted.stop()
