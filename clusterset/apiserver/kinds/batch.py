"""batch/v1: Jobs and CronJobs, defaulted and validated as kube-apiserver's strategies do (the controllers that
run them are `controllers/workloads/jobs.py` and `cronjobs.py`)."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.kinds.pods import default_pod_spec, validate_pod_spec
from clusterset.apiserver.kinds.schedules import ScheduleError, load_zone, parse_schedule
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.selectors import label_selector_from_object
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.storage.store import Obj

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]


def _nonnegative(spec: dict[str, Any], path: str, *keys: str) -> list[FieldError]:
    errors = []
    for key in keys:
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            errors.append(field_invalid(f"{path}.{key}", value, "must be greater than or equal to 0"))
    return errors


def validate_job_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    """What a Job's spec and a CronJob's jobTemplate.spec share (upstream validateJobSpec)."""
    errors = _nonnegative(spec, path, "parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                          "ttlSecondsAfterFinished")
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        errors.append(field_not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    elif mode == "Indexed" and spec.get("completions") is None:
        errors.append(field_required(f"{path}.completions", "when completion mode is Indexed"))
    template = spec.get("template") or {}
    errors += validate_pod_spec(template.get("spec"), f"{path}.template.spec")
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errors.append(field_not_supported(f"{path}.template.spec.restartPolicy", policy, ["OnFailure", "Never"]))
    return errors


class JobStrategy(Strategy):
    """Defaults, the generated selector and labels (from the uid, unless `manualSelector`), and the fields that
    never change (completions, selector, completionMode, the pod template), as upstream's job strategy."""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1  # both unset: 1; only parallelism set: a work queue (no completions)
        replacement = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
        for key, value in (("parallelism", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"),
                           ("suspend", False), ("podReplacementPolicy", replacement)):
            spec.setdefault(key, value)
        template = spec.setdefault("template", {})
        if isinstance(template.get("spec"), dict):
            default_pod_spec(template["spec"])  # restartPolicy Always, which validation then refuses, as upstream
        if spec.get("manualSelector"):
            return
        meta = obj["metadata"]
        uid, name = meta.get("uid", ""), meta.get("name", "")
        labels = {**dict.fromkeys(CONTROLLER_UID_LABELS, uid), **dict.fromkeys(JOB_NAME_LABELS, name)}
        template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        spec.setdefault("selector", {"matchLabels": {CONTROLLER_UID_LABELS[0]: uid}})

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec") or {}
        errors += validate_job_spec(spec, "spec")
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, dict):
            errors.append(field_required("spec.selector"))
        else:
            try:
                matches = label_selector_from_object(selector).matches(labels)
            except Exception:
                matches = True
                errors.append(field_invalid("spec.selector", selector, "invalid label selector"))
            if not matches:
                errors.append(field_invalid("spec.template.metadata.labels", labels,
                                            "`selector` does not match template `labels`"))
        if old is not None:
            old_spec = old.get("spec") or {}
            for key in ("completions", "selector", "completionMode", "template"):
                if spec.get(key) != old_spec.get(key):
                    errors.append(field_invalid(f"spec.{key}", spec.get(key), "field is immutable"))
        return errors


class CronJobStrategy(Strategy):
    """Defaults and validation: the schedule in robfig/cron's grammar, an IANA `timeZone`, the job template."""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                           ("failedJobsHistoryLimit", 1)):
            spec.setdefault(key, value)
        pod_spec = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
        if isinstance(pod_spec, dict):
            default_pod_spec(pod_spec)

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec") or {}
        name = (obj.get("metadata") or {}).get("name") or ""
        if len(name) > 52:
            errors.append(field_invalid("metadata.name", name, "must be no more than 52 characters"))
        schedule, zone = spec.get("schedule"), spec.get("timeZone")
        if zone is not None:
            try:
                load_zone(str(zone))
            except ScheduleError as err:
                errors.append(field_invalid("spec.timeZone", zone, str(err)))
                zone = None
        if not schedule:
            errors.append(field_required("spec.schedule"))
        else:
            try:
                parse_schedule(str(schedule), None if zone is None else str(zone))
            except ScheduleError as err:
                errors.append(field_invalid("spec.schedule", schedule, str(err)))
        errors += _nonnegative(spec, "spec", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
                               "failedJobsHistoryLimit")
        policy = spec.get("concurrencyPolicy")
        if policy not in CONCURRENCY_POLICIES:
            errors.append(field_not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        errors += validate_job_spec(job_spec, "spec.jobTemplate.spec")
        if job_spec.get("selector") is not None:
            errors.append(field_invalid("spec.jobTemplate.spec.selector", job_spec["selector"],
                                        "`selector` will be auto-generated"))
        if job_spec.get("manualSelector"):
            errors.append(field_not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
        return errors
