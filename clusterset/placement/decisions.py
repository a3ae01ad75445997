"""What the scheduler publishes, as pure functions: a Placement's PlacementDecision slices (KEP-5313) and its status.

Slices hold at most 100 decisions, sorted by cluster namespace/name (never by score, so that a score change alone
rewrites nothing); slice 0 always exists, empty when nothing is chosen, so that a consumer can tell "nothing" from
"not scheduled yet". Each is owned by its Placement (controller, blockOwnerDeletion): the garbage collector
deletes them with it.
"""

from __future__ import annotations

import json
from typing import Any

from clusterset.api.inventory import set_condition
from clusterset.api.placement import (
    CLUSTERSET_BINDINGS,
    DECISION_INDEX_LABEL,
    DECISION_KEY_LABEL,
    MAX_DECISIONS_PER_SLICE,
    PLACEMENT_DECISIONS,
    PLACEMENT_KEY_LABEL,
    PLACEMENTS,
    SATISFIED,
    SCHEDULER_NAME,
    decision_name,
)
from clusterset.placement.scheduler import Decision, Ref

Obj = dict[str, Any]
# the Satisfied condition's reasons
ALL_DECIDED, NOT_ALL_DECIDED, NO_CLUSTER_MATCHED = "AllDecided", "NotAllDecided", "NoClusterMatched"
NO_BINDING, NO_CLUSTER_SETS, MISCONFIGURED = "NoClusterSetBinding", "NoClusterSets", "Misconfigured"


def slices(placement: Obj, decisions: list[Decision]) -> list[Obj]:
    """The PlacementDecision objects of `decisions` (already ordered by namespace/name)."""
    meta = placement["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    owner = {"apiVersion": PLACEMENTS.api_version, "kind": PLACEMENTS.kind, "name": name, "uid": meta["uid"],
             "controller": True, "blockOwnerDeletion": True}
    chunks = [decisions[i:i + MAX_DECISIONS_PER_SLICE] for i in range(0, len(decisions), MAX_DECISIONS_PER_SLICE)]
    out = []
    for index, chunk in enumerate(chunks or [[]]):
        out.append({
            "apiVersion": PLACEMENT_DECISIONS.api_version, "kind": PLACEMENT_DECISIONS.kind,
            "metadata": {"name": decision_name(name, index), "namespace": namespace,
                         "labels": {DECISION_KEY_LABEL: name, DECISION_INDEX_LABEL: str(index),
                                    PLACEMENT_KEY_LABEL: name},
                         "ownerReferences": [owner]},
            "schedulerName": SCHEDULER_NAME,
            "decisions": [{"clusterProfileRef": {"name": d.ref[1], "namespace": d.ref[0]}, "reason": d.reason}
                          for d in chunk],
        })
    return out


def same_slice(have: Obj, want: Obj) -> bool:
    """Whether a stored slice already says what `want` says (the fields the scheduler owns)."""
    hm, wm = have.get("metadata") or {}, want["metadata"]
    labels = hm.get("labels") or {}
    return (all(labels.get(k) == v for k, v in wm["labels"].items())
            and hm.get("ownerReferences") == wm["ownerReferences"]
            and have.get("schedulerName") == want["schedulerName"] and have.get("decisions") == want["decisions"])


def chosen_in(slice_objects: list[Obj]) -> frozenset[Ref]:
    """The clusters a placement's slices name now (a reference without a namespace is in the slice's own)."""
    out = set()
    for obj in slice_objects:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        for d in obj.get("decisions") or []:
            ref = d.get("clusterProfileRef") or {} if isinstance(d, dict) else {}
            if isinstance(ref.get("name"), str):
                out.add((str(ref.get("namespace") or namespace), ref["name"]))
    return frozenset(out)


def status(placement: Obj, selected: int, satisfied: bool, reason: str, message: str, now: str) -> Obj:
    """The Placement's status: how many clusters it has and its Satisfied condition (transition time kept)."""
    current = placement.get("status") or {}
    generation = (placement.get("metadata") or {}).get("generation")
    cond: Obj = {"type": SATISFIED, "status": "True" if satisfied else "False", "reason": reason,
                 "message": message}
    if isinstance(generation, int):
        cond["observedGeneration"] = generation
    return {**current, "numberOfSelectedClusters": selected,
            "conditions": set_condition(current.get("conditions"), cond, now)}


def binding_hint(namespace: str, clusterset_namespaces: list[str]) -> str:
    """How to bind a namespace to a ClusterSet, for the NoClusterSetBinding message."""
    where = clusterset_namespaces[0] if clusterset_namespaces else "<clusterset>"
    binding = {"apiVersion": CLUSTERSET_BINDINGS.api_version, "kind": CLUSTERSET_BINDINGS.kind,
               "metadata": {"name": namespace, "namespace": where}, "spec": {"namespace": namespace}}
    return (f"no ClusterSet is bound to namespace {namespace}; someone allowed to create ClusterSetBindings in the "
            f"ClusterSet's namespace can bind it: kubectl create -f - <<< '{json.dumps(binding)}'")
