"""APIServices (`apiregistration.k8s.io/v1`), as kube-aggregator's registry stores and validates them.

The embedded server proxies to no aggregated API server: an APIService that points at a Service is stored and
reported unavailable (the `apiservices` core controller says why); the Local ones describe what the cluster
serves itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from clusterset.api.times import now_rfc3339
from clusterset.apiserver.meta.errors import FieldError, field_invalid, field_not_supported, field_required
from clusterset.apiserver.meta.validation import (
    dns1035_label_problems,
    dns1123_subdomain_problems,
    path_segment_problems,
)
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy
from clusterset.apiserver.storage.store import Obj

APISERVICE_RESOURCE = "apiregistration.k8s.io/apiservices"
APISERVICE_TYPE = ResourceType("apiregistration.k8s.io", "v1", "apiservices", "apiservice", "APIService", False,
                               categories=("api-extensions",), subresources=("status",))

# kube-aggregator's autoregister label: "onstart" (the built-in group versions, written once per start) or "true"
# (CRD group versions, kept in sync while the CRD serves them)
AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"
# upstream's groupPriorityMinimum/versionPriority of the built-in group versions this server serves
# (DefaultGenericAPIServicePriorities and kube-apiserver's additions); a served group version missing here gets no
# APIService, as upstream skips it (apiregistration.k8s.io itself is served by the aggregator without one)
BUILTIN_PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apps", "v1"): (17800, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authentication.k8s.io", "v1beta1"): (17700, 9),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("batch", "v1"): (17400, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
}
# crdregistration: "CRDs should have relatively low priority"
CRD_PRIORITY = (1000, 100)


def apiservice_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def local_apiservice(group: str, version: str, priority: tuple[int, int], managed: str) -> Obj:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": apiservice_name(group, version), "labels": {AUTOMANAGED: managed}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": priority[0],
                     "versionPriority": priority[1]}}


def available_condition(available: bool, reason: str, message: str, previous: dict[str, Any] | None) -> Obj:
    """The Available condition; its transition time stays while its status does."""
    status = "True" if available else "False"
    since = (previous or {}).get("lastTransitionTime") if (previous or {}).get("status") == status else None
    return {"type": "Available", "status": status, "lastTransitionTime": since or now_rfc3339(), "reason": reason,
            "message": message}


def local_available(previous: dict[str, Any] | None = None) -> Obj:
    return available_condition(True, "Local", "Local APIServices are always available", previous)


class APIServiceStrategy(NoGenerationStrategy):
    name_rule = "path"

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        service = (obj.get("spec") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        """Local APIServices are available from their creation on (kube-aggregator's PrepareForCreate)."""
        obj["status"] = {}
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("service") is None:
            obj["status"] = {"conditions": [local_available()]}

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [*errors, field_required("spec")]
        return errors + _spec_errors(obj["metadata"].get("name"), spec) + _status_errors(obj.get("status"))


def _spec_errors(name: Any, spec: dict[str, Any]) -> list[FieldError]:
    """ValidateAPIService, with its messages."""
    errors: list[FieldError] = []
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    required = apiservice_name(group, version)
    if isinstance(name, str) and name and not path_segment_problems(name) and name != required:
        errors.append(field_invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: "{required}"'))
    if not group and version != "v1":
        errors.append(field_required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errors += [field_invalid("spec.group", group, p) for p in dns1123_subdomain_problems(group)]
    errors += [field_invalid("spec.version", version, p) for p in dns1035_label_problems(version)]
    for key, top in (("groupPriorityMinimum", 20000), ("versionPriority", 1000)):
        value = spec.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= top:
            errors.append(field_invalid(f"spec.{key}", value if value is not None else 0,
                                        f"must be positive and less than {top}"))
    ca_bundle = spec.get("caBundle") or ""
    try:
        ca_bytes = len(base64.b64decode(str(ca_bundle), validate=True))
    except (binascii.Error, ValueError):
        errors.append(field_invalid("spec.caBundle", ca_bundle, "must be base64-encoded PEM certificates"))
        ca_bytes = 0
    skip_tls = spec.get("insecureSkipTLSVerify") is True
    service = spec.get("service")
    if service is None:
        if ca_bytes:
            errors.append(field_invalid("spec.caBundle", f"{ca_bytes} bytes",
                                        "local APIServices may not have a caBundle"))
        if skip_tls:
            errors.append(field_invalid("spec.insecureSkipTLSVerify", True,
                                        "local APIServices may not have insecureSkipTLSVerify"))
        return errors
    if not isinstance(service, dict):
        return [*errors, field_invalid("spec.service", service, "must be an object with namespace, name and port")]
    for key in ("namespace", "name"):
        if not service.get(key):
            errors.append(field_required(f"spec.service.{key}"))
    port = service.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        errors.append(field_invalid("spec.service.port", port, "must be an integer"))
    if skip_tls and ca_bytes:
        errors.append(field_invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return errors


def _status_errors(status: Any) -> list[FieldError]:
    errors = []
    for i, condition in enumerate((status or {}).get("conditions") or [] if isinstance(status, dict) else []):
        value = condition.get("status") if isinstance(condition, dict) else None
        if value not in ("True", "False", "Unknown"):
            errors.append(field_not_supported(f"status.conditions[{i}].status", value, ["True", "False", "Unknown"]))
    return errors
