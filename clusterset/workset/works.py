"""What a WorkSet wants, as pure functions: each cluster's Work, which Works a rollout may update now, and the
WorkSet's status summed up from its Works."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterset.api import objects
from clusterset.api.inventory import CLUSTER_MANAGER_LABEL, MANAGER_NAME
from clusterset.api.placement import APPLIED, AVAILABLE, DEGRADED, PLACEMENT_KEY_LABEL, WORK_CLEANUP_FINALIZER
from clusterset.workset.overrides import ClusterFacts, cluster_manifests

Obj = dict[str, Any]

WORKSET_NAMESPACE_LABEL = "clusterset.io/workset-namespace"
WORKSET_LABEL = "clusterset.io/workset"
TEMPLATE_HASH_ANNOTATION = "clusterset.io/template-hash"
FINALIZER = "clusterset.io/workset-cleanup"
MAX_FAILING = 20  # clusters named in status.summary.failing; failingCount has them all


def work_name(namespace: str, name: str) -> str:
    """A WorkSet's Work in each member namespace: `<namespace>.<name>`, two DNS labels, so unique and valid."""
    return f"{namespace}.{name}"


def work_labels(workset: Obj) -> dict[str, str]:
    meta = objects.meta(workset)
    return {WORKSET_NAMESPACE_LABEL: str(meta.get("namespace")), WORKSET_LABEL: str(meta.get("name")),
            PLACEMENT_KEY_LABEL: str((objects.spec(workset).get("placementRef") or {}).get("name"))}


def template_hash(spec: Obj) -> str:
    """The version of a Work's spec: equal specs, equal hashes, whatever the key order."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def desired_work(workset: Obj, cluster: ClusterFacts, member_namespace: str) -> Obj:
    """The Work `cluster` should have (raises OverrideError when its copy of the manifests cannot be made).

    A cluster this fleet manages (its profile's `x-k8s.io/cluster-manager` is ours) runs our agent, so its Work is
    made with that agent's cleanup finalizer already in place, which the agent would otherwise add in a write of its
    own before applying anything: one write fewer per member. What the finalizer means is unchanged (a Work of a
    member that leaves loses it, `registration.end_works`). Another manager's cluster may run another Work agent,
    which would never remove our finalizer, so its Work is made without."""
    meta, spec = objects.meta(workset), objects.spec(workset)
    work_spec: Obj = {"workload": {"manifests": cluster_manifests(list(spec.get("manifests") or []),
                                                                  list(spec.get("overrides") or []), cluster)}}
    for copied in ("manifestConfigs", "deleteOption"):
        if spec.get(copied) is not None:
            work_spec[copied] = spec[copied]
    work_meta: Obj = {"name": work_name(str(meta.get("namespace")), str(meta.get("name"))),
                      "namespace": member_namespace, "labels": work_labels(workset),
                      "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash(work_spec)}}
    if cluster.labels.get(CLUSTER_MANAGER_LABEL) == MANAGER_NAME:
        work_meta["finalizers"] = [WORK_CLEANUP_FINALIZER]
    return {"metadata": work_meta, "spec": work_spec}


def version_of(work: Obj | None) -> str | None:
    return objects.annotations_of(work).get(TEMPLATE_HASH_ANNOTATION) if work is not None else None


def current_condition(work: Obj, type_: str) -> str | None:
    """The status of a Work condition that speaks of the Work's current generation (None: no such word yet)."""
    cond = objects.condition(objects.status(work).get("conditions"), type_)
    if cond is None:
        return None
    observed = cond.get("observedGeneration")
    if observed is not None and observed != objects.meta(work).get("generation"):
        return None
    return str(cond.get("status"))


# ---------------------------------------------------------------------- rollout
def max_unavailable(value: Any, selected: int) -> tuple[int, str | None]:
    """`spec.rollout.maxUnavailable` as a number of clusters (at least 1), and what is wrong with it, if anything
    (then 1: the careful choice)."""
    everyone = max(1, selected)
    if value is None:
        return everyone, None
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, None) if value >= 1 else (1, f"maxUnavailable {value} must be at least 1")
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        percent = int(value[:-1])
        if 0 < percent <= 100:
            return max(1, math.floor(selected * percent / 100)), None
    return 1, f"maxUnavailable {value!r} must be a positive integer or a percentage such as 25%"


def rollout(wanted: Mapping[str, str], works: Mapping[str, Obj], budget: int) -> set[str]:
    """The clusters whose Work may be written now: every cluster without a Work (new ones never wait), every
    Work already at its wanted version (drift corrected), and outdated ones in name order while fewer than
    `budget` Works at their new version are not yet Available."""
    write = {c for c in wanted if c not in works or version_of(works[c]) == wanted[c]}
    unavailable = sum(1 for c, w in works.items() if c in wanted and version_of(w) == wanted[c]
                      and current_condition(w, AVAILABLE) != "True")
    outdated = sorted(c for c in wanted if c in works and version_of(works[c]) != wanted[c])
    return write | set(outdated[: max(0, budget - unavailable)])


# ---------------------------------------------------------------------- status
@dataclass(frozen=True)
class Failure:
    cluster: str
    reason: str
    message: str


def work_failure(cluster: str, work: Obj) -> Failure | None:
    """What a Work's own conditions say is wrong with it: not applied, or degraded."""
    conditions = objects.status(work).get("conditions")
    applied = objects.condition(conditions, APPLIED)
    if applied is not None and current_condition(work, APPLIED) == "False":
        return Failure(cluster, str(applied.get("reason") or "ApplyFailed"), str(applied.get("message") or ""))
    degraded = objects.condition(conditions, DEGRADED)
    if degraded is not None and current_condition(work, DEGRADED) == "True":
        return Failure(cluster, str(degraded.get("reason") or "Degraded"), str(degraded.get("message") or ""))
    return None


def summary(selected: Iterable[str], works: Mapping[str, Obj], failures: list[Failure]) -> Obj:
    chosen = list(selected)
    mine = [works[c] for c in chosen if c in works]
    ordered = sorted(failures, key=lambda f: f.cluster)
    return {
        "selected": len(chosen),
        "applied": sum(1 for w in mine if current_condition(w, APPLIED) == "True"),
        "available": sum(1 for w in mine if current_condition(w, AVAILABLE) == "True"),
        "degraded": sum(1 for w in mine if current_condition(w, DEGRADED) == "True"),
        "failing": [{"cluster": f.cluster, "reason": f.reason, "message": f.message[:1024]}
                    for f in ordered[:MAX_FAILING]],
        "failingCount": len(ordered),
    }
