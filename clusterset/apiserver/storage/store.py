"""The objects of one logical cluster: current state, resourceVersions, watch history, watchers.

All state lives in memory (reads and watches never touch SQLite) and every change is also
written to SQLite, so a restart on the same directory brings back every object, the
resourceVersion counter and the watch history window. Mutations are synchronous on the event
loop: a watch registered between two writes sees exactly the events after its snapshot.
Stored dicts are never mutated; writers store new dicts.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from clusterset.apiserver.storage.encoding import go_json, in_go_order, kept, sorted_object
from clusterset.apiserver.storage.sqlite import Database

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace or "", name)

DEFAULT_HISTORY = 10_000
ANY_RESOURCE = "*"


class Entry:
    """A stored object and its JSON (as Go encodes it), encoded once and shared by GET, LIST and watch events."""

    __slots__ = ("_raw", "obj")

    def __init__(self, obj: Obj, raw: bytes | None = None) -> None:
        self.obj = obj
        self._raw = raw

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = kept(go_json(self.obj))
        return self._raw

    def copy(self) -> Obj:
        """A private deep copy (decoding is faster than copy.deepcopy)."""
        result: Obj = orjson.loads(self.raw)
        return result


class BornEntry(Entry):
    """An object stored as a reference to its `Born` template, until it changes; encoded from the template's bytes."""

    __slots__ = ("born",)

    def __init__(self, born: Born, uid: str, rv: int) -> None:
        super().__init__(born.copy_for(uid, rv))
        self.born = born

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            meta = self.obj["metadata"]
            self._raw = self.born.raw_for(meta["uid"], meta["resourceVersion"])
        return self._raw


class Born:
    """An object every cluster born in the same second gets alike but for its uid and resourceVersion (its RBAC
    policy, APIServices, CRDs, system namespaces): the template is stored once, each cluster's copy as a reference
    with its uid and resourceVersion, and a restart loads every copy as a new envelope and metadata around the
    template's decoded values, shared (stored dicts are never mutated). Built-in kinds only (stored in Go order).

    A 1,000-member fleet is born with about 60 of them per member, most of its stored bytes: encoded, written and
    loaded once each, they were a third of its birth and half of its restart's load."""

    __slots__ = ("__weakref__", "obj", "raw", "resource")

    def __init__(self, resource: str, obj: Obj) -> None:
        self.resource = resource
        self.obj = in_go_order({**obj, "metadata": {**obj["metadata"], "uid": "", "resourceVersion": ""}})
        self.raw = kept(go_json(self.obj))

    @classmethod
    def decode(cls, resource: str, raw: bytes) -> Born:
        born = cls.__new__(cls)
        born.resource, born.obj, born.raw = resource, orjson.loads(raw), raw
        return born

    def copy_for(self, uid: str, rv: int) -> Obj:
        """A cluster's object: its own envelope and metadata, the template's values."""
        obj = dict(self.obj)
        obj["metadata"] = {**self.obj["metadata"], "uid": uid, "resourceVersion": str(rv)}
        return obj

    def raw_for(self, uid: str, rv: str) -> bytes:
        """A copy's encoding: the template's, its uid and resourceVersion filled in. ObjectMeta's first fields
        (`name`, `generateName`, `namespace`, `selfLink`) are strings, where a quote is escaped: the first empty
        `uid` and `resourceVersion` are the object's own."""
        return (self.raw.replace(b'"uid":""', b'"uid":"' + uid.encode() + b'"', 1)
                .replace(b'"resourceVersion":""', b'"resourceVersion":"' + rv.encode() + b'"', 1))


def created_at(raw: bytes, now: str) -> Obj:
    """An object (encoded) as created at `now`: its creation time and its managedFields' times (a new cluster's
    objects from their templates)."""
    obj: Obj = orjson.loads(raw)
    meta = obj["metadata"]
    meta["creationTimestamp"] = now
    for entry in meta.get("managedFields") or ():
        entry["time"] = now
    return obj


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    entry: Entry

    @property
    def namespace(self) -> str:
        return str(self.entry.obj.get("metadata", {}).get("namespace", ""))


class Wake:
    """What a watch's reader puts in its own queue from a timer (its timeout, its next bookmark): one timer handle
    per deadline instead of a timeout task and timer around every wait for an event."""


WAKE = Wake()


