"""WATCH: the events after a resourceVersion (or a snapshot first), bookmarks, `sendInitialEvents`, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from clusterset.api.objects import INITIAL_EVENTS_END
from clusterset.apiserver.http.codecs import ENCODED, JSON, METADATA, TABLE, AnswerAs, answer_as, truthy
from clusterset.apiserver.http.partial import partial_object
from clusterset.apiserver.http.routing import list_options_invalid, parse_rv
from clusterset.apiserver.http.tables import to_table
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.lists import ListOptions, raw_as, watch_filter
from clusterset.apiserver.storage.encoding import go_json, kept
from clusterset.apiserver.storage.store import WAKE, ClusterStore, Event, TooOld

DEFAULT_TIMEOUT = 1800.0  # seconds, without timeoutSeconds (upstream: a random 30 to 60 minutes)
INITIAL_EVENTS_PER_CHUNK = 100  # a snapshot's or replay's events go out this many at a time


@dataclass(frozen=True)
class WatchSpec:
    """What a watch request asks beyond its ListOptions: an initial snapshot, bookmarks, events as Tables."""

    send_initial: str | None
    bookmarks: bool
    answer: AnswerAs | None = None  # events' objects as a Table or as their metadata


def watch_spec(q: Mapping[str, str], opts: ListOptions, answer: AnswerAs | None = None) -> WatchSpec:
    """The watch options of a query, validated with kube-apiserver's messages (a 400 before any event)."""
    send_initial = q.get("sendInitialEvents")
    bookmarks = truthy(q.get("allowWatchBookmarks"))
    if send_initial is not None:
        if opts.resource_version_match != "NotOlderThan":
            raise list_options_invalid(
                "sendInitialEvents",
                "Forbidden: sendInitialEvents is forbidden for watch "
                "unless resourceVersionMatch is set to NotOlderThan",
            )
        if not bookmarks and truthy(send_initial):
            raise list_options_invalid(
                "allowWatchBookmarks",
                "Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is true",
            )
    elif opts.resource_version_match:
        raise list_options_invalid(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        )
    return WatchSpec(send_initial, bookmarks, answer)


async def watch(request: web.Request, ctx: Ctx, opts: ListOptions, bookmark_interval: float) -> web.StreamResponse:
    spec = watch_spec(request.query, opts, answer_as(request.headers.get("Accept", "")))
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": JSON, "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private"},
    )
    stream = watch_events(ctx, opts, spec, bookmark_interval)
    async with contextlib.aclosing(stream):
        try:
            async for chunk in stream:
                if not response.prepared:  # the first chunk (empty): the watch is registered
                    await response.prepare(request)
                if chunk:
                    await response.write(chunk)
        except ConnectionResetError:
            pass
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


