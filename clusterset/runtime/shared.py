"""Informers of one cluster serving views of another engaged cluster, for many readers of the same server.

In one process that runs many agents of one hub (the embedded fleet), every agent's view of the hub
watched the same few kinds, each in its own namespace: N list+watch streams per kind, each a TLS
connection with its buffers. `SharedReads` serves those views from one informer per kind of a parent
cluster instead (the hub engaged with the fleet's own credentials): a `ChildInformer` keeps its own
cache of one namespace, fed by the parent's events, so its handlers and readers see only that namespace.
Only what the view's own identity may list and watch is served this way (`may_watch`): anything else
(another namespace, a selector) is left to the view's own informer and credentials, so the server's
authorization still decides what an agent reads. Writes always go through the view's own client.

`Mirror` serves every view of a cluster from a parent engaged with the same client, which outlives it:
two readers of a member (its agent, its DNS server) with different lifetimes, one list+watch per view; the
label-selected views of the kinds it `widens` come from the parent's view of all of them, filtered here (three
readers of a member's EndpointSlices select three ways: one watch instead of three).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from clusterset.api import labels
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.runtime.cache import key_of
from clusterset.runtime.informer import ADDED, DELETED, RESYNC, Event, Informer

InformerSource = Callable[[ClusterClient, Resource, str | None, str | None, str | None], Informer | None]
"""(client, resource, namespace, label selector, field selector) → an informer serving that view from elsewhere,
not started; None: the cluster makes its own."""


class Informers(Protocol):
    """What a parent is: a runtime Cluster."""

    def informer(self, resource: Resource, namespace: str | None = None,
                 label_selector: str | Mapping[str, str] | None = None,
                 field_selector: str | None = None) -> Informer: ...


class ChildInformer(Informer):
    """A parent informer's objects in one namespace (`scope`; None: all of them) that match `label_selector` (on
    top of the parent's own): its own cache and handlers, fed by the parent's events; no list or watch of its
    own."""

    def __init__(self, client: ClusterClient, parent: Informer, scope: str | None, fanout: _Fanout,
                 label_selector: str | None = None) -> None:
        super().__init__(client, parent.resource, namespace=parent.namespace if scope is None else scope,
                         label_selector=label_selector or parent.label_selector,
                         field_selector=parent.field_selector, cluster=parent.cluster)
        self.parent = parent
        self.scope = scope
        self._selector = labels.parse(label_selector) if label_selector else None
        self._fanout = fanout
        self._attached = False

    def start(self) -> None:
        if self._attached:
            return
        self._attached = True
        self._fanout.attach(self)
        if self.parent.cache.synced.is_set():
            self._load()
        else:
            self._tasks.append(asyncio.create_task(self._await_parent(), name=f"informer {self.cluster}/"
                                                   f"{self.resource} in {self.namespace}"))

    @property
    def running(self) -> bool:
        return self._attached

    def cancel(self) -> list[asyncio.Task[None]]:
        if self._attached:
            self._attached = False
            self._fanout.detach(self)
        return super().cancel()

    async def _await_parent(self) -> None:
        await self.parent.cache.synced.wait()
        self._load()

    def _load(self) -> None:
        """The parent's objects of this namespace, as a list would give them (events for what changed)."""
        selector = self.label_selector if self._selector is not None else None
        self._replace(self.parent.cache.list(self.scope, selector), self.parent.cache.resource_version)

    def deliver(self, event: Event) -> None:
        """An event of the parent in this namespace."""
        if event.type == RESYNC:
            if self.cache.synced.is_set():
                self._dispatch(event)
            return
        selected = self._selector is None or self._selector.matches((event.obj.get("metadata") or {}).get("labels"))
        if event.type == DELETED or not selected:  # gone, or no longer selected: gone from this view
            gone = self.cache.remove(key_of(event.obj))
            self.cache.resource_version = self.parent.cache.resource_version
            if gone is not None:
                self._dispatch(Event(DELETED, event.obj if event.type == DELETED else gone))
            return
        old = self.cache.put(event.obj)
        self.cache.resource_version = self.parent.cache.resource_version
        self._dispatch(Event(ADDED, event.obj) if old is None else Event(event.type, event.obj, old))


class _Fanout:
    """The one handler on a parent informer: routes each event to the children of its namespace (and to those of
    every namespace)."""

    def __init__(self, parent: Informer) -> None:
        self.parent = parent
        self.children: dict[str | None, list[ChildInformer]] = {}
        self._handling = False

    def attach(self, child: ChildInformer) -> None:
        self.children.setdefault(child.scope, []).append(child)
        if not self._handling:
            self._handling = True
            self.parent.add_handler(self._handle)

    def detach(self, child: ChildInformer) -> None:
        children = self.children.get(child.scope, [])
        if child in children:
            children.remove(child)
        if not children:
            self.children.pop(child.scope, None)

    def _handle(self, event: Event) -> None:
        namespace = str((event.obj.get("metadata") or {}).get("namespace") or "")
        for child in [*self.children.get(namespace, ()), *self.children.get(None, ())]:
            child.deliver(event)


class _Fanouts:
    def __init__(self) -> None:
        self._by_parent: dict[Informer, _Fanout] = {}  # by identity: a parent made again gets its own

    def child(self, client: ClusterClient, parent: Informer, scope: str | None,
              label_selector: str | None = None) -> ChildInformer:
        fanout = self._by_parent.get(parent)
        if fanout is None:
            fanout = self._by_parent[parent] = _Fanout(parent)
        return ChildInformer(client, parent, scope, fanout, label_selector)


class SharedReads:
    """Serves views of `parent`'s server from `parent`'s informers (one per kind, shared by every view).

    `source(may_watch)` is a view's InformerSource: `may_watch(resource, namespace)` says what the view's own
    identity may list and watch; those views are served from `parent` (from its informer of that namespace when
    `common` names it, as every view reads the same one, else from its informer of all namespaces)."""

    def __init__(self, parent: Callable[[], Informers], common: Collection[str] = ()) -> None:
        self._parent = parent
        self.common = frozenset(common)
        self._fanouts = _Fanouts()

    def source(self, may_watch: Callable[[Resource, str], bool]) -> InformerSource:
        def serve(client: ClusterClient, resource: Resource, namespace: str | None, label_selector: str | None,
                  field_selector: str | None) -> Informer | None:
            if namespace is None or label_selector or field_selector or not may_watch(resource, namespace):
                return None
            try:
                parent = self._parent().informer(resource, namespace if namespace in self.common else None)
            except RuntimeError:  # the parent was disengaged (the fleet is stopping): the view reads for itself
                return None
            return self._fanouts.child(client, parent, namespace)

        return serve


class Mirror:
    """Serves every view of a cluster from the same view of `parent` (a Cluster engaged with the same client); a
    label-selected view of a kind in `widens` from `parent`'s view of all of that kind."""

    def __init__(self, parent: Informers, widens: Collection[Resource] = ()) -> None:
        self.parent = parent
        self.widens = frozenset(widens)
        self._fanouts = _Fanouts()

    def __call__(self, client: ClusterClient, resource: Resource, namespace: str | None, label_selector: str | None,
                 field_selector: str | None) -> Informer | None:
        widen = bool(label_selector) and not field_selector and resource in self.widens
        try:
            parent = self.parent.informer(resource, None if widen else namespace,
                                          None if widen else label_selector, field_selector)
        except RuntimeError:  # the parent was stopped: the cluster reads for itself
            return None
        if widen:
            return self._fanouts.child(client, parent, namespace, label_selector)
        return self._fanouts.child(client, parent, None)
