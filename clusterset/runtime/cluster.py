"""One engaged cluster: its client and its shared informers.

Informers are shared per (resource, namespace, label selector, field selector): every controller
and every `cache()` call asking for the same view of a cluster uses one list/watch and one cache.
A cluster engaged with an informer source (`shared.SharedReads`) takes the views that source serves from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from clusterset.api import labels
from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.runtime.cache import Cache
from clusterset.runtime.informer import Informer
from clusterset.runtime.metrics import Metrics
from clusterset.runtime.shared import InformerSource

InformerKey = tuple[Resource, str | None, str | None, str | None]


class Cluster:
    """A cluster a Manager runs against: `name`, `client` for writes, `cache()` for reads."""

    def __init__(self, name: str, client: ClusterClient, *, resync_period: float | None = None,
                 metrics: Metrics | None = None, informers: InformerSource | None = None) -> None:
        self.name = name
        self.client = client
        self._source = informers
        self.resync_period = resync_period
        self._metrics = metrics
        self._informers: dict[InformerKey, Informer] = {}
        self._on_demand: set[InformerKey] = set()
        # `informer()`'s own arguments → the awaited informer they name: a reconciler asks for its caches every time
        self._asked: dict[tuple[Resource, str | None, str | None, str | None], Informer] = {}
        # every awaited informer has loaded; a cache never unloads, so this changes only when one is added
        self._all_synced = False
        self._stopped = False

    def informer(self, resource: Resource, namespace: str | None = None,
                 label_selector: str | Mapping[str, str] | None = None, field_selector: str | None = None,
                 *, on_demand: bool = False) -> Informer:
        """The shared, started informer for this view of `resource` (created on first use).

        `on_demand`: started by a reconciler for what it meets (e.g. the kinds of objects it applied), which waits
        for its cache itself; such a view does not count in `synced`/`wait_synced` (unless also asked for without
        it), so one that cannot load (its resource no longer served) holds up no other reader of the cluster."""
        if self._stopped:
            raise RuntimeError(f"cluster {self.name!r} was disengaged; its caches are gone")
        asked = (resource, namespace, label_selector, field_selector) \
            if not on_demand and (label_selector is None or isinstance(label_selector, str)) else None
        known = self._asked.get(asked) if asked is not None else None
        if known is not None:
            return known
        if not resource.namespaced:
            namespace = None
        selector = labels.to_string(label_selector)
        key = (resource, namespace or None, selector, field_selector or None)
        informer = self._informers.get(key)
        if informer is None:
            labels.parse(selector)  # a malformed selector fails here, not in a background task
        if not on_demand:
            if informer is None or key in self._on_demand:
                self._all_synced = False  # one more cache to wait for
            self._on_demand.discard(key)
        elif informer is None:
            self._on_demand.add(key)
        if informer is None and self._source is not None:
            informer = self._source(self.client, resource, namespace or None, selector, field_selector or None)
            if informer is not None:
                self._informers[key] = informer
                informer.start()
        if informer is None:
            informer = Informer(
                self.client, resource, namespace=namespace or None, label_selector=selector,
                field_selector=field_selector or None, cluster=self.name, resync_period=self.resync_period,
                metrics=self._metrics.informer(self.name, str(resource)) if self._metrics else None,
            )
            self._informers[key] = informer
            informer.start()
        if asked is not None:
            self._asked[asked] = informer
        return informer

    def cache(self, resource: Resource, namespace: str | None = None,
              label_selector: str | Mapping[str, str] | None = None, field_selector: str | None = None) -> Cache:
        """The cache of this view of `resource`; it fills in the background (`await cache.wait_synced()`)."""
        return self.informer(resource, namespace, label_selector, field_selector).cache

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def _awaited(self) -> list[Informer]:
        return [i for key, i in self._informers.items() if key not in self._on_demand]

    @property
    def synced(self) -> bool:
        """Asked before every reconcile: answered from a flag once every awaited cache has loaded (a hub view of
        hundreds of members has hundreds of informers)."""
        if not self._all_synced:
            self._all_synced = all(i.cache.synced.is_set() for i in self._awaited())
        return self._all_synced

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Waits until every informer started so far (but the on-demand ones) has loaded its first list."""
        await asyncio.wait_for(asyncio.gather(*(i.cache.synced.wait() for i in self._awaited())), timeout)

    async def stop(self) -> None:
        """Stops every informer (cancelling its watch)."""
        await asyncio.gather(*self.cancel(), return_exceptions=True)

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancels every informer without waiting (their tasks are returned): for a cluster removed from under them,
        which they must not list again before a stop could run."""
        self._stopped = True
        informers, self._informers = list(self._informers.values()), {}
        self._asked.clear()
        self._on_demand.clear()
        return [task for informer in informers for task in informer.cancel()]

    def __repr__(self) -> str:
        return f"Cluster({self.name!r})"