@dataclass(eq=False)
class Watcher:
    """A registered watch; the store pushes matching events into its queue (None: closed; WAKE: its reader's)."""

    resource: str
    accepts: Callable[[Event], bool]
    queue: asyncio.Queue[Event | Wake | None] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


Listener = Callable[[str, Event], None]


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int, current: int) -> None:
        super().__init__(f"too old resource version: {requested} ({current})")
        self.requested = requested
        self.oldest = oldest
        self.current = current


class ClusterStore:
    """One logical cluster's objects, keyed by resource ("group/plural") then (namespace, name)."""

    def __init__(self, name: str, db: Database, history_size: int = DEFAULT_HISTORY,
                 typed: Collection[str] = ()) -> None:
        self.name = name
        self.db = db
        # resources of Go types (the built-ins): their objects are stored in Go struct order, the others
        # (custom resources) with sorted keys, as kube-apiserver encodes each (encoding.py)
        self.typed = frozenset(typed)
        self.rv = 0
        self.history: deque[Event] = deque()
        self.history_size = history_size
        # the oldest rv a watch can resume from: everything after it is in `history`
        self.compacted_rv = 0
        self._objects: dict[str, dict[ObjKey, Entry]] = {}
        self._sorted: dict[str, list[ObjKey]] = {}  # each resource's keys in list order, built on first list
        # garbage collection indexes: uid → where the object is; owner uid → its dependents
        self._by_uid: dict[str, tuple[str, ObjKey]] = {}
        self._dependents: dict[str, set[tuple[str, ObjKey]]] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._rv_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # called synchronously with every event of a resource, or of every resource ("*")
        self._listeners: dict[str, list[Listener]] = {}

    # loading -----------------------------------------------------------------
    def load(self, rv: int, templates: dict[int, Born]) -> None:
        """Loads the cluster's state (`templates`: the born objects' templates, by id)."""
        self.rv = rv
        for template, uid, born_rv in self.db.born(self.name):
            born = templates[template]
            copy = BornEntry(born, uid, born_rv)
            meta = copy.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            self._objects.setdefault(born.resource, {})[key] = copy
            self._index(born.resource, key, None, copy.obj)
        # an object's last event holds the object as it is: both share one Entry, as before the restart
        current: dict[bytes, Entry] = {}
        for resource, data in self.db.objects(self.name):
            obj = orjson.loads(data)
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            entry = current[data] = Entry(obj, data)
            self._objects.setdefault(resource, {})[key] = entry
            self._index(resource, key, None, obj)
        first = True
        for ev_rv, type_, resource, data in self.db.events(self.name):
            if first:
                self.compacted_rv = ev_rv - 1
                first = False
            same = current.get(data) if type_ != "DELETED" else None
            self.history.append(Event(ev_rv, type_, resource, same or Entry(orjson.loads(data), data)))
        if first:
            self.compacted_rv = rv

    # reads -------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> Entry | None:
        return self._objects.get(resource, {}).get((namespace, name))

    def entries(self, resource: str, namespace: str | None = None, after: ObjKey | None = None,
                limit: int | None = None) -> list[Entry]:
        """Entries sorted by namespace then name (as kube-apiserver lists them), from just after `after`."""
        objs = self._objects.get(resource, {})
        keys = self._keys(resource)
        lo, hi = self._span(keys, namespace, after)
        if limit is not None:
            hi = min(hi, lo + limit)
        return [objs[k] for k in keys[lo:hi]]

    def count_after(self, resource: str, namespace: str | None, after: ObjKey | None) -> int:
        lo, hi = self._span(self._keys(resource), namespace, after)
        return hi - lo

    def _keys(self, resource: str) -> list[ObjKey]:
        keys = self._sorted.get(resource)
        if keys is None:
            keys = self._sorted[resource] = sorted(self._objects.get(resource, {}))
        return keys

    @staticmethod
    def _span(keys: list[ObjKey], namespace: str | None, after: ObjKey | None) -> tuple[int, int]:
        lo, hi = 0, len(keys)
        if namespace is not None:
            lo = bisect.bisect_left(keys, (namespace, ""))
            hi = bisect.bisect_left(keys, (namespace + "\x00", ""))
        if after is not None:
            lo = max(lo, bisect.bisect_right(keys, after))
        return lo, max(lo, hi)

    def count(self, resource: str, namespace: str | None = None) -> int:
        objs = self._objects.get(resource, {})
        if namespace is None:
            return len(objs)
        return sum(1 for k in objs if k[0] == namespace)

    def resources(self) -> list[str]:
        return [r for r, objs in self._objects.items() if objs]

    # writes ------------------------------------------------------------------
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, resource: str, obj: Obj, event_type: str, *, history: bool = True) -> Entry:
        """Stores `obj` (whose metadata.resourceVersion the caller set from `next_rv()`).

        `history=False` (objects a new cluster is born with, written before anyone can watch it) records
        no event: nobody is told, and a watch cannot resume from before it (410, as after compaction).
        """
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        entry = self._entry(resource, obj)
        self._replace(resource, key, entry)
        rv = int(meta["resourceVersion"])
        self.db.put_object(self.name, resource, key[0], key[1], entry.raw)
        if history:
            self._record(Event(rv, event_type, resource, entry))
        else:
            self._unrecorded(rv)
        return entry

    def put_born(self, born: Born, uid: str) -> Entry:
        """Stores a new cluster's copy of `born` with its own uid and the next resourceVersion (no history, as
        `put(history=False)`)."""
        if born.resource not in self.typed:
            raise ValueError(f"{born.resource} is not a built-in resource")
        rv = self.next_rv()
        entry = BornEntry(born, uid, rv)
        meta = entry.obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        self._replace(born.resource, key, entry)
        self.db.put_born(self.name, born, born.resource, born.raw, key[0], key[1], uid, rv)
        self._unrecorded(rv)
        return entry

    def _replace(self, resource: str, key: ObjKey, entry: Entry) -> None:
        objects = self._objects.setdefault(resource, {})
        previous = objects.get(key)
        objects[key] = entry
        if previous is None and resource in self._sorted:
            bisect.insort(self._sorted[resource], key)
        self._index(resource, key, previous.obj if previous else None, entry.obj)
        if isinstance(previous, BornEntry):
            self.db.delete_born(self.name, resource, key[0], key[1])

    def _unrecorded(self, rv: int) -> None:
        self.compacted_rv = max(self.compacted_rv, rv)
        self.db.set_cluster_rv(self.name, self.rv)

    def remove(self, resource: str, obj: Obj) -> Entry:
        """Deletes the object; `obj` is its final state, carrying the deletion's resourceVersion."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        previous = self._objects.get(resource, {}).pop(key, None)
        self._index(resource, key, previous.obj if previous else None, None)
        keys = self._sorted.get(resource)
        if previous is not None and keys is not None:
            del keys[bisect.bisect_left(keys, key)]
        entry = self._entry(resource, obj)
        self._forget(resource, key, previous)
        self._record(Event(int(meta["resourceVersion"]), "DELETED", resource, entry))
        return entry

    def _forget(self, resource: str, key: ObjKey, entry: Entry | None) -> None:
        if isinstance(entry, BornEntry):
            self.db.delete_born(self.name, resource, key[0], key[1])
        else:
            self.db.delete_object(self.name, resource, key[0], key[1])

    def _entry(self, resource: str, obj: Obj) -> Entry:
        """The entry that stores `obj`, in the field order kube-apiserver writes it in (once per write)."""
        if resource in self.typed:
            return Entry(in_go_order(obj))
        return Entry(*sorted_object(obj))

    def drop_resource(self, resource: str) -> None:
        """Forgets every object of a resource without events (a CRD's objects are gone)."""
        for key, entry in list(self._objects.get(resource, {}).items()):
            self._forget(resource, key, entry)
            self._index(resource, key, entry.obj, None)
        self._objects.pop(resource, None)
        self._sorted.pop(resource, None)

    def _index(self, resource: str, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        where = (resource, key)
        if old is not None:
            self._by_uid.pop(old["metadata"].get("uid", ""), None)
            for ref in old["metadata"].get("ownerReferences") or []:
                deps = self._dependents.get(ref.get("uid", ""))
                if deps is not None:
                    deps.discard(where)
                    if not deps:
                        del self._dependents[ref.get("uid", "")]
        if new is not None:
            self._by_uid[new["metadata"].get("uid", "")] = where
            for ref in new["metadata"].get("ownerReferences") or []:
                self._dependents.setdefault(ref.get("uid", ""), set()).add(where)

    def uid_exists(self, uid: str) -> bool:
        return uid in self._by_uid

    def by_uid(self, uid: str) -> tuple[str, Entry] | None:
        """(resource, entry) of the object with this uid."""
        where = self._by_uid.get(uid)
        if where is None:
            return None
        entry = self._objects.get(where[0], {}).get(where[1])
        return (where[0], entry) if entry is not None else None

    def has_dependents(self, owner_uid: str) -> bool:
        return owner_uid in self._dependents

    def dependents(self, owner_uid: str) -> list[tuple[str, Entry]]:
        """(resource, entry) of every object with an ownerReference to `owner_uid`."""
        out = []
        for resource, key in sorted(self._dependents.get(owner_uid, ())):
            entry = self._objects.get(resource, {}).get(key)
            if entry is not None:
                out.append((resource, entry))
        return out

    def _record(self, event: Event) -> None:
        self.history.append(event)
        self.db.put_event(self.name, event.rv, event.type, event.resource, event.entry.raw)
        if len(self.history) > self.history_size + self.history_size // 10:
            while len(self.history) > self.history_size:
                self.compacted_rv = self.history.popleft().rv
            self.db.trim_events(self.name, self.compacted_rv + 1)
        self.db.set_cluster_rv(self.name, self.rv)
        for watcher in self._watchers.get(event.resource, ()):
            if not watcher.closed and watcher.accepts(event):
                watcher.queue.put_nowait(event)
        for listeners in (self._listeners.get(event.resource), self._listeners.get(ANY_RESOURCE)):
            for listener in listeners or ():
                try:
                    listener(self.name, event)
                except Exception:  # a subscriber's bug must not fail the client's write
                    log.exception("listener for %s in cluster %s failed", event.resource, self.name)
        if self._rv_waiters:
            self._wake_rv_waiters()

    # subscribers -------------------------------------------------------------
    def subscribe(self, resource: str, listener: Listener) -> None:
        """Calls `listener(cluster, event)` synchronously with each event of `resource` (or of every resource,
        `"*"`), in the writer's loop turn: for indexes that must follow every write (RBAC) and for the
        controller manager's queues."""
        self._listeners.setdefault(resource, []).append(listener)

    def unsubscribe(self, resource: str, listener: Listener) -> None:
        """Removes one subscription (each subscriber removes its own)."""
        listeners = self._listeners.get(resource)
        if listeners and listener in listeners:
            listeners.remove(listener)

    # watch -------------------------------------------------------------------
    def watch(
        self, resource: str, accepts: Callable[[Event], bool], after_rv: int | None
    ) -> tuple[Watcher, list[Event]]:
        """Registers a watcher; returns it and the history events after `after_rv` to replay first.

        Raises TooOld when `after_rv` is older than the retained window.
        """
        replay: list[Event] = []
        if after_rv is not None:
            if after_rv < self.compacted_rv:
                raise TooOld(after_rv, self.compacted_rv, self.rv)
            replay = [e for e in self._history_after(after_rv) if e.resource == resource and accepts(e)]
        watcher = Watcher(resource, accepts)
        self._watchers.setdefault(resource, set()).add(watcher)
        return watcher, replay

    def _history_after(self, rv: int) -> Iterable[Event]:
        if not self.history or self.history[-1].rv <= rv:
            return ()
        # binary search over the deque's rvs (monotonic)
        lo, hi = 0, len(self.history)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.history[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return [self.history[i] for i in range(lo, len(self.history))]

    def changed_since(self, resource: str, rv: int) -> bool:
        """Whether `resource` may have changed after `rv` (always, when `rv` is older than the history kept)."""
        if rv < self.compacted_rv:
            return True
        return any(e.resource == resource for e in self._history_after(rv))

    def unwatch(self, watcher: Watcher) -> None:
        watcher.close()
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def close_watchers(self, resource: str | None = None) -> None:
        for res, watchers in list(self._watchers.items()):
            if resource is None or res == resource:
                for w in list(watchers):
                    self.unwatch(w)

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    async def wait_for_rv(self, rv: int, timeout: float) -> bool:
        """Waits until the store reaches `rv` (a read asking for a version not yet written)."""
        if self.rv >= rv:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rv_waiters.append((rv, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    def _wake_rv_waiters(self) -> None:
        keep = []
        for rv, fut in self._rv_waiters:
            if self.rv >= rv:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((rv, fut))
        self._rv_waiters = keep
