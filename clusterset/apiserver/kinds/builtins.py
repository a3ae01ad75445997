"""The built-in kinds: their ResourceTypes and the strategies that default and validate them."""

from __future__ import annotations

import base64
import ipaddress
from typing import TYPE_CHECKING, Any

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_duplicate,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.selectors import LabelSelector, parse_label_selector
from clusterset.apiserver.meta.validation import validate_labels
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.strategy import NoGenerationStrategy, Obj, Strategy

if TYPE_CHECKING:
    from clusterset.apiserver.registry.cluster import Cluster


def _spec(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        obj["spec"] = spec
    return spec


# ---------------------------------------------------------------------------- core/v1
class NamespaceStrategy(Strategy):
    name_rule = "label"
    has_generation = False
    extra_field_selectors = frozenset({"status.phase"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        fields["status.phase"] = str((obj.get("status") or {}).get("phase", ""))
        return fields

    def default(self, cluster: Cluster, obj: Obj) -> None:
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        _spec(obj).setdefault("finalizers", ["kubernetes"])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Active")

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        obj["spec"] = {"finalizers": ["kubernetes"]}

    def deletion_held(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def begin_deletion(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"


class ServiceStrategy(Strategy):
    name_rule = "dns1035"
    delete_returns_object = True  # kube-apiserver's service registry returns the deleted Service

    def default(self, cluster: Cluster, obj: Obj) -> None:
        spec = _spec(obj)
        svc_type = spec.setdefault("type", "ClusterIP")
        if svc_type != "ExternalName":
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if svc_type in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        obj.setdefault("status", {"loadBalancer": {}})

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_update(self, cluster: Cluster, obj: Obj, old: Obj) -> None:
        spec, old_spec = _spec(obj), old.get("spec") or {}
        if spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if key not in spec and key in old_spec:
                    spec[key] = old_spec[key]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if (
                prev
                and "nodePort" in prev
                and "nodePort" not in port
                and spec.get("type") in ("NodePort", "LoadBalancer")
            ):
                port["nodePort"] = prev["nodePort"]

    def allocate(self, cluster: Cluster, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Assigns cluster IPs (and node ports); returns field errors for impossible requests."""
        spec = _spec(obj)
        errors: list[FieldError] = []
        if spec.get("type") == "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(key, None)
            return errors
        if old is not None and (old.get("spec") or {}).get("clusterIPs"):
            return errors
        requested = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
        if requested and spec.get("clusterIP") and requested[0] != spec["clusterIP"]:
            return [field_invalid("spec.clusterIPs", requested, "element [0] must match clusterIP")]
        if requested == ["None"] or spec.get("clusterIP") == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            spec.setdefault(
                "ipFamilyPolicy", "RequireDualStack" if len(spec.get("ipFamilies") or []) > 1 else "SingleStack"
            )
            spec.setdefault("ipFamilies", ["IPv4"])
            return errors
        policy = spec.get("ipFamilyPolicy") or ("RequireDualStack" if len(requested) > 1 else "SingleStack")
        families = list(spec.get("ipFamilies") or [])
        if not families:
            families = [_family(ip) for ip in requested] or ["IPv4"]
            if policy in ("PreferDualStack", "RequireDualStack") and len(families) == 1 and cluster.service_cidr6:
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
        if policy == "RequireDualStack" and not cluster.service_cidr6:
            return [
                field_invalid("spec.ipFamilyPolicy", policy, "this cluster is not configured for dual-stack services")
            ]
        ips: list[str] = []
        for i, family in enumerate(families):
            want = requested[i] if i < len(requested) else None
            try:
                ips.append(cluster.ip_allocator(family).allocate(want))
            except ValueError as exc:
                for ip in ips:
                    cluster.ip_allocator(_family(ip)).release(ip)
                return [field_invalid(f"spec.clusterIPs[{i}]", want or "", str(exc))]
        spec["clusterIPs"] = ips
        spec["clusterIP"] = ips[0]
        spec["ipFamilies"] = families
        spec["ipFamilyPolicy"] = policy
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                if "nodePort" not in port:
                    port["nodePort"] = cluster.allocate_node_port()
        return errors

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        spec = obj.get("spec") or {}
        svc_type = spec.get("type", "ClusterIP")
        if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errors.append(
                field_not_supported("spec.type", svc_type, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
            )
        ports = spec.get("ports") or []
        headless = spec.get("clusterIP") == "None"
        if svc_type == "ExternalName":
            if not spec.get("externalName"):
                errors.append(field_required("spec.externalName"))
        elif not ports and not headless:
            errors.append(field_required("spec.ports"))
        seen_names: set[str] = set()
        seen_ports: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            base = f"spec.ports[{i}]"
            if not isinstance(port, dict):
                errors.append(field_invalid(base, port, "must be an object"))
                continue
            number = port.get("port")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                errors.append(field_invalid(f"{base}.port", number, "must be between 1 and 65535, inclusive"))
            name = port.get("name", "")
            if len(ports) > 1 and not name:
                errors.append(field_required(f"{base}.name"))
            if name:
                if name in seen_names:
                    errors.append(field_duplicate(f"{base}.name", name))
                seen_names.add(name)
            proto = port.get("protocol", "TCP")
            if proto not in ("TCP", "UDP", "SCTP"):
                errors.append(field_not_supported(f"{base}.protocol", proto, ["SCTP", "TCP", "UDP"]))
            if (number, proto) in seen_ports:
                errors.append(field_duplicate(f"{base}", {"port": number, "protocol": proto}))
            seen_ports.add((number, proto))
        if old is not None:
            old_spec = old.get("spec") or {}
            both_ip = svc_type != "ExternalName" and old_spec.get("type", "ClusterIP") != "ExternalName"
            if both_ip and old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec.get("clusterIP"):
                errors.append(field_invalid("spec.clusterIPs[0]", spec.get("clusterIP"), "may not change once set"))
        errors += validate_labels(spec.get("selector"), "spec.selector")
        return errors

    def after_delete(self, cluster: Cluster, obj: Obj) -> None:
        for ip in (obj.get("spec") or {}).get("clusterIPs") or []:
            if ip != "None":
                cluster.ip_allocator(_family(ip)).release(ip)


def _family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


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
                for problem in _label_problems(name):
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


def _label_problems(value: str) -> list[str]:
    from clusterset.apiserver.meta.validation import dns1123_label_problems

    return dns1123_label_problems(value)


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

    def default(self, cluster: Cluster, obj: Obj) -> None:
        spec = _spec(obj)
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

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(_spec(obj))}

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
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


class NodeStrategy(Strategy):
    extra_field_selectors = frozenset({"spec.unschedulable"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        fields["spec.unschedulable"] = "true" if (obj.get("spec") or {}).get("unschedulable") else "false"
        return fields


class SecretStrategy(NoGenerationStrategy):
    extra_field_selectors = frozenset({"type"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        fields["type"] = str(obj.get("type", ""))
        return fields

    def default(self, cluster: Cluster, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except ValueError:
                errors.append(field_invalid(f"data[{key}]", "<secret contents redacted>", "must be base64"))
        errors += _validate_data_keys(obj.get("data"), "data")
        if old is not None and old.get("immutable") and obj.get("data") != old.get("data"):
            errors.append(field_forbidden("data", "field is immutable when `immutable` is set"))
        return errors


class ConfigMapStrategy(NoGenerationStrategy):
    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        data = obj.get("data")
        if data is not None and not isinstance(data, dict):
            errors.append(field_invalid("data", data, "must be a map of string keys to string values"))
            return errors
        errors += _validate_data_keys(data, "data")
        errors += _validate_data_keys(obj.get("binaryData"), "binaryData")
        for key in set(data or {}) & set(obj.get("binaryData") or {}):
            errors.append(field_duplicate("data", key))
        for key, value in (data or {}).items():
            if not isinstance(value, str):
                errors.append(field_invalid(f"data[{key}]", value, "must be a string"))
        changed = obj.get("data") != (old or {}).get("data") or obj.get("binaryData") != (old or {}).get("binaryData")
        if old is not None and old.get("immutable") and changed:
            errors.append(field_forbidden("data", "field is immutable when `immutable` is set"))
        return errors


def _validate_data_keys(data: Any, path: str) -> list[FieldError]:
    import re

    errors = []
    for key in data or {}:
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key) or len(key) > 253:
            errors.append(
                field_invalid(
                    path,
                    key,
                    "a valid config key must consist of alphanumeric characters, "
                    "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                    "for validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return errors


class EventStrategy(NoGenerationStrategy):
    extra_field_selectors = frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    )

    def field_set(self, obj: Obj) -> dict[str, str]:
        fields = super().field_set(obj)
        inv = obj.get("involvedObject") or {}
        for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            fields[f"involvedObject.{key}"] = str(inv.get(key, ""))
        fields["reason"] = str(obj.get("reason", ""))
        fields["reportingComponent"] = str(obj.get("reportingComponent", ""))
        fields["source"] = str((obj.get("source") or {}).get("component", ""))
        fields["type"] = str(obj.get("type", ""))
        return fields


class EndpointSliceStrategy(NoGenerationStrategy):
    def default(self, cluster: Cluster, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("name", "")

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        family = obj.get("addressType")
        if not family:
            errors.append(field_required("addressType"))
        elif family not in ("IPv4", "IPv6", "FQDN"):
            errors.append(field_not_supported("addressType", family, ["FQDN", "IPv4", "IPv6"]))
        for i, ep in enumerate(obj.get("endpoints") or []):
            if not isinstance(ep, dict) or not ep.get("addresses"):
                errors.append(field_required(f"endpoints[{i}].addresses"))
                continue
            for j, addr in enumerate(ep["addresses"]):
                if family in ("IPv4", "IPv6"):
                    try:
                        ip = ipaddress.ip_address(addr)
                        if (ip.version == 4) != (family == "IPv4"):
                            raise ValueError
                    except ValueError:
                        errors.append(
                            field_invalid(f"endpoints[{i}].addresses[{j}]", addr, f"must be a valid {family} address")
                        )
        return errors


# ---------------------------------------------------------------------------- apps/v1
_ALWAYS_PRESENT_STATUS = {
    "ReplicaSet": ("replicas",),
    "StatefulSet": ("replicas", "availableReplicas"),
    "DaemonSet": ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"),
}


class WorkloadStrategy(Strategy):
    """Deployment, ReplicaSet, StatefulSet, DaemonSet: selector, template and replicas rules."""

    kind = ""

    def default(self, cluster: Cluster, obj: Obj) -> None:
        spec = _spec(obj)
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

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {}
        self._default_status(obj)

    def _default_status(self, obj: Obj) -> None:
        """Status counters without `omitempty` upstream are always present (clients require them)."""
        status = obj.setdefault("status", {})
        for key in _ALWAYS_PRESENT_STATUS.get(self.kind, ()):
            status.setdefault(key, 0)

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
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


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return label_selector_from_object(selector).matches(labels)


def label_selector_from_object(selector: dict[str, Any]) -> LabelSelector:
    """metav1.LabelSelector → our LabelSelector (for controllers and validation)."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        values = ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return parse_label_selector(",".join(parts))


def _workload(kind: str) -> WorkloadStrategy:
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


class JobStrategy(Strategy):
    """Defaults and the generated selector kube-apiserver gives a Job (no Job controller runs here)."""

    def default(self, cluster: Cluster, obj: Obj) -> None:
        spec = _spec(obj)
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

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        template = (obj.get("spec") or {}).get("template") or {}
        errors += validate_pod_spec(template.get("spec"), "spec.template.spec")
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            errors.append(field_not_supported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]))
        return errors


class CronJobStrategy(Strategy):
    def default(self, cluster: Cluster, obj: Obj) -> None:
        spec = _spec(obj)
        for key, value in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                           ("failedJobsHistoryLimit", 1)):
            spec.setdefault(key, value)

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if not (obj.get("spec") or {}).get("schedule"):
            errors.append(field_required("spec.schedule"))
        name = (obj.get("metadata") or {}).get("name") or ""
        if len(name) > 52:
            errors.append(field_invalid("metadata.name", name, "must be no more than 52 characters"))
        return errors


RBAC_GROUP = "rbac.authorization.k8s.io"


class RbacStrategy(NoGenerationStrategy):
    """Roles and bindings: upstream's defaulting (subject and roleRef apiGroups) and validation."""

    name_rule = "path"
    kind = ""

    def default(self, cluster: Cluster, obj: Obj) -> None:
        if self.kind.endswith("Binding"):
            ref = obj.get("roleRef")
            if isinstance(ref, dict) and not ref.get("apiGroup"):
                ref["apiGroup"] = RBAC_GROUP
            for subject in obj.get("subjects") or []:
                if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in (
                        "User", "Group"):
                    subject["apiGroup"] = RBAC_GROUP

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if self.kind.endswith("Binding"):
            errors += _validate_binding(obj, old, namespaced)
            return errors
        rules = obj.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            errors += _validate_policy_rule(rule if isinstance(rule, dict) else {}, namespaced, f"rules[{i}]")
        aggregation = obj.get("aggregationRule")
        if isinstance(aggregation, dict) and not aggregation.get("clusterRoleSelectors"):
            errors.append(field_required("aggregationRule.clusterRoleSelectors"))
        return errors


def _go_strings(values: Any) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values or []) + "}"


def _validate_policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errors = []
    if not rule.get("verbs"):
        errors.append(field_required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs")
    if urls:
        shown = f"Invalid value: {_go_strings(urls)}: "
        if namespaced:
            errors.append(FieldError(f"{path}.nonResourceURLs", "FieldValueInvalid",
                                     shown + "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errors.append(FieldError(f"{path}.nonResourceURLs", "FieldValueInvalid",
                                     shown + "rules cannot apply to both regular resources and non-resource URLs"))
        return errors
    if not rule.get("apiGroups"):
        errors.append(field_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errors.append(field_required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errors


def _validate_binding(obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
    errors = []
    ref: dict[str, Any] = obj["roleRef"] if isinstance(obj.get("roleRef"), dict) else {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(field_not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errors.append(field_not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errors.append(field_required("roleRef.name"))
    subjects = obj.get("subjects")
    for i, subject in enumerate(subjects if isinstance(subjects, list) else []):
        subject = subject if isinstance(subject, dict) else {}
        path = f"subjects[{i}]"
        if not subject.get("name"):
            errors.append(field_required(f"{path}.name"))
        kind, group = subject.get("kind"), subject.get("apiGroup", "")
        if kind == "ServiceAccount":
            if group:
                errors.append(field_not_supported(f"{path}.apiGroup", group, [""]))
            if not namespaced and not subject.get("namespace"):
                errors.append(field_required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                errors.append(field_not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
        else:
            errors.append(field_not_supported(f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        shown = (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
                 f'Name:"{ref.get("name", "")}"}}')
        errors.append(FieldError("roleRef", "FieldValueInvalid", f"Invalid value: {shown}: cannot change roleRef"))
    return errors


def _rbac(kind: str) -> RbacStrategy:
    strategy = RbacStrategy()
    strategy.kind = kind
    return strategy


# ---------------------------------------------------------------------------- the registry
def _rt(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] | None = None,
) -> ResourceType:
    rt = ResourceType(group, version, plural, kind.lower(), kind, namespaced, short, cats, subresources=sub)
    if verbs is not None:
        rt.verbs = verbs
    return rt


def _reviews() -> list[tuple[ResourceType, Strategy]]:
    """The create-only review kinds (reviews.py answers them; nothing is stored)."""
    authn, authz = "authentication.k8s.io", "authorization.k8s.io"
    kinds = [
        (authn, "v1", "selfsubjectreviews", "SelfSubjectReview", False),
        (authn, "v1", "tokenreviews", "TokenReview", False),
        (authn, "v1beta1", "selfsubjectreviews", "SelfSubjectReview", False),  # kubectl 1.27's `auth whoami`
        (authz, "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True),
        (authz, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
        (authz, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
        (authz, "v1", "subjectaccessreviews", "SubjectAccessReview", False),
    ]
    return [(_rt(g, v, plural, kind, namespaced, verbs=("create",)), NoGenerationStrategy())
            for g, v, plural, kind, namespaced in kinds]


BUILTINS: list[tuple[ResourceType, Strategy]] = [
    (
        _rt(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            ("ns",),
            sub=("status", "finalize"),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        NamespaceStrategy(),
    ),
    (_rt("", "v1", "services", "Service", short=("svc",), cats=("all",), sub=("status",)), ServiceStrategy()),
    (_rt("", "v1", "endpoints", "Endpoints", short=("ep",)), NoGenerationStrategy()),
    (_rt("", "v1", "configmaps", "ConfigMap", short=("cm",)), ConfigMapStrategy()),
    (_rt("", "v1", "secrets", "Secret"), SecretStrategy()),
    (_rt("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",), sub=("token",)), NoGenerationStrategy()),
    (_rt("", "v1", "events", "Event", short=("ev",)), EventStrategy()),
    (_rt("", "v1", "pods", "Pod", short=("po",), cats=("all",), sub=("status",)), PodStrategy()),
    (_rt("", "v1", "nodes", "Node", False, ("no",), sub=("status",)), NodeStrategy()),
    (_rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"), EndpointSliceStrategy()),
    (
        _rt("apps", "v1", "deployments", "Deployment", short=("deploy",), cats=("all",), sub=("status", "scale")),
        _workload("Deployment"),
    ),
    (
        _rt("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), cats=("all",), sub=("status", "scale")),
        ReplicaSetStrategy(),
    ),
    (
        _rt("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), cats=("all",), sub=("status", "scale")),
        _workload("StatefulSet"),
    ),
    (
        _rt("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), cats=("all",), sub=("status",)),
        _workload("DaemonSet"),
    ),
    (_rt("coordination.k8s.io", "v1", "leases", "Lease"), Strategy()),
    (_rt("rbac.authorization.k8s.io", "v1", "roles", "Role"), _rbac("Role")),
    (_rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"), _rbac("RoleBinding")),
    (_rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False), _rbac("ClusterRole")),
    (
        _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _rbac("ClusterRoleBinding"),
    ),
    *_reviews(),
    (_rt("batch", "v1", "jobs", "Job", cats=("all",), sub=("status",)), JobStrategy()),
    (_rt("batch", "v1", "cronjobs", "CronJob", short=("cj",), cats=("all",), sub=("status",)), CronJobStrategy()),
    (_rt("", "v1", "resourcequotas", "ResourceQuota", short=("quota",), sub=("status",)), Strategy()),
    (_rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), sub=("status",)), Strategy()),
    (_rt("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), sub=("status",)), Strategy()),
    (_rt("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)), NoGenerationStrategy()),
]
