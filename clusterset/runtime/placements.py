"""PlacementDecisionProvider: engages exactly the clusters a placement decided (and whose profiles are healthy),
so a controller runs on "the clusters this placement chose".

It follows the PlacementDecision consumer contract (KEP-5313): every slice labelled
`multicluster.x-k8s.io/decision-key=<placement>` in the placement's namespace is joined (ordered by
`decision-index`, then name), each `clusterProfileRef` without a namespace takes the slice's, and the set is
diffed by (namespace, name), so a cluster moving from one slice to another is neither disengaged nor engaged
again. Each decided ClusterProfile is reached through its access providers exactly as ClusterProfileProvider
does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from clusterset.api import objects
from clusterset.api.placement import DECISION_INDEX_LABEL, DECISION_KEY_LABEL, PLACEMENT_DECISIONS
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.client import ClusterClient
from clusterset.runtime.cache import Obj, ObjectKey, key_of
from clusterset.runtime.informer import Event, Informer
from clusterset.runtime.logs import bind
from clusterset.runtime.manager import ClusterSink
from clusterset.runtime.providers import AccessFunction, ProfileClusters, process
from clusterset.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)


def decided_clusters(slices: Iterable[Obj]) -> list[ObjectKey]:
    """The ClusterProfiles a decision's slices name, each once: slices in `decision-index` order (then by name),
    references without a namespace in their slice's namespace."""
    def order(s: Obj) -> tuple[int, str]:
        index = objects.labels(s).get(DECISION_INDEX_LABEL, "")
        return (int(index) if index.isdigit() else 1 << 62, str(objects.meta(s).get("name")))

    out: dict[ObjectKey, None] = {}
    for s in sorted(slices, key=order):
        for decision in s.get("decisions") or []:
            ref: Any = (decision or {}).get("clusterProfileRef") if isinstance(decision, dict) else None
            if isinstance(ref, dict) and ref.get("name"):
                out[ObjectKey(str(ref.get("namespace") or objects.meta(s).get("namespace") or ""),
                              str(ref["name"]))] = None
    return list(out)


class PlacementDecisionProvider:
    """Engages the clusters of the placement `placement` (its decision-key) in `namespace` on the hub `hub`.

    `cluster_name(profile)` names an engaged cluster (default: the profile's name; give `<namespace>/<name>` if
    a decision names profiles of several namespaces that share names). `provider_file` and `client_for` are as
    ClusterProfileProvider's. `decided` is the current decision (profile keys, in the contract's order)."""

    def __init__(
        self,
        hub: ClusterClient,
        namespace: str,
        placement: str,
        *,
        provider_file: str | None = None,
        cluster_name: Callable[[Obj], str] | None = None,
        client_for: AccessFunction | None = None,
    ) -> None:
        self.hub = hub
        self.namespace = namespace
        self.placement = placement
        self.provider_file = provider_file
        self.cluster_name = cluster_name or (lambda p: str(p["metadata"]["name"]))
        self.client_for = client_for
        self.decided: list[ObjectKey] = []
        self.clusters = ProfileClusters(provider_file, client_for)
        self._log = bind(log, hub=getattr(hub, "server", None), placement=f"{namespace}/{placement}")

    async def run(self, sink: ClusterSink) -> None:
        self.decided, self.clusters = [], ProfileClusters(self.provider_file, self.client_for)
        decisions = Informer(self.hub, PLACEMENT_DECISIONS, namespace=self.namespace,
                             label_selector=f"{DECISION_KEY_LABEL}={self.placement}", cluster="hub")
        profiles = Informer(self.hub, CLUSTER_PROFILES, cluster="hub")
        queue: WorkQueue[ObjectKey] = WorkQueue()

        wanted: set[ObjectKey] = set()

        def on_decision(_event: Event) -> None:
            nonlocal wanted
            self.decided = decided_clusters(decisions.cache.list())
            before, wanted = wanted, set(self.decided)
            for key in before ^ wanted:
                queue.add(key)

        def on_profile(event: Event) -> None:
            queue.add(key_of(event.obj))

        async def handle(key: ObjectKey) -> None:
            profile = profiles.cache.get(key) if key in wanted else None
            await self.clusters.sync(sink, key, profile, self.cluster_name(profile) if profile else "")

        def warn(key: ObjectKey, exc: Exception, retries: int) -> None:
            self._log.warning("cannot engage a decided cluster; retrying", profile=str(key), error=repr(exc),
                              retries=retries)

        decisions.add_handler(on_decision)
        profiles.add_handler(on_profile)
        decisions.start()
        profiles.start()
        try:
            await process(queue, handle, warn)
        finally:
            queue.shut_down()
            await decisions.stop()
            await profiles.stop()
