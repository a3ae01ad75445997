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
committed before the crash, never corrupting the database. `durable=True` closes that window too:
a write counts as durable only once the WAL holding its commit is fsynced. That is what SQLite's
`synchronous=FULL` does inside every COMMIT, on the event loop, where an fsync of a few milliseconds
stops every request; here the WAL is fdatasynced on a thread of its own instead, while the loop goes on
and the next group commits, and one sync covers every group committed before it started (etcd syncs its
WAL per batch the same way). SQLite itself still syncs the WAL before each checkpoint and the database
file after it (synchronous=NORMAL), so a reset WAL never drops a synced commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
CREATE TABLE IF NOT EXISTS born_templates (id INTEGER PRIMARY KEY, resource TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS born (
  id INTEGER PRIMARY KEY, cluster TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  template INTEGER NOT NULL, uid TEXT NOT NULL, rv INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS born_key ON born (cluster, resource, namespace, name);
"""
PUT_OBJECT = "INSERT OR REPLACE INTO objects (cluster, resource, namespace, name, data) VALUES (?,?,?,?,?)"
PUT_BORN = "INSERT OR REPLACE INTO born (cluster, resource, namespace, name, template, uid, rv) VALUES (?,?,?,?,?,?,?)"
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
        self._conn.execute("PRAGMA synchronous=NORMAL")
        _migrate_without_rowid_tables(self._conn)
        self._conn.executescript(SCHEMA)
        self._checkpointer: _Checkpointer | None = None
        self._wal_fd: int | None = None  # set when commits are fsynced (durable=True, on disk)
        self._syncer: ThreadPoolExecutor | None = None
        if path is not None:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(path)
            self._checkpointer.start()
            if durable:  # the WAL exists once the schema is written, and lives as long as this connection
                self._wal_fd = os.open(f"{path}-wal", os.O_RDONLY)
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-fsync")
        self._in_txn = False
        self._cluster_rvs: dict[str, int] = {}
        # born references not handed to SQLite yet: a new cluster is born with about 50, written in one executemany
        # before the next statement, read or commit (a twentieth of a cluster's birth less than one statement each)
        self._born_rows: list[tuple[str, str, str, str, int, str, int]] = []
        self._template_ids: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()  # template → row
        # (position, tiebreak, future) waiting until `durable` reaches the position; a heap by position
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._tiebreak = itertools.count()
        self._commit_scheduled = False
        self._sync_running = False
        self.commits = 0
        self.written = 0  # writes issued so far (a position in the sequence of writes)
        self.committed_through = 0  # `written` at the last commit: everything up to it is in the WAL
        self.durable = 0  # everything up to it is as durable as configured (committed; with durable=True synced)
        # a failed write or commit leaves memory ahead of the disk: the server then refuses to go on (fail-stop)
        self.failure: BaseException | None = None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.commit_now()
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
        if self._wal_fd is not None:
            os.close(self._wal_fd)
        self._conn.close()  # the last connection to close checkpoints the rest (syncing both files)

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

    def _execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        self._begin()
        try:
            self._flush_born()
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:  # disk full, I/O error: memory already holds the change
            self._fail(exc)
            raise StorageFailed(exc) from exc

    def put_object(self, cluster: str, resource: str, namespace: str, name: str, data: bytes) -> None:
        self._execute(PUT_OBJECT, (cluster, resource, namespace, name, data))

    def delete_object(self, cluster: str, resource: str, namespace: str, name: str) -> None:
        self._execute("DELETE FROM objects WHERE cluster=? AND resource=? AND namespace=? AND name=?",
                      (cluster, resource, namespace, name))

    def put_born(self, cluster: str, template: object, resource: str, raw: bytes, namespace: str, name: str, uid: str,
                 rv: int) -> None:
        """An object a cluster is born with, as a reference to its template (`raw`, written once) with its uid and
        resourceVersion."""
        row = self._template_ids.get(template)
        if row is None:
            added = self._execute("INSERT INTO born_templates (resource, data) VALUES (?,?)", (resource, raw))
            row = self._template_ids[template] = int(added.lastrowid or 0)
        self._begin()
        self._born_rows.append((cluster, resource, namespace, name, row, uid, rv))

    def _flush_born(self) -> None:
        if self._born_rows:
            rows, self._born_rows = self._born_rows, []
            self._conn.executemany(PUT_BORN, rows)

    def delete_born(self, cluster: str, resource: str, namespace: str, name: str) -> None:
        """Forgets a born object's reference (it is stored in full from its first change on, or deleted)."""
        self._execute("DELETE FROM born WHERE cluster=? AND resource=? AND namespace=? AND name=?",
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
        for table in ("objects", "events", "born"):
            self._execute(f"DELETE FROM {table} WHERE cluster=?", (name,))
        self._execute("DELETE FROM clusters WHERE name=?", (name,))

    # commit -----------------------------------------------------------------
    def _scheduled_commit(self) -> None:
        self._commit_scheduled = False
        self.commit_now()

    def commit_now(self) -> None:
        if not self._in_txn:
            return
        try:
            self._flush_born()
            if self._cluster_rvs:
                self._conn.executemany("UPDATE clusters SET rv=? WHERE name=?",
                                       [(rv, name) for name, rv in self._cluster_rvs.items()])
                self._cluster_rvs.clear()
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:  # disk full, I/O error
            self._fail(exc)
            return
        self._in_txn = False
        self.commits += 1
        self.committed_through = self.written
        if self._checkpointer is not None and self.commits % CHECKPOINT_EVERY == 0:
            self._checkpointer.request()
        if self._wal_fd is None:
            self._advance(self.committed_through)
        else:
            self._sync_wal()

    def _sync_wal(self) -> None:
        """Fsyncs the WAL off the loop; a sync covers what was committed when it started, and the commits made
        while it ran wait for the next one (so syncs run back to back, never two at once)."""
        assert self._wal_fd is not None and self._syncer is not None
        if self._sync_running:
            return
        through = self.committed_through
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closing, or a synchronous caller: sync in place
            self._sync_done(through, self._sync_in_place)
            return
        self._sync_running = True
        done = loop.run_in_executor(self._syncer, os.fdatasync, self._wal_fd)
        done.add_done_callback(lambda fut: self._sync_done(through, fut.result))

    def _sync_in_place(self) -> None:
        assert self._wal_fd is not None
        os.fdatasync(self._wal_fd)

    def _sync_done(self, through: int, result: Callable[[], None]) -> None:
        self._sync_running = False
        try:
            result()
        except OSError as exc:  # the kernel may have dropped the dirty pages: nothing after `durable` is safe
            self._fail(exc)
            return
        self._advance(through)
        if self.committed_through > through and self.failure is None:
            self._sync_wal()

    def _advance(self, through: int) -> None:
        self.durable = max(self.durable, through)
        while self._waiters and self._waiters[0][0] <= self.durable:
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():
                fut.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        """Memory is now ahead of the disk: nothing more is written or answered from it until a restart, which
        loads the last committed state (fail-stop: answering on would show, or reissue, what the disk lacks)."""
        log.critical("storage failed, the server refuses every request until restarted: %s", exc)
        self.failure = exc
        self._born_rows.clear()
        if self._in_txn:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._in_txn = False
        waiters, self._waiters = self._waiters, []
        for _, _, fut in waiters:
            if not fut.done():
                fut.set_exception(StorageFailed(exc))

    async def durable_through(self, mark: int) -> None:
        """Waits until every write up to position `mark` is durable: by the group commit (and sync) already
        scheduled for them, so an answer waits at most a loop turn (or a sync) and a read splits no group."""
        if self.failure is None and self.durable >= mark:
            return  # as awaiting a done future: no suspension (and no future made for every read)
        await self._durable_future(mark)

    def committed(self) -> asyncio.Future[None]:
        """A future resolved once everything written so far is durable."""
        return self._durable_future(self.written)

    def _durable_future(self, mark: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            fut.set_exception(StorageFailed(self.failure))
        elif self.durable >= mark:
            fut.set_result(None)
        else:
            heapq.heappush(self._waiters, (mark, next(self._tiebreak), fut))
        return fut

    # reads (start-up only) ---------------------------------------------------
    def clusters(self) -> Iterator[tuple[str, int, bytes]]:
        yield from self._conn.execute("SELECT name, rv, data FROM clusters ORDER BY name")

    def objects(self, cluster: str) -> Iterator[tuple[str, bytes]]:
        yield from self._conn.execute("SELECT resource, data FROM objects WHERE cluster=?", (cluster,))

    def born_templates(self) -> Iterator[tuple[int, str, bytes]]:
        """(id, resource, data) of every template a stored born object refers to (the others are dropped)."""
        self._flush_born()
        self._conn.execute("DELETE FROM born_templates WHERE id NOT IN (SELECT DISTINCT template FROM born)")
        yield from self._conn.execute("SELECT id, resource, data FROM born_templates")

    def born(self, cluster: str) -> Iterator[tuple[int, str, int]]:
        """(template id, uid, rv) of each object the cluster was born with and has not changed since."""
        yield from self._conn.execute("SELECT template, uid, rv FROM born WHERE cluster=?", (cluster,))

    def events(self, cluster: str) -> Iterator[tuple[int, str, str, bytes]]:
        yield from self._conn.execute(
            "SELECT rv, type, resource, data FROM events WHERE cluster=? ORDER BY rv", (cluster,)
        )

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        self._flush_born()
        return list(self._conn.execute(sql, params))
