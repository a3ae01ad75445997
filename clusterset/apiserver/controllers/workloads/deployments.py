"""The Deployment controller: ReplicaSets per pod template, rolling updates, rollout status.

Follows upstream's sync loop closely enough that `kubectl rollout status|history|undo|pause|resume`,
`kubectl wait --for=condition=Available` and `kubectl scale` behave as on a real cluster:

- the ReplicaSet of the current template is `<deployment>-<pod-template-hash>`, with the hash in its
  labels, selector and pod template, a `deployment.kubernetes.io/revision` one above the old ones
  (a rollback to an old template reuses its ReplicaSet under a new revision), and the
  desired/max-replicas annotations; the Deployment carries the revision too;
- RollingUpdate scales the new ReplicaSet up within `maxSurge` and old ones down within
  `maxUnavailable` (unhealthy old replicas first, oldest ReplicaSet first); Recreate scales old
  ones to zero, waits for their pods to go, then scales the new one up;
- old ReplicaSets at zero are kept up to `revisionHistoryLimit` once a rollout completes;
- status: replicas, updated, ready, available and unavailable counts, observedGeneration and the
  Available (MinimumReplicasAvailable) and Progressing (NewReplicaSetCreated, FoundNewReplicaSet,
  ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused/Resumed)
  conditions with upstream's messages and update/transition times.

Not simulated: proportional scaling of several active ReplicaSets when a Deployment is scaled in
the middle of a rollout (the rollout simply continues to the new size).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import annotations_of, meta, spec, status
from clusterset.api.objects import condition as find_condition
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Orphans,
    claim,
    compact,
    deep_copy,
    guarded,
    int_or,
    is_terminal,
    owned,
    owner_key,
    owner_keys,
    owner_ref,
    parse_ts,
    safe_keys,
    scaled_value,
    selector_of,
    set_condition,
    template_hash,
    wall,
)
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}


class _Retry(Exception):
    """A write lost an optimistic-concurrency race: reconcile again from the store."""


def replicas_of(obj: Obj) -> int:
    return int_or(spec(obj).get("replicas"), 1)


def revision_of(rs: Obj) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def is_rolling(d: Obj) -> bool:
    return bool((spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas (ResolveFenceposts)."""
    if not is_rolling(d):
        return 0, 0
    rolling = (spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    replicas = replicas_of(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas_of(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas_of(d))


def without_hash(template: Any) -> Any:
    """A pod template as compared across Deployment and ReplicaSets (EqualIgnoreHash)."""
    if not isinstance(template, dict):
        return template
    copied = compact(template)
    tlabels = (copied.get("metadata") or {}).get("labels")
    if isinstance(tlabels, dict):
        tlabels.pop(HASH_LABEL, None)
    return copied


def condition(ctype: str, value: str, reason: str, message: str) -> dict[str, Any]:
    now = now_rfc3339()
    return {"type": ctype, "status": value, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason,
            "message": message}


def _by_age(rss: list[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda r: (parse_ts(meta(r).get("creationTimestamp")) or 0.0, meta(r)["name"]))


class DeploymentController:
    name = "deployment"
    watches: tuple[str, ...] = (DEPLOYMENTS, REPLICASETS, PODS)

    def __init__(self) -> None:
        self._orphans = Orphans()

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == DEPLOYMENTS:
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        if event.resource == PODS:  # Recreate waits for the old pods to be gone
            rs_key = owner_key(obj, "ReplicaSet", "apps/v1") if event.type == "DELETED" else None
            rs = cluster.store.get(REPLICASETS, *rs_key) if rs_key else None
            d_key = owner_key(rs.obj, "Deployment", "apps/v1") if rs else None
            d = cluster.store.get(DEPLOYMENTS, *d_key) if d_key else None
            if d_key and d and not is_rolling(d.obj):
                yield d_key
            return
        yield from owner_keys(cluster, event, self._orphans, "Deployment", DEPLOYMENTS)

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        d = api.get(DEPLOYMENTS, namespace, name)
        if d is None or meta(d).get("deletionTimestamp"):
            return None
        selector = selector_of(d)
        if selector is None:
            return None
        try:
            return await self._sync(api, d, await claim(api, REPLICASETS, d, selector, self._orphans))
        except _Retry:
            return CONFLICT_RETRY

    # ------------------------------------------------------------------ the sync loop
    async def _sync(self, api: ClusterAPI, d: Obj, rss: list[Obj]) -> float | None:
        template = spec(d).get("template") or {}
        wanted = without_hash(template)
        new_rs = next((rs for rs in _by_age(rss) if without_hash(spec(rs).get("template")) == wanted), None)
        olds = [rs for rs in rss if rs is not new_rs]
        conditions = list(status(d).get("conditions") or [])
        collision = status(d).get("collisionCount")
        paused = spec(d).get("paused") is True
        progressing = find_condition(conditions, "Progressing")
        if paused and (progressing or {}).get("reason") != "DeploymentPaused":
            conditions = set_condition(conditions, condition("Progressing", "Unknown", "DeploymentPaused",
                                                             "Deployment is paused"))
        elif not paused and (progressing or {}).get("reason") == "DeploymentPaused":
            conditions = set_condition(conditions, condition("Progressing", "Unknown", "DeploymentResumed",
                                                             "Deployment is resumed"))

        if paused:
            if new_rs is not None and not any(replicas_of(rs) for rs in olds) and \
                    replicas_of(new_rs) != replicas_of(d):
                new_rs = await self._scale(api, d, new_rs, replicas_of(d))
            return await self._write_status(api, d, new_rs, olds, conditions, collision, rollout=False)

        rolling = is_rolling(d)
        olds_gone = not any(replicas_of(rs) for rs in olds) and not any(self._old_running(api, rs) for rs in olds)
        if new_rs is None and (rolling or olds_gone):
            created, collision = await self._create_new(api, d, olds, collision)
            if created is None:
                return await self._write_status(api, d, None, olds, conditions, collision, rollout=False)
            new_rs = created
            conditions = set_condition(conditions, condition(
                "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{meta(new_rs)["name"]}"'))
        elif new_rs is not None:
            new_rs = await self._sync_new_annotations(api, d, new_rs, olds)
            if find_condition(conditions, "Progressing") is None and spec(d).get("progressDeadlineSeconds"):
                conditions = set_condition(conditions, condition(
                    "Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{meta(new_rs)["name"]}"'))
        if new_rs is not None:
            d = await self._sync_revision(api, d, new_rs)

        if rolling:
            assert new_rs is not None
            target = self._new_target(d, [new_rs, *olds], new_rs)
            if target > replicas_of(new_rs):
                new_rs = await self._scale(api, d, new_rs, target)
            else:
                if target < replicas_of(new_rs):
                    new_rs = await self._scale(api, d, new_rs, target)
                for rs, count in self._old_targets(d, [new_rs, *olds], olds, new_rs):
                    olds = [await self._scale(api, d, rs, count) if o is rs else o for o in olds]
        else:  # Recreate: every old pod goes before the new ones come
            for rs in olds:
                if replicas_of(rs):
                    olds = [await self._scale(api, d, rs, 0) if o is rs else o for o in olds]
            if olds_gone and new_rs is not None and replicas_of(new_rs) != replicas_of(d):
                new_rs = await self._scale(api, d, new_rs, replicas_of(d))
        return await self._write_status(api, d, new_rs, olds, conditions, collision, rollout=True)

    def _old_running(self, api: ClusterAPI, rs: Obj) -> bool:
        if int_or(status(rs).get("replicas"), 0) > 0:
            return True
        return any(not is_terminal(p) for p in owned(api, PODS, rs))

    def _new_target(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
        """reconcileNewReplicaSet: how many replicas the new ReplicaSet should have now."""
        replicas, current = replicas_of(d), replicas_of(new_rs)
        if current >= replicas:
            return replicas
        total = sum(replicas_of(rs) for rs in all_rss)
        allowed = replicas + fenceposts(d)[0]
        if total >= allowed:
            return current
        return current + min(allowed - total, replicas - current)

    def _old_targets(self, d: Obj, all_rss: list[Obj], olds: list[Obj], new_rs: Obj) -> list[tuple[Obj, int]]:
        """reconcileOldReplicaSets: unhealthy old replicas first, then down to minimum availability."""
        if not sum(replicas_of(rs) for rs in olds):
            return []
        planned = {id(rs): replicas_of(rs) for rs in olds}
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - int_or(status(new_rs).get("availableReplicas"), 0)
        budget = sum(replicas_of(rs) for rs in all_rss) - min_available - new_unavailable
        if budget <= 0:
            return []
        ordered = _by_age(olds)
        done = 0
        for rs in ordered:
            have, healthy = planned[id(rs)], int_or(status(rs).get("availableReplicas"), 0)
            if done >= budget:
                break
            if have == 0 or have <= healthy:
                continue
            down = min(budget - done, have - healthy)
            planned[id(rs)] = have - down
            done += down
        available = sum(int_or(status(rs).get("availableReplicas"), 0) for rs in all_rss)
        if available > min_available:
            todo, done = available - min_available, 0
            for rs in ordered:
                if done >= todo:
                    break
                if planned[id(rs)] == 0:
                    continue
                down = min(planned[id(rs)], todo - done)
                planned[id(rs)] -= down
                done += down
        return [(rs, planned[id(rs)]) for rs in ordered if planned[id(rs)] != replicas_of(rs)]

    # ------------------------------------------------------------------ writes
    def _rs_annotations(self, d: Obj, current: dict[str, str]) -> dict[str, str]:
        """The Deployment's annotations copied to its ReplicaSet (upstream skips its own)."""
        out = {k: v for k, v in current.items() if k in _NOT_COPIED}
        out.update({k: v for k, v in annotations_of(d).items() if k not in _NOT_COPIED})
        return out

    async def _create_new(self, api: ClusterAPI, d: Obj, olds: list[Obj], collision: Any
                          ) -> tuple[Obj | None, Any]:
        template = deep_copy(spec(d).get("template") or {})
        pod_hash = template_hash(without_hash(template), int_or(collision, 0) or None)
        name = f"{meta(d)['name']}-{pod_hash}"
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
        selector = deep_copy(spec(d).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        revision = max((revision_of(rs) for rs in olds), default=0) + 1
        surge = fenceposts(d)[0]
        replicas = replicas_of(d)
        if is_rolling(d):
            total = sum(replicas_of(rs) for rs in olds)
            start = 0 if total >= replicas + surge else min(replicas + surge - total, replicas)
        else:
            start = replicas
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta(d)["namespace"],
                "labels": dict(tmeta["labels"]),
                "annotations": {**self._rs_annotations(d, {}), REVISION: str(revision),
                                DESIRED_REPLICAS: str(replicas), MAX_REPLICAS: str(replicas + surge)},
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {"replicas": start, "minReadySeconds": int_or(spec(d).get("minReadySeconds"), 0),
                     "selector": selector, "template": template},
        }
        created = await api.create(REPLICASETS, body)
        if created is not None:
            return created, collision
        existing = api.get(REPLICASETS, meta(d)["namespace"], name)
        if existing is None:
            return None, collision  # the namespace is going away
        ref = (existing.get("metadata") or {}).get("ownerReferences") or []
        mine = any(r.get("uid") == meta(d)["uid"] and r.get("controller") for r in ref)
        if mine and without_hash(spec(existing).get("template")) == without_hash(spec(d).get("template")):
            return existing, collision
        return None, int_or(collision, 0) + 1  # a hash collision: the next try hashes differently

    async def _sync_new_annotations(self, api: ClusterAPI, d: Obj, new_rs: Obj, olds: list[Obj]) -> Obj:
        """A found new ReplicaSet gets the next revision (a rollback), the Deployment's annotations and
        minReadySeconds."""
        current = annotations_of(new_rs)
        wanted = self._rs_annotations(d, current)
        revision = max((revision_of(rs) for rs in olds), default=0) + 1
        if revision_of(new_rs) < revision:
            if revision_of(new_rs) > 0:
                history = [h for h in current.get(REVISION_HISTORY, "").split(",") if h]
                wanted[REVISION_HISTORY] = ",".join([*history, str(revision_of(new_rs))])
            wanted[REVISION] = str(revision)
        min_ready = int_or(spec(d).get("minReadySeconds"), 0)
        if wanted == current and int_or(spec(new_rs).get("minReadySeconds"), 0) == min_ready:
            return new_rs
        updated = deep_copy(new_rs)
        updated["metadata"]["annotations"] = wanted
        updated["spec"]["minReadySeconds"] = min_ready
        stored = await api.update(REPLICASETS, updated)
        if stored is None:
            raise _Retry
        return stored

    async def _sync_revision(self, api: ClusterAPI, d: Obj, new_rs: Obj) -> Obj:
        revision = annotations_of(new_rs).get(REVISION)
        if not revision or annotations_of(d).get(REVISION) == revision:
            return d
        updated = deep_copy(d)
        updated["metadata"].setdefault("annotations", {})[REVISION] = revision
        stored = await api.update(DEPLOYMENTS, updated)
        if stored is None:
            raise _Retry
        return stored

    async def _scale(self, api: ClusterAPI, d: Obj, rs: Obj, replicas: int) -> Obj:
        wanted = {DESIRED_REPLICAS: str(replicas_of(d)), MAX_REPLICAS: str(replicas_of(d) + fenceposts(d)[0])}
        current = annotations_of(rs)
        if replicas_of(rs) == replicas and all(current.get(k) == v for k, v in wanted.items()):
            return rs
        updated = deep_copy(rs)
        updated["spec"]["replicas"] = replicas
        updated["metadata"]["annotations"] = {**current, **wanted}
        stored = await api.update(REPLICASETS, updated)
        if stored is None:
            raise _Retry
        return stored

    # ------------------------------------------------------------------ status
    async def _write_status(self, api: ClusterAPI, d: Obj, new_rs: Obj | None, olds: list[Obj],
                            conditions: list[dict[str, Any]], collision: Any, rollout: bool) -> float | None:
        all_rss = [*olds, *([new_rs] if new_rs is not None else [])]
        replicas = replicas_of(d)
        available = sum(int_or(status(rs).get("availableReplicas"), 0) for rs in all_rss)
        total_spec = sum(replicas_of(rs) for rs in all_rss)
        desired: dict[str, Any] = {
            "observedGeneration": int_or(meta(d).get("generation"), 1),
            "replicas": sum(int_or(status(rs).get("replicas"), 0) for rs in all_rss),
            "updatedReplicas": int_or(status(new_rs).get("replicas"), 0) if new_rs is not None else 0,
            "readyReplicas": sum(int_or(status(rs).get("readyReplicas"), 0) for rs in all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec - available),
        }
        desired = {k: v for k, v in desired.items() if v or k == "observedGeneration"}
        if collision is not None:
            desired["collisionCount"] = collision
        if available >= replicas - max_unavailable(d):
            conditions = set_condition(conditions, condition(
                "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."))
        else:
            conditions = set_condition(conditions, condition(
                "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."))
        again: float | None = None
        if rollout:
            conditions, again = self._rollout_conditions(d, desired, new_rs, conditions)
            if self._complete(d, desired):
                await self._cleanup(api, d, olds)
        # upstream order: Available before Progressing
        order = {"Available": 0, "Progressing": 1}
        desired["conditions"] = sorted(conditions, key=lambda c: order.get(str(c.get("type")), 2))
        if desired != status(d):
            updated = deep_copy(d)
            updated["status"] = desired
            if await api.update(DEPLOYMENTS, updated, subresource="status") is None:
                return CONFLICT_RETRY
        return again

    def _complete(self, d: Obj, new_status: dict[str, Any]) -> bool:
        replicas = replicas_of(d)
        return bool(new_status.get("updatedReplicas", 0) == replicas and new_status.get("replicas", 0) == replicas
                and new_status.get("availableReplicas", 0) == replicas
                and new_status.get("observedGeneration", 0) >= int_or(meta(d).get("generation"), 1))

    def _rollout_conditions(self, d: Obj, new_status: dict[str, Any], new_rs: Obj | None,
                            conditions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
        """syncRolloutStatus: the Progressing condition, and when the progress deadline will pass."""
        deadline = spec(d).get("progressDeadlineSeconds")
        if not isinstance(deadline, int) or isinstance(deadline, bool):
            return [c for c in conditions if c.get("type") != "Progressing"], None
        old_status = status(d)
        current = find_condition(list(old_status.get("conditions") or []), "Progressing")
        complete_before = (new_status.get("replicas", 0) == new_status.get("updatedReplicas", 0)
                           and current is not None and current.get("reason") == "NewReplicaSetAvailable")
        what = f'ReplicaSet "{meta(new_rs)["name"]}"' if new_rs is not None else f'Deployment "{meta(d)["name"]}"'
        if complete_before:
            return conditions, None
        old_old = int_or(old_status.get("replicas"), 0) - int_or(old_status.get("updatedReplicas"), 0)
        new_old = new_status.get("replicas", 0) - new_status.get("updatedReplicas", 0)
        progressed = (new_status.get("updatedReplicas", 0) > int_or(old_status.get("updatedReplicas"), 0)
                      or new_old < old_old
                      or new_status.get("readyReplicas", 0) > int_or(old_status.get("readyReplicas"), 0)
                      or new_status.get("availableReplicas", 0) > int_or(old_status.get("availableReplicas"), 0))
        progressing = find_condition(conditions, "Progressing")
        if self._complete(d, new_status):
            return set_condition(conditions, condition(
                "Progressing", "True", "NewReplicaSetAvailable", f"{what} has successfully progressed.")), None
        if progressed:
            made = condition("Progressing", "True", "ReplicaSetUpdated", f"{what} is progressing.")
            if progressing is not None and progressing.get("status") == "True":
                made["lastTransitionTime"] = progressing.get("lastTransitionTime")
            conditions = [*(c for c in conditions if c.get("type") != "Progressing"), made]
            return conditions, float(deadline) + 1
        if progressing is None or progressing.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
            return conditions, None
        since = parse_ts(progressing.get("lastUpdateTime")) or wall()
        left = since + deadline - wall()
        if left < 0:
            return set_condition(conditions, condition(
                "Progressing", "False", "ProgressDeadlineExceeded", f"{what} has timed out progressing.")), None
        return conditions, left + 1

    async def _cleanup(self, api: ClusterAPI, d: Obj, olds: list[Obj]) -> None:
        """Deletes the oldest unused ReplicaSets beyond revisionHistoryLimit."""
        limit = spec(d).get("revisionHistoryLimit")
        if not isinstance(limit, int) or isinstance(limit, bool):
            return
        cleanable = sorted((rs for rs in olds if not meta(rs).get("deletionTimestamp")),
                           key=lambda rs: (revision_of(rs), meta(rs)["name"]))
        for rs in cleanable[: max(0, len(cleanable) - limit)]:
            if int_or(status(rs).get("replicas"), 0) or replicas_of(rs) or \
                    int_or(meta(rs).get("generation"), 1) > int_or(status(rs).get("observedGeneration"), 0):
                continue
            await api.delete(REPLICASETS, meta(rs)["namespace"], meta(rs)["name"],
                             preconditions={"uid": meta(rs)["uid"]})
