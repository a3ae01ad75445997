"""The StatefulSet controller: stable, ordered pods `<name>-<ordinal>`.

Each pod gets `spec.hostname` = its name, `spec.subdomain` = `spec.serviceName`, the labels
`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
`controller-revision-hash` (`<name>-<hash of the template>`), a volume per volumeClaimTemplate
(claim `<template>-<pod>`), and a controller ownerReference. OrderedReady creates ordinal i+1 only
once ordinal i is Running and Ready and scales down from the highest ordinal, one at a time;
Parallel creates and deletes all at once. A RollingUpdate replaces pods of an old revision from
the highest ordinal down to `partition`, one at a time, each once the previous is Ready; OnDelete
leaves them. Failed pods are deleted and recreated. `spec.ordinals.start` is honoured.

Each template is recorded as a ControllerRevision (`history.py`), as upstream, so `kubectl rollout
history|undo statefulset` work; the revision name is the pods' `controller-revision-hash`.

Not simulated: PersistentVolumeClaims. A pod recreated below the partition gets the current
template, not the old revision's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import labels, meta, spec, status
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.history import HASH_LABEL, record, truncate
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    CONTROLLER_REVISIONS,
    PODS,
    STATEFULSETS,
    Orphans,
    available_in,
    claim,
    deep_copy,
    guarded,
    int_or,
    is_running_and_ready,
    owner_keys,
    pod_from_template,
    safe_keys,
    selector_of,
    template_hash,
    wall,
)
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = HASH_LABEL  # the pods carry the revision name


def ordinal_of(sts_name: str, pod: Obj) -> int | None:
    match = re.fullmatch(re.escape(sts_name) + r"-(\d+)", str(meta(pod).get("name", "")))
    return int(match.group(1)) if match else None


def update_revision(sts: Obj) -> str:
    collision = int_or(status(sts).get("collisionCount"), 0)
    return f"{meta(sts)['name']}-{template_hash(spec(sts).get('template') or {}, collision or None)}"


def terminating(pod: Obj) -> bool:
    return bool(meta(pod).get("deletionTimestamp"))


class StatefulSetController:
    name = "statefulset"
    watches: tuple[str, ...] = (STATEFULSETS, PODS, CONTROLLER_REVISIONS)

    def __init__(self) -> None:
        self._orphans = Orphans()
        self._orphan_revisions = Orphans()

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == STATEFULSETS:
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        orphans = self._orphans if event.resource == PODS else self._orphan_revisions
        yield from owner_keys(cluster, event, orphans, "StatefulSet", STATEFULSETS)

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        sts = api.get(STATEFULSETS, namespace, name)
        if sts is None:
            return None
        selector = selector_of(sts)
        if selector is None:
            return None
        pods = await claim(api, PODS, sts, selector, self._orphans)
        if not meta(sts).get("deletionTimestamp"):
            revisions = await claim(api, CONTROLLER_REVISIONS, sts, selector, self._orphan_revisions)
            recorded = await record(api, STATEFULSETS, sts, revisions)
            if recorded is None:
                return CONFLICT_RETRY
            await self._manage(api, sts, pods)
            pods = await claim(api, PODS, sts, selector, self._orphans)
            live = {update_revision(sts), str(status(sts).get("currentRevision", ""))}
            await truncate(api, sts, recorded[1], live | {labels(p).get(REVISION_LABEL, "") for p in pods})
        sts = api.get(STATEFULSETS, namespace, name)
        if sts is None:
            return None
        desired, again = self._status(sts, pods)
        if desired != status(sts):
            updated = deep_copy(sts)
            updated["status"] = desired
            if await api.update(STATEFULSETS, updated, subresource="status") is None:
                return CONFLICT_RETRY
        return again

    def _new_pod(self, sts: Obj, ordinal: int, revision: str) -> Obj:
        name = f"{meta(sts)['name']}-{ordinal}"
        pod = pod_from_template(spec(sts).get("template") or {}, str(meta(sts)["namespace"]), sts, {
            POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision})
        pod["metadata"]["name"] = name
        pod_spec = pod["spec"]
        pod_spec["hostname"] = name
        if spec(sts).get("serviceName"):
            pod_spec["subdomain"] = spec(sts)["serviceName"]
        claims = [t for t in spec(sts).get("volumeClaimTemplates") or [] if isinstance(t, dict)]
        if claims:
            names = {str((t.get("metadata") or {}).get("name", "")) for t in claims}
            volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in names]
            for claim_name in sorted(names):
                volumes.append({"name": claim_name, "persistentVolumeClaim": {"claimName": f"{claim_name}-{name}"}})
            pod_spec["volumes"] = volumes
        return pod

    async def _manage(self, api: ClusterAPI, sts: Obj, pods: list[Obj]) -> None:
        """One step of the ordered (or parallel) scale and update algorithm."""
        name = str(meta(sts)["name"])
        namespace = str(meta(sts)["namespace"])
        replicas = int_or(spec(sts).get("replicas"), 1)
        start = int_or((spec(sts).get("ordinals") or {}).get("start"), 0)
        ordered = spec(sts).get("podManagementPolicy", "OrderedReady") != "Parallel"
        revision = update_revision(sts)
        members: dict[int, Obj] = {}
        condemned: list[tuple[int, Obj]] = []
        for pod in pods:
            ordinal = ordinal_of(name, pod)
            if ordinal is None:
                continue
            if start <= ordinal < start + replicas:
                members[ordinal] = pod
            else:
                condemned.append((ordinal, pod))

        async def delete(pod: Obj) -> None:
            await api.delete(PODS, namespace, meta(pod)["name"], preconditions={"uid": meta(pod)["uid"]})

        creates: list[Obj] = []
        for ordinal in range(start, start + replicas):
            member = members.get(ordinal)
            if member is None:
                if ordered:
                    await api.create(PODS, self._new_pod(sts, ordinal, revision))
                    return
                creates.append(self._new_pod(sts, ordinal, revision))
                continue
            if status(member).get("phase") in ("Failed", "Succeeded") and not terminating(member):
                await delete(member)  # recreated once gone
                if ordered:
                    return
                continue
            if ordered and (terminating(member) or not is_running_and_ready(member)):
                return
        if creates:
            await asyncio.gather(*(api.create(PODS, pod) for pod in creates))
            return
        if ordered and any(not is_running_and_ready(p) for p in members.values()):
            return
        for _ordinal, pod in sorted(condemned, key=lambda c: -c[0]):
            if terminating(pod):
                if ordered:
                    return
                continue
            await delete(pod)
            if ordered:
                return
        if condemned:
            return
        strategy = spec(sts).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int_or((strategy.get("rollingUpdate") or {}).get("partition"), 0)
        for ordinal in range(start + replicas - 1, max(start, partition) - 1, -1):
            target = members.get(ordinal)
            if target is None:
                return
            if labels(target).get(REVISION_LABEL) != revision and not terminating(target):
                await delete(target)
                return
            if not is_running_and_ready(target):
                return

    def _status(self, sts: Obj, pods: list[Obj]) -> tuple[dict[str, Any], float | None]:
        revision = update_revision(sts)
        current_revision = status(sts).get("currentRevision") or revision
        min_ready = int_or(spec(sts).get("minReadySeconds"), 0)
        now = wall()
        ready = available = current = updated = 0
        again: float | None = None
        for pod in pods:
            if is_running_and_ready(pod):
                ready += 1
                wait = available_in(pod, min_ready, now)
                if wait == 0:
                    available += 1
                elif wait is not None:
                    again = wait if again is None else min(again, wait)
            if not terminating(pod):
                pod_revision = labels(pod).get(REVISION_LABEL)
                current += pod_revision == current_revision
                updated += pod_revision == revision
        out: dict[str, Any] = {
            "observedGeneration": int_or(meta(sts).get("generation"), 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": int_or(status(sts).get("collisionCount"), 0),
            "availableReplicas": available,
        }
        rolling = (spec(sts).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and updated == len(pods) and ready == len(pods):
            out["currentRevision"] = revision
            out["currentReplicas"] = updated
        out = {k: v for k, v in out.items() if v or k in ("replicas", "availableReplicas", "collisionCount",
                                                          "observedGeneration")}
        if status(sts).get("conditions"):
            out["conditions"] = status(sts)["conditions"]
        return out, again
