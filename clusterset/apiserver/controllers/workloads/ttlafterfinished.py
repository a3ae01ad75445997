"""The TTL-after-finished controller: deletes a finished Job `ttlSecondsAfterFinished` seconds after it
finished (its Complete or Failed condition's lastTransitionTime), with background propagation and the Job's
uid as precondition, as upstream's (pkg/controller/ttlafterfinished). The wait is a requeue."""

from __future__ import annotations

from collections.abc import Iterable

from clusterset.api.objects import meta, spec
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.jobs import finished
from clusterset.apiserver.controllers.workloads.util import JOBS, guarded, int_or, parse_ts, safe_keys, wall
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event


class TTLAfterFinishedController:
    name = "ttl-after-finished"
    watches: tuple[str, ...] = (JOBS,)

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        job = event.entry.obj
        if event.type != "DELETED" and spec(job).get("ttlSecondsAfterFinished") is not None and finished(job):
            yield (str(meta(job).get("namespace", "")), str(meta(job)["name"]))

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        job = api.get(JOBS, *key)
        ttl = int_or(spec(job).get("ttlSecondsAfterFinished"), -1) if job is not None else -1
        done = finished(job) if job is not None else None
        if job is None or ttl < 0 or done is None or meta(job).get("deletionTimestamp"):
            return None
        expires = (parse_ts(done.get("lastTransitionTime")) or wall()) + ttl
        if wall() < expires:
            return expires - wall()
        await api.delete(JOBS, *key, propagationPolicy="Background", preconditions={"uid": meta(job)["uid"]})
        return None
