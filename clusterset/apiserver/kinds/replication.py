"""core/v1 ReplicationController: a ReplicaSet whose selector is a plain map of labels.

Defaulting as upstream's SetDefaults_ReplicationController: the selector, and the labels when
empty, come from the template's labels; replicas default to 1. Validation as
ValidateReplicationControllerSpec: a non-empty selector that matches the template's labels, the
template's restartPolicy Always and no activeDeadlineSeconds. Unlike a ReplicaSet's, the selector may
change.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.kinds.apps import ReplicaSetStrategy
from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.kinds.pods import default_pod_spec, validate_pod_spec
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.storage.store import Obj


def _labels_of(template: Any) -> dict[str, Any] | None:
    if not isinstance(template, dict) or not isinstance(template.get("metadata"), dict):
        return None
    labels = template["metadata"].get("labels")
    return labels if isinstance(labels, dict) else None


class ReplicationControllerStrategy(ReplicaSetStrategy):
    kind = "ReplicationController"

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        self._default_status(obj)
        spec.setdefault("replicas", 1)
        template = spec.get("template")
        labels = _labels_of(template)
        if labels:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            if not obj["metadata"].get("labels"):
                obj["metadata"]["labels"] = dict(labels)
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = Strategy.validate(self, cluster, obj, old, namespaced)  # not the LabelSelector rules
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            errors.append(field_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        min_ready = spec.get("minReadySeconds", 0)
        if not isinstance(min_ready, int) or isinstance(min_ready, bool) or min_ready < 0:
            errors.append(field_invalid("spec.minReadySeconds", min_ready, "must be greater than or equal to 0"))
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not selector:
            errors.append(field_required("spec.selector"))
            selector = {}
        template = spec.get("template")
        if not isinstance(template, dict):
            errors.append(field_required("spec.template"))
            return errors
        labels = _labels_of(template) or {}
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            errors.append(field_invalid("spec.template.metadata.labels", labels,
                                        "`selector` does not match template `labels`"))
        pod_spec = template.get("spec")
        errors += validate_pod_spec(pod_spec, "spec.template.spec")
        if isinstance(pod_spec, dict):
            policy = pod_spec.get("restartPolicy")
            if policy != "Always":
                errors.append(field_not_supported("spec.template.spec.restartPolicy", policy, ["Always"]))
            if pod_spec.get("activeDeadlineSeconds") is not None:
                errors.append(field_forbidden("spec.template.spec.activeDeadlineSeconds",
                                              "activeDeadlineSeconds in ReplicationController is not Supported"))
        return errors

    def scale_selector(self, obj: Obj) -> str:
        selector = (obj.get("spec") or {}).get("selector") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
