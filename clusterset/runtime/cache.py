"""An informer's in-memory copy of one resource in one cluster, with indexes.

Reconcilers read from caches instead of the API server: reads are free, and a reconcile sees a
consistent picture that is at most one watch event behind. Objects are shared, never copied: treat
them as read-only (`copy.deepcopy` before changing one).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from clusterset.api import labels
from clusterset.api.resources import Resource

Obj = dict[str, Any]
SEEN_TIMEOUT = 10.0  # how long a reconciler waits for its own write to come back through its watch
Indexer = Callable[[Obj], Iterable[str]]


class ObjectKey(NamedTuple):
    """(namespace, name); namespace is "" for cluster-scoped objects. A plain tuple, so it hashes and
    compares like one."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


Key = ObjectKey | tuple[str, str] | str


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return ObjectKey(str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def as_key(key: Key) -> ObjectKey:
    """An ObjectKey from a tuple, "namespace/name" or a bare cluster-scoped "name"."""
    if isinstance(key, tuple):
        return key if isinstance(key, ObjectKey) else ObjectKey(*key)
    namespace, _, name = key.rpartition("/")
    return ObjectKey(namespace, name)


class Cache:
    """Objects by key, plus indexes by namespace, by label (key, value), and custom indexers.

    Written only by its informer; `synced` is set once the first list has been loaded.
    """

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._objects: dict[ObjectKey, Obj] = {}
        self._by_namespace: dict[str, set[ObjectKey]] = {}
        self._by_label: dict[tuple[str, str], set[ObjectKey]] = {}
        self._indexers: dict[str, Indexer] = {}
        self._indexes: dict[str, dict[str, set[ObjectKey]]] = {}
        self._waiters: dict[ObjectKey, list[asyncio.Future[None]]] = {}

    # ------------------------------------------------------------------ reads
    def get(self, key: Key) -> Obj | None:
        return self._objects.get(as_key(key))

    def __contains__(self, key: Key) -> bool:
        return as_key(key) in self._objects

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[ObjectKey]:
        """The keys (a snapshot: safe while the cache changes)."""
        return iter(list(self._objects))

    def list(
        self, namespace: str | None = None, label_selector: str | Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Objects in `namespace` (None: all) that match `label_selector`, ordered by key."""
        selector = labels.selector_of(label_selector)
        indexed = [self._by_label.get(pair, _NONE) for pair in selector.equalities()]
        if namespace is not None:
            indexed.append(self._by_namespace.get(namespace, _NONE))
        keys: Iterable[ObjectKey] = self._objects
        if indexed:  # from the smallest set: a hub namespace may hold thousands, a label picks a few
            indexed.sort(key=len)
            keys = indexed[0].intersection(*indexed[1:])
        out = []
        for key in sorted(keys):
            obj = self._objects[key]
            if selector.empty or selector.matches((obj.get("metadata") or {}).get("labels")):
                out.append(obj)
        return out

    def add_index(self, name: str, indexer: Indexer) -> None:
        """Registers a custom index: `indexer(obj)` returns the values `obj` is found under."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists on the {self.resource} cache")
        self._indexers[name] = indexer
        index: dict[str, set[ObjectKey]] = {}
        for key, obj in self._objects.items():
            for value in indexer(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def has_index(self, name: str) -> bool:
        return name in self._indexers

    def index(self, name: str, value: str) -> builtins.list[Obj]:
        """Objects the named index files under `value`, ordered by key."""
        if name not in self._indexes:
            raise KeyError(f"no index {name!r} on the {self.resource} cache (add_index first)")
        return [self._objects[k] for k in sorted(self._indexes[name].get(value, ()))]

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def wait_for(self, key: Key, predicate: Callable[[Obj | None], bool], timeout: float) -> bool:
        """Waits until `predicate(cache.get(key))` holds, woken by each change of that key; False after `timeout`.

        Read-your-writes for a reconciler: after a write, wait for its watch event, so that the next reconcile of
        the key does not act on the state before it (a create answered AlreadyExists, an update a 409)."""
        key = as_key(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self._objects.get(key)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(key, []).append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return predicate(self._objects.get(key))
            finally:
                waiters = self._waiters.get(key)
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._waiters[key]
        return True

    async def seen(self, written: Obj, timeout: float = SEEN_TIMEOUT) -> bool:
        """Waits until the cache holds `written` (what a write answered) or something newer, so that the next
        reconcile starts from it. resourceVersions are compared as numbers when both are (etcd's and the embedded
        server's are), else only for equality; False after `timeout` (a watch that late has bigger problems: the
        reconcile carries on)."""
        meta = written.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")

        def caught_up(obj: Obj | None) -> bool:
            have = str((obj.get("metadata") or {}).get("resourceVersion") or "") if obj is not None else ""
            return have == version or (have.isdigit() and version.isdigit() and int(have) > int(version))

        return await self.wait_for((meta.get("namespace") or "", meta.get("name") or ""), caught_up, timeout)

    def _wake(self, key: ObjectKey) -> None:
        for waiter in self._waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ writes (the informer's)
    def put(self, obj: Obj) -> Obj | None:
        """Stores `obj`; returns the object it replaced."""
        key = key_of(obj)
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        self._objects[key] = obj
        self._index(key, obj)
        if self._waiters:
            self._wake(key)
        return old

    def remove(self, key: Key) -> Obj | None:
        key = as_key(key)
        old = self._objects.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        if self._waiters:
            self._wake(key)
        return old

    def _index(self, key: ObjectKey, obj: Obj) -> None:
        self._by_namespace.setdefault(key.namespace, set()).add(key)
        for pair in ((obj.get("metadata") or {}).get("labels") or {}).items():
            self._by_label.setdefault(pair, set()).add(key)
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for value in indexer(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: ObjectKey, obj: Obj) -> None:
        _drop(self._by_namespace, key.namespace, key)
        for pair in ((obj.get("metadata") or {}).get("labels") or {}).items():
            _drop(self._by_label, pair, key)
        for name, indexer in self._indexers.items():
            for value in indexer(obj):
                _drop(self._indexes[name], value, key)


_NONE: frozenset[ObjectKey] = frozenset()


def _drop(index: dict[Any, set[ObjectKey]], value: Any, key: ObjectKey) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]
