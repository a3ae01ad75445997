"""Pods, and the pod template defaulting and validation the workload kinds share."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.kinds.core import ensure_spec
from clusterset.apiserver.meta.errors import (
    FieldError,
    field_duplicate,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.validation import dns1123_label_problems
from clusterset.apiserver.registry.strategy import ClusterView, Strategy
from clusterset.apiserver.storage.store import Obj


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(spec, dict):
        return [field_required(path)]
    containers = spec.get("containers")
    if not containers:
        errors.append(field_required(f"{path}.containers"))
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            base = f"{path}.{key}[{i}]"
            if not isinstance(c, dict):
                errors.append(field_invalid(base, c, "must be an object"))
                continue
            name = c.get("name")
            if not name:
                errors.append(field_required(f"{base}.name"))
            else:
                for problem in dns1123_label_problems(name):
                    errors.append(field_invalid(f"{base}.name", name, problem))
                if name in seen:
                    errors.append(field_duplicate(f"{base}.name", name))
                seen.add(name)
            if not c.get("image"):
                errors.append(field_required(f"{base}.image"))
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errors.append(field_not_supported(f"{path}.restartPolicy", policy, ["Always", "OnFailure", "Never"]))
    return errors


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    if not containers:
        return "BestEffort"
    requests_any = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if limits or requests:
            requests_any = True
        for key in ("cpu", "memory"):
            if key not in limits or requests.get(key, limits.get(key)) != limits.get(key):
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if requests_any else "BestEffort"


class PodStrategy(Strategy):
    delete_returns_object = True
    graceful_deletion = True
    extra_field_selectors = frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        }
    )

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        fields.update(
            {
                "spec.nodeName": str(spec.get("nodeName", "")),
                "spec.restartPolicy": str(spec.get("restartPolicy", "")),
                "spec.schedulerName": str(spec.get("schedulerName", "")),
                "spec.serviceAccountName": str(spec.get("serviceAccountName", "")),
                "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
                "status.phase": str(status.get("phase", "")),
                "status.podIP": str(status.get("podIP", "")),
                "status.podIPs": ",".join(p.get("ip", "") for p in status.get("podIPs") or []),
                "status.nominatedNodeName": str(status.get("nominatedNodeName", "")),
            }
        )
        return fields

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        spec = ensure_spec(obj)
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("priority", 0)
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(ensure_spec(obj))}

    def grace_period(self, obj: Obj, options: dict[str, Any]) -> int:
        """Only pods running on a node get a grace period (their kubelet stops them); the others go at once."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return max(0, int(grace))

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        errors += validate_pod_spec(obj.get("spec"), "spec")
        if old is not None:
            new_spec, old_spec = dict(obj.get("spec") or {}), dict(old.get("spec") or {})
            mutable = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
            if old_spec.get("nodeName"):
                new_spec.setdefault("nodeName", old_spec["nodeName"])
            for c_new, c_old in zip(new_spec.get("containers") or [], old_spec.get("containers") or [], strict=False):
                if isinstance(c_new, dict) and isinstance(c_old, dict) and c_new.get("image"):
                    c_old = {**c_old, "image": c_new["image"]}
            strip = {k: v for k, v in new_spec.items() if k not in mutable and k != "containers"}
            strip_old = {k: v for k, v in old_spec.items() if k not in mutable and k != "containers"}
            if strip != strip_old:
                errors.append(
                    field_forbidden(
                        "spec",
                        "pod updates may not change fields other than "
                        "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                        "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                        "to existing tolerations), `spec.terminationGracePeriodSeconds`",
                    )
                )
        return errors