async def watch_events(ctx: Ctx, opts: ListOptions, spec: WatchSpec, bookmark_interval: float
                       ) -> AsyncGenerator[bytes, None]:
    """The encoded events of a watch, as they go out over HTTP or to a client in this process: first an empty chunk
    once the watch is registered, then newline-ended events, each once committed (a crash must not take back what a
    watcher has seen, storage/sqlite.py). Ends at the timeout, when the store closes its watchers, or when closed."""
    store = ctx.cluster.store
    timeout = float(opts.timeout_seconds or DEFAULT_TIMEOUT)  # negative: ends at once, as upstream's timer
    accepts = watch_filter(ctx, opts)
    rv_text = opts.resource_version
    initial: list[Event] = []
    initial_snapshot = spec.send_initial is not None and truthy(spec.send_initial)
    bookmarks, answer = spec.bookmarks, spec.answer
    after: int | None
    after = None if initial_snapshot or rv_text in ("", "0") else parse_rv(rv_text)
    try:
        watcher, replay = store.watch(ctx.served.key, accepts, after)
    except TooOld as exc:
        yield b""
        status = errors.expired(f"too old resource version: {exc.requested} ({exc.current})").to_status()
        yield await _committed(store, go_json({"type": "ERROR", "object": status}, ENCODED))
        return
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None
    armed_at = 0.0

    def wake() -> None:
        nonlocal timer
        timer = None
        watcher.queue.put_nowait(WAKE)

    try:
        if after is None:
            snapshot_rv = store.rv
            for entry in store.entries(ctx.served.key, ctx.namespace):
                ev = Event(int(entry.obj["metadata"]["resourceVersion"]), "ADDED", ctx.served.key, entry)
                if accepts(ev):
                    initial.append(ev)
        else:
            snapshot_rv = after
            initial = replay
        yield b""
        last_rv = snapshot_rv
        for start in range(0, len(initial), INITIAL_EVENTS_PER_CHUNK):
            chunk = (_event_bytes(ctx, ev, answer) for ev in initial[start:start + INITIAL_EVENTS_PER_CHUNK])
            yield await _committed(store, b"".join(chunk))
        sent = len(initial)
        initial.clear()  # not held for the watch's life (a list made for it either way, the store's replay too)
        if initial_snapshot:
            yield await _committed(store,
                _bookmark(ctx, store.rv if not sent else max(snapshot_rv, store.rv), answer, initial_end=True)
            )
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + bookmark_interval
        while True:
            now = loop.time()
            if now >= deadline:
                break
            due = bookmarks and now >= next_bookmark
            if due and watcher.queue.empty():  # a bookmark never gets ahead of an event still queued
                yield await _committed(store, _bookmark(ctx, max(last_rv, store.rv), answer))
                next_bookmark = loop.time() + bookmark_interval
                continue
            at = min(deadline, next_bookmark) if bookmarks and not due else deadline
            if timer is None or armed_at != at:  # armed again only when the next deadline moves (not from
                if timer is not None:  # timer.when(): uvloop rounds it to milliseconds, so it never equals `at`)
                    timer.cancel()
                timer, armed_at = loop.call_at(at, wake), at
            got = await watcher.queue.get()
            if got is WAKE:
                continue
            if got is None:
                break
            assert isinstance(got, Event)
            chunks = [_event_bytes(ctx, got, answer)]
            last_rv = got.rv
            while not watcher.queue.empty():
                nxt = watcher.queue.get_nowait()
                if nxt is None:
                    watcher.closed = True
                    break
                if isinstance(nxt, Event):
                    chunks.append(_event_bytes(ctx, nxt, answer))
                    last_rv = nxt.rv
            yield await _committed(store, b"".join(chunks))
            if watcher.closed:
                break
    finally:
        if timer is not None:
            timer.cancel()
        store.unwatch(watcher)


async def _committed(store: ClusterStore, data: bytes) -> bytes:
    """`data` once everything in memory is committed: events leave only then."""
    await store.db.durable_through(store.db.written)
    return data


def _event_bytes(ctx: Ctx, ev: Event, answer: AnswerAs | None) -> bytes:
    """An event's object as asked (a watch asking for a PartialObjectMetadataList gets the objects, as upstream's
    watch encoder falls back to them when a transform fails)."""
    if answer is not None and answer.kind == TABLE:
        obj = to_table(ctx.rt, [ev.entry.obj], resource_version=str(ev.rv))
        return go_json({"type": ev.type, "object": obj}, ENCODED)
    if answer is not None and answer.kind == METADATA:
        return go_json({"type": ev.type, "object": partial_object(ev.entry.obj, answer)}, ENCODED)
    raw = raw_as(ev.entry, ctx.rt.group_version)
    return b'{"type":"' + ev.type.encode() + b'","object":' + raw + b"}\n"


def _bookmark(ctx: Ctx, rv: int, answer: AnswerAs | None, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    if answer is not None and answer.kind == METADATA:
        obj = {"kind": METADATA, "apiVersion": answer.api_version, "metadata": meta}
    else:
        obj = {"kind": ctx.rt.kind, "apiVersion": ctx.rt.group_version, "metadata": meta}
    return kept(go_json({"type": "BOOKMARK", "object": obj}, ENCODED))  # an idle watch's last chunk: it lingers
