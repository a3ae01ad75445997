"""batch/v1: Jobs and CronJobs (served and validated; no controller runs them)."""

from __future__ import annotations

from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.kinds.pods import default_pod_spec, validate_pod_spec
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.storage.store import Obj


class JobStrategy(Strategy):
    """Defaults and the generated selector kube-apiserver gives a Job (no Job controller runs here)."""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        for key, value in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6),
                           ("completionMode", "NonIndexed"), ("suspend", False)):
            spec.setdefault(key, value)
        template = spec.setdefault("template", {})
        if isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])
            template["spec"]["restartPolicy"] = template["spec"].get("restartPolicy", "Never") or "Never"
        if spec.get("manualSelector"):
            return
        meta = obj["metadata"]
        uid, name = meta.get("uid", ""), meta.get("name", "")
        labels = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                  "controller-uid": uid, "job-name": name}
        template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        template = (obj.get("spec") or {}).get("template") or {}
        errors += validate_pod_spec(template.get("spec"), "spec.template.spec")
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            errors.append(field_not_supported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]))
        return errors


class CronJobStrategy(Strategy):
    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                           ("failedJobsHistoryLimit", 1)):
            spec.setdefault(key, value)

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if not (obj.get("spec") or {}).get("schedule"):
            errors.append(field_required("spec.schedule"))
        name = (obj.get("metadata") or {}).get("name") or ""
        if len(name) > 52:
            errors.append(field_invalid("metadata.name", name, "must be no more than 52 characters"))
        return errors


