"""List-then-watch of one resource in one cluster, feeding a Cache and event handlers.

The loop is client-go's reflector: list (paged) to get a consistent snapshot and its
resourceVersion, then watch from that version with bookmarks (so an idle watch still advances its
version and a reconnect resumes cheaply). Against the embedded server in this process the snapshot
comes as a watch-list instead, as client-go's reflector does with WatchListClient: one watch with
`sendInitialEvents=true` whose first events are the snapshot, ended by a bookmark annotated
`k8s.io/initial-events-end` (one request where a list and a watch were two; a server that refuses the
option, 400 or 422, gets list-then-watch from then on). A broken stream reconnects from the last version seen; a
410 Expired (the server's history no longer reaches back that far) relists and diffs the new
snapshot against the cache, so deletions missed while disconnected still reach the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from clusterset.api.objects import INITIAL_EVENTS_END
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.client.errors import BadRequest, Gone, Invalid
from clusterset.runtime.cache import Cache, Obj, key_of
from clusterset.runtime.logs import bind

log = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED, RESYNC = "ADDED", "MODIFIED", "DELETED", "RESYNC"


@dataclass(frozen=True)
class Event:
    """A change the informer saw. `old` is the previous object for MODIFIED; for DELETED `obj` is the
    last state known (after a relist that may be older than the deletion itself)."""

    type: str
    obj: Obj
    old: Obj | None = None


Handler = Callable[[Event], None]


class InformerMetrics(Protocol):
    def relisted(self) -> None: ...
    def watch_restarted(self, reason: str) -> None: ...


class Informer:
    """Keeps `cache` equal to the server's view of (resource, namespace, selectors) and tells handlers.

    Handlers run synchronously in the informer's task and must not block (enqueue and return).
    """

    def __init__(
        self,
        client: ClusterClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        cluster: str = "",
        resync_period: float | None = None,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (300, 600),
        max_backoff: float = 10.0,
        metrics: InformerMetrics | None = None,
        watch_list: bool | None = None,
    ) -> None:
        """`watch_list`: take snapshots by watch-list (default: when the server answers in this process, which
        is the embedded server and so known to support it)."""
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cluster = cluster
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.max_backoff = max_backoff
        self.cache = Cache(resource)
        self.watch_list = client.in_process is not None if watch_list is None else watch_list
        self._metrics = metrics
        self._handlers: list[Handler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._lists = 0
        self._need_snapshot = True  # until a list (or watch-list) has replaced the cache
        self._received = False
        self._log = bind(log, cluster=cluster, resource=str(resource), namespace=namespace,
                         selector=label_selector)

    # ------------------------------------------------------------------ handlers
    def add_handler(self, handler: Handler) -> None:
        """Registers `handler`; if the cache is already loaded it first gets ADDED for every object."""
        self._handlers.append(handler)
        if self.cache.synced.is_set():
            for obj in self.cache.list():
                self._call(handler, Event(ADDED, obj))

    def remove_handler(self, handler: Handler) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(handler)

    def _dispatch(self, event: Event) -> None:
        for handler in list(self._handlers):
            self._call(handler, event)

    def _call(self, handler: Handler, event: Event) -> None:
        try:
            handler(event)
        except Exception:
            self._log.exception("event handler failed", event=event.type, key=str(key_of(event.obj)))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._tasks:
            return
        name = f"informer {self.cluster}/{self.resource}"
        self._tasks.append(asyncio.create_task(self._run(), name=name))
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync(self.resync_period), name=f"{name} resync"))

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def stop(self) -> None:
        """Cancels the watch (closing its connection) and waits for the tasks to end."""
        await asyncio.gather(*self.cancel(), return_exceptions=True)  # a cancelled stop() still raises

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancels the tasks without waiting (so a stop that is itself cancelled leaves nothing running)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        return tasks

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        paged = True
        failures = 0
        while True:
            watch_list = self._need_snapshot and self.watch_list
            try:
                if self._need_snapshot and not watch_list:
                    await self._list(paged)
                    paged = True
                opened = asyncio.get_running_loop().time()
                await self._watch(watch_list)
                if not self._received and asyncio.get_running_loop().time() - opened < 1.0:
                    # as client-go's reflector: a server (or proxy) that ends every watch at once must not
                    # be hammered in a tight loop; back off as after an error
                    raise ConnectionError("watch closed at once without an event")
                failures = 0
                self._restarted("closed")
                continue
            except Gone:
                # the watch's version (or a list's continue token) is older than the server's history
                self._log.info("resourceVersion expired, relisting", resource_version=self.cache.resource_version)
                paged = not self._need_snapshot  # an expired continue token: relist in one piece
                self._need_snapshot = True
                self._restarted("expired")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if watch_list and isinstance(exc, BadRequest | Invalid):  # 422: upstream without the WatchList gate
                    self._log.info("watch-list refused, listing instead", error=str(exc))
                    self.watch_list = False
                    continue
                if self._received:  # the stream worked for a while: start the backoff over
                    failures, self._received = 0, False
                failures += 1
                delay = min(self.max_backoff, 0.1 * 2 ** min(failures, 10)) * random.uniform(0.5, 1.0)
                self._log.warning("list/watch failed, retrying", error=repr(exc), attempt=failures,
                                  retry_in=round(delay, 2))
                self._restarted("error")
                await asyncio.sleep(delay)

    def _restarted(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.watch_restarted(reason)

    async def _list(self, paged: bool) -> None:
        items: list[Obj] = []
        resource_version = ""
        cont: str | None = None
        while True:
            page = await self.client.list(
                self.resource, namespace=self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=self.page_size if paged else None, continue_=cont,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            resource_version = resource_version or str(meta.get("resourceVersion") or "")
            cont = meta.get("continue") or None
            if not cont:
                break
        self._replace(items, resource_version)

    def _replace(self, items: list[Obj], resource_version: str) -> None:
        """Makes the cache equal to a fresh snapshot, then tells handlers what changed."""
        self._lists += 1
        if self._lists > 1 and self._metrics is not None:
            self._metrics.relisted()
        self._need_snapshot = False
        events: list[Event] = []
        seen = set()
        for obj in items:
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            seen.add(key_of(obj))
            old = self.cache.put(obj)
            if old is None:
                events.append(Event(ADDED, obj))
            elif _rv(old) != _rv(obj):
                events.append(Event(MODIFIED, obj, old))
        for key in list(self.cache):
            if key not in seen:
                gone = self.cache.remove(key)
                if gone is not None:
                    events.append(Event(DELETED, gone))
        self.cache.resource_version = resource_version
        self.cache.synced.set()
        self._log.debug("listed", objects=len(items), resource_version=resource_version, changes=len(events))
        for event in events:
            self._dispatch(event)

    async def _watch(self, watch_list: bool = False) -> None:
        """Applies the events after the cache's version; with `watch_list`, first takes the server's current state,
        gathering the initial events and replacing the cache with them at the bookmark that ends them."""
        timeout = random.randint(*self.watch_timeout)
        self._received = False
        stream = self.client.watch(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=None if watch_list else self.cache.resource_version,
            allow_bookmarks=True, timeout_seconds=timeout, send_initial_events=True if watch_list else None,
        )
        snapshot: list[Obj] | None = [] if watch_list else None
        async with contextlib.aclosing(stream):
            async for raw in stream:
                if snapshot is None:
                    self._apply(raw)
                    continue
                obj = raw.get("object") or {}
                if raw.get("type") != "BOOKMARK":
                    snapshot.append(obj)
                elif ((obj.get("metadata") or {}).get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                    self._received = True
                    self._replace(snapshot, _rv(obj))
                    snapshot = None
        if snapshot is not None:
            raise ConnectionError("watch-list ended before its initial events did")

    def _apply(self, raw: dict[str, Any]) -> None:
        self._received = True
        type_, obj = raw.get("type"), raw.get("object") or {}
        rv = _rv(obj)
        if type_ == "BOOKMARK":
            if rv:
                self.cache.resource_version = rv
            return
        if type_ in (ADDED, MODIFIED):
            old = self.cache.put(obj)
            self.cache.resource_version = rv or self.cache.resource_version
            self._dispatch(Event(ADDED, obj) if old is None else Event(MODIFIED, obj, old))
        elif type_ == DELETED:
            self.cache.remove(key_of(obj))
            self.cache.resource_version = rv or self.cache.resource_version
            self._dispatch(Event(DELETED, obj))

    async def _resync(self, period: float) -> None:
        """Re-delivers every cached object (no API call), so level-based controllers re-check the world."""
        while True:
            await asyncio.sleep(period)
            if self.cache.synced.is_set():
                for obj in self.cache.list():
                    self._dispatch(Event(RESYNC, obj, obj))


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
