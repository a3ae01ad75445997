"""apps/v1: Deployments, ReplicaSets, StatefulSets, DaemonSets and ControllerRevisions."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.kinds.pods import default_pod_spec, validate_pod_spec
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_invalid,
    field_required,
)
from clusterset.apiserver.meta.selectors import label_selector_from_object
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy, Strategy
from clusterset.apiserver.storage.store import Obj

# ---------------------------------------------------------------------------- apps/v1
_ALWAYS_PRESENT_STATUS = {
    "ReplicaSet": ("replicas",),
    "ReplicationController": ("replicas",),
    "StatefulSet": ("replicas", "availableReplicas"),
    "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
}


class WorkloadStrategy(Strategy):
    """Deployment, ReplicaSet, StatefulSet, DaemonSet: selector, template and replicas rules."""

    kind = ""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        self._default_status(obj)
        if self.kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
        if self.kind == "Deployment":
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        elif self.kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        elif self.kind == "DaemonSet":
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
            )
            spec.setdefault("revisionHistoryLimit", 10)

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {}
        self._default_status(obj)

    def _default_status(self, obj: Obj) -> None:
        """Status counters without `omitempty` upstream are always present (clients require them)."""
        status = obj.setdefault("status", {})
        for key in _ALWAYS_PRESENT_STATUS.get(self.kind, ()):
            status.setdefault(key, 0)

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec") or {}
        replicas = spec.get("replicas", 1)
        if self.kind != "DaemonSet" and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
            errors.append(field_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        selector = spec.get("selector")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errors.append(field_required("spec.selector"))
        else:
            try:
                matches = _selector_matches(selector, labels)
            except Exception:
                matches = False
                errors.append(field_invalid("spec.selector", selector, "invalid label selector"))
            if not matches:
                errors.append(
                    field_invalid(
                        "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                    )
                )
            if old is not None and (old.get("spec") or {}).get("selector") not in (None, selector):
                errors.append(field_invalid("spec.selector", selector, "field is immutable"))
        errors += validate_pod_spec(template.get("spec"), "spec.template.spec")
        return errors

    def scale_selector(self, obj: Obj) -> str:
        selector = (obj.get("spec") or {}).get("selector") or {}
        return ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return label_selector_from_object(selector).matches(labels)


def workload_strategy(kind: str) -> WorkloadStrategy:
    strategy = WorkloadStrategy()
    strategy.kind = kind
    return strategy


class ReplicaSetStrategy(WorkloadStrategy):
    kind = "ReplicaSet"
    extra_field_selectors = frozenset({"status.replicas"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        fields["status.replicas"] = str((obj.get("status") or {}).get("replicas", 0))
        return fields


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


class DaemonSetStrategy(WorkloadStrategy):
    """Keeps upstream's template generation (spec.templateGeneration, an annotation in apps/v1): 1 on
    create, one more whenever the pod template changes; clients cannot set it. The controller copies it
    into its pods' `pod-template-generation` label."""

    kind = "DaemonSet"

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        super().prepare_create(cluster, obj)
        obj["metadata"].setdefault("annotations", {})[TEMPLATE_GENERATION] = "1"

    def prepare_update(self, cluster: ClusterView, obj: Obj, old: Obj) -> None:
        self.default(cluster, obj)  # compare templates as stored, not as the client abbreviated them
        try:
            generation = int(((old["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION)) or 1)
        except ValueError:
            generation = 1
        if (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        obj["metadata"].setdefault("annotations", {})[TEMPLATE_GENERATION] = str(generation)


class ControllerRevisionStrategy(NoGenerationStrategy):
    """ControllerRevision: an immutable snapshot (`data`) of a workload's template, numbered by `revision`."""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        obj.setdefault("revision", 0)

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if obj.get("data") is None:
            errors.append(field_required("data", "data is mandatory"))
        revision = obj.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            errors.append(field_invalid("revision", revision, "must be greater than or equal to 0"))
        if old is not None and obj.get("data") != old.get("data"):
            errors.append(field_invalid("data", obj.get("data"), "field is immutable"))
        return errors
