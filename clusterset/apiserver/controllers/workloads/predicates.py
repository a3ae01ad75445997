"""Whether a pod fits a node by taints and node affinity: the filters the scheduler and the DaemonSet
controller share (upstream: the TaintToleration and NodeAffinity plugins, v1helper's toleration rules).

`node_taints` adds what the node lifecycle controller would (TaintNodesByCondition): a node that is not
Ready is tainted `node.kubernetes.io/not-ready:NoSchedule`, a cordoned one
`node.kubernetes.io/unschedulable:NoSchedule`, so a pod that tolerates those (every DaemonSet pod
tolerates the second) may still go there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import labels, meta, spec
from clusterset.apiserver.controllers.workloads.nodes import node_ready
from clusterset.apiserver.storage.store import Obj

NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def node_taints(node: Obj) -> list[dict[str, Any]]:
    """The node's taints, those of its conditions first."""
    taints = [t for t in spec(node).get("taints") or [] if isinstance(t, dict)]
    keys = {t.get("key") for t in taints}
    implied = []
    if not node_ready(node) and NOT_READY not in keys:
        implied.append({"key": NOT_READY, "effect": "NoSchedule"})
    if spec(node).get("unschedulable") and UNSCHEDULABLE not in keys:
        implied.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return [*implied, *taints]


def tolerates(tolerations: Iterable[Any], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if not isinstance(tol, dict):
            continue
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        operator = tol.get("operator") or "Equal"
        if not tol.get("key") and operator == "Exists":
            return True
        if tol.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def untolerated_taint(pod_spec: dict[str, Any], node: Obj, effects: tuple[str, ...]) -> dict[str, Any] | None:
    """The first taint of `node` with one of `effects` that the pod does not tolerate, if any."""
    tolerations = pod_spec.get("tolerations") or []
    return next((t for t in node_taints(node) if t.get("effect") in effects and not tolerates(tolerations, t)),
                None)


def _expression_matches(expr: dict[str, Any], values: dict[str, str]) -> bool:
    key, op = expr.get("key", ""), expr.get("operator")
    wanted = [str(v) for v in expr.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, limit = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > limit if op == "Gt" else have < limit
    return False


def affinity_matches(pod_spec: dict[str, Any], node: Obj) -> bool:
    """nodeSelector and the required node affinity terms (matchExpressions on labels, matchFields on
    metadata.name) of a pod spec."""
    node_labels = labels(node)
    selector = pod_spec.get("nodeSelector") or {}
    if any(node_labels.get(k) != v for k, v in selector.items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not isinstance(required, dict):
        return True
    fields = {"metadata.name": meta(node).get("name", "")}
    for term in required.get("nodeSelectorTerms") or []:
        exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_expression_matches(e, node_labels) for e in exprs) and \
                all(_expression_matches(e, fields) for e in field_exprs):
            return True
    return False
