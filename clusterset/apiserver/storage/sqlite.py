"""Durable storage in SQLite (WAL), with group commit.

Writes run on the event loop inside one open transaction; a commit is scheduled with
`call_soon`, so every write issued in the same loop turn shares one commit. Callers await
`committed()` before answering the client: an acknowledged write is in the WAL.

Nothing leaves the process before it is committed: memory is updated at once (later writes must see
earlier ones), so whatever answers a client from memory first awaits `durable_through(mark)` with the
`written` position its answer reflects (`written` itself for a read). Commits are sequential, so one
commit covers everything written before it. A write is answered after its own commit and needs no more.

Durability (synchronous=NORMAL in WAL mode): a crash of the *process* loses no committed
transaction, because each commit is written to the WAL file (the OS page cache) before we
answer. A crash of the *machine* (power loss, kernel panic) may lose the last transactions
committed before the crash, never corrupting the database. `synchronous=FULL`
(`durable=True`) adds an fsync per commit group and closes that window too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# commit groups between two WAL checkpoints (a group adds a few pages; SQLite's own default is every 1,000 pages)
CHECKPOINT_EVERY = 100

# Objects and events are rowid tables with a unique index on their key. As WITHOUT ROWID tables (before) an
# object of ~1.4 KB went past the local payload of an index b-tree page (~1 KB of 4 KB) into an overflow page, so
# each write dirtied ~9 KB of pages where 2.8 KB now do, and SQLite's part of a write took half the CPU it did.
SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (name TEXT PRIMARY KEY, rv INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY, cluster TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  data BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS objects_key ON objects (cluster, resource, namespace, name);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, cluster TEXT NOT NULL, rv INTEGER NOT NULL, type TEXT NOT NULL, resource TEXT NOT NULL,
  data BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (cluster, rv);
"""
PUT_OBJECT = "INSERT OR REPLACE INTO objects (cluster, resource, namespace, name, data) VALUES (?,?,?,?,?)"
PUT_EVENT = "INSERT OR REPLACE INTO events (cluster, rv, type, resource, data) VALUES (?,?,?,?,?)"


def _migrate_without_rowid_tables(conn: sqlite3.Connection) -> None:
    """A state directory written before the rowid tables: its rows are copied into them, once."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(objects)")]
    if not columns or "id" in columns:
        return
    log.info("converting the state database to the current table layout (once)")
    conn.execute("BEGIN")
    conn.execute("ALTER TABLE objects RENAME TO objects_old")
    conn.execute("ALTER TABLE events RENAME TO events_old")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO objects (cluster, resource, namespace, name, data) "
                 "SELECT cluster, resource, namespace, name, data FROM objects_old")
    conn.execute("INSERT INTO events (cluster, rv, type, resource, data) "
                 "SELECT cluster, rv, type, resource, data FROM events_old ORDER BY cluster, rv")
    conn.execute("DROP TABLE objects_old")
    conn.execute("DROP TABLE events_old")
    conn.execute("COMMIT")


class StorageFailed(Exception):
    """A write or commit failed: what memory holds is not all on disk, so nothing more is answered from it."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"storage failed, restart the server: {cause}")


