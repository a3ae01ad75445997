"""core/v1 kinds but Services and Pods: Namespace, Node, Secret, ConfigMap, Event."""

from __future__ import annotations

import base64
import re
from typing import Any

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_duplicate,
    field_forbidden,
    field_invalid,
    field_too_long,
)
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy, Strategy
from clusterset.apiserver.storage.store import Obj

MAX_DATA_BYTES = 1024 * 1024  # upstream's MaxSecretSize: the data of one Secret or ConfigMap


def ensure_spec(obj: Obj) -> dict[str, Any]:
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

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        ensure_spec(obj).setdefault("finalizers", ["kubernetes"])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Active")

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        obj["spec"] = {"finalizers": ["kubernetes"]}

    def deletion_held(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def begin_deletion(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"




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

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        size = 0
        for key, value in (obj.get("data") or {}).items():
            try:
                size += len(base64.b64decode(str(value), validate=True))
            except ValueError:
                errors.append(field_invalid(f"data[{key}]", "<secret contents redacted>", "must be base64"))
        errors += _validate_data_keys(obj.get("data"), "data")
        if size > MAX_DATA_BYTES:
            errors.append(field_too_long("data", "", MAX_DATA_BYTES))
        if old is not None and old.get("immutable") and obj.get("data") != old.get("data"):
            errors.append(field_forbidden("data", "field is immutable when `immutable` is set"))
        return errors


class ConfigMapStrategy(NoGenerationStrategy):
    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
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
        if _configmap_bytes(obj) > MAX_DATA_BYTES:
            # field.NewPath("") prints as "[]": the error is about the whole object
            errors.append(field_too_long("[]", "", MAX_DATA_BYTES))
        changed = obj.get("data") != (old or {}).get("data") or obj.get("binaryData") != (old or {}).get("binaryData")
        if old is not None and old.get("immutable") and changed:
            errors.append(field_forbidden("data", "field is immutable when `immutable` is set"))
        return errors


def _configmap_bytes(obj: Obj) -> int:
    """What ValidateConfigMap counts: the bytes of every `data` value and decoded `binaryData` value."""
    size = sum(len(value.encode()) for value in (obj.get("data") or {}).values() if isinstance(value, str))
    for value in (obj.get("binaryData") or {}).values():
        try:
            size += len(base64.b64decode(str(value)))
        except ValueError:
            size += len(str(value))  # not base64 (the decoder refuses it elsewhere): counted as sent
    return size


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _validate_data_keys(data: Any, path: str) -> list[FieldError]:
    errors = []
    for key in data or {}:
        if not _CONFIG_KEY.fullmatch(key) or len(key) > 253:
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