class _Checkpointer(threading.Thread):
    """Copies the WAL back into the database file on its own connection and thread. SQLite would otherwise do it
    inside a COMMIT every 1,000 pages, on the event loop: writing and fsyncing ~4 MB while every request waits.
    The sqlite3 module releases the GIL while SQLite works, so the loop goes on meanwhile."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._wake = threading.Event()
        self._stopping = False

    def run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next request retries; the WAL only grows meanwhile
                log.warning("WAL checkpoint failed: %s", exc)
        self._conn.close()

    def request(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join(30)


class Database:
    """One SQLite file; None path = in memory (tests)."""

    def __init__(self, path: Path | None, durable: bool = False) -> None:
        self.path = path
        self._conn = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        _migrate_without_rowid_tables(self._conn)
        self._conn.executescript(SCHEMA)
        self._checkpointer: _Checkpointer | None = None
        if path is not None:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(path)
            self._checkpointer.start()
        self._in_txn = False
        self._cluster_rvs: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._commit_scheduled = False
        self.commits = 0
        self.written = 0  # writes issued so far (a position in the sequence of writes)
        self.durable = 0  # `written` at the last commit: everything up to it is on disk
        # a failed write or commit leaves memory ahead of the disk: the server then refuses to go on (fail-stop)
        self.failure: BaseException | None = None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.commit_now()
        self._conn.close()  # the last connection to close checkpoints the rest

    # writes -----------------------------------------------------------------
    def _begin(self) -> None:
        if self.failure is not None:
            raise StorageFailed(self.failure)
        self.written += 1
        if not self._in_txn:
            self._conn.execute("BEGIN")
            self._in_txn = True
        if not self._commit_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._commit_scheduled = True
            loop.call_soon(self._scheduled_commit)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self._begin()
        try:
            self._conn.execute(sql, params)
        except sqlite3.Error as exc:  # disk full, I/O error: memory already holds the change
            self._fail(exc)
            raise StorageFailed(exc) from exc

    def put_object(self, cluster: str, resource: str, namespace: str, name: str, data: bytes) -> None:
        self._execute(PUT_OBJECT, (cluster, resource, namespace, name, data))

    def delete_object(self, cluster: str, resource: str, namespace: str, name: str) -> None:
        self._execute("DELETE FROM objects WHERE cluster=? AND resource=? AND namespace=? AND name=?",
                      (cluster, resource, namespace, name))

    def put_event(self, cluster: str, rv: int, type_: str, resource: str, data: bytes) -> None:
        self._execute(PUT_EVENT, (cluster, rv, type_, resource, data))

    def trim_events(self, cluster: str, below_rv: int) -> None:
        self._execute("DELETE FROM events WHERE cluster=? AND rv<?", (cluster, below_rv))

    def put_cluster(self, name: str, rv: int, data: bytes) -> None:
        self._execute("INSERT OR REPLACE INTO clusters VALUES (?,?,?)", (name, rv, data))

    def set_cluster_rv(self, name: str, rv: int) -> None:
        """Recorded once per commit group, not once per write."""
        self._begin()
        self._cluster_rvs[name] = rv

    def delete_cluster(self, name: str) -> None:
        self._cluster_rvs.pop(name, None)
        for table in ("objects", "events"):
            self._execute(f"DELETE FROM {table} WHERE cluster=?", (name,))
        self._execute("DELETE FROM clusters WHERE name=?", (name,))

    # commit -----------------------------------------------------------------
    def _scheduled_commit(self) -> None:
        self._commit_scheduled = False
        self.commit_now()

    def commit_now(self) -> None:
        if self._in_txn:
            try:
                if self._cluster_rvs:
                    self._conn.executemany("UPDATE clusters SET rv=? WHERE name=?",
                                           [(rv, name) for name, rv in self._cluster_rvs.items()])
                    self._cluster_rvs.clear()
                self._conn.execute("COMMIT")
                self._in_txn = False
                self.commits += 1
                self.durable = self.written
                if self._checkpointer is not None and self.commits % CHECKPOINT_EVERY == 0:
                    self._checkpointer.request()
            except sqlite3.Error as exc:  # disk full, I/O error
                self._fail(exc)
                return
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        """Memory is now ahead of the disk: nothing more is written or answered from it until a restart, which
        loads the last committed state (fail-stop: answering on would show, or reissue, what the disk lacks)."""
        log.critical("storage failed, the server refuses every request until restarted: %s", exc)
        self.failure = exc
        if self._in_txn:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._in_txn = False
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_exception(StorageFailed(exc))

    async def durable_through(self, mark: int) -> None:
        """Waits until every write up to position `mark` is committed: by the group commit already scheduled for
        them, so an answer waits at most a loop turn and a read splits no group into more commits."""
        while self.durable < mark and self.failure is None:
            await self.committed()
        if self.failure is not None:
            raise StorageFailed(self.failure)

    def committed(self) -> asyncio.Future[None]:
        """A future resolved once everything written so far is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._in_txn:
            self._waiters.append(fut)
        elif self.failure is not None:
            fut.set_exception(StorageFailed(self.failure))
        else:
            fut.set_result(None)
        return fut

    # reads (start-up only) ---------------------------------------------------
    def clusters(self) -> Iterator[tuple[str, int, bytes]]:
        yield from self._conn.execute("SELECT name, rv, data FROM clusters ORDER BY name")

    def objects(self, cluster: str) -> Iterator[tuple[str, bytes]]:
        yield from self._conn.execute("SELECT resource, data FROM objects WHERE cluster=?", (cluster,))

    def events(self, cluster: str) -> Iterator[tuple[int, str, str, bytes]]:
        yield from self._conn.execute(
            "SELECT rv, type, resource, data FROM events WHERE cluster=? ORDER BY rv", (cluster,)
        )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self._conn.execute(sql, params))
