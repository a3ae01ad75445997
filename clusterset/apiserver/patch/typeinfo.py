"""How each field of a built-in kind merges: strategic merge patch tags and SSA list/map types.

Both come from the Go struct tags of kubernetes/api (`patchStrategy`, `patchMergeKey`,
`listType`, `listMapKey`, `mapType`, `structType`); see shared/specs/patch-and-apply.md §3.3.
Paths are tuples of field names from the object root; list items are transparent, so a
container's env is `("spec", "template", "spec", "containers", "env")`.

Fields not listed get the defaults: lists are replaced (SMP) and atomic (SSA); maps and
structs are merged (SMP) and granular (SSA).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

SmpStrategy = Literal["merge", "replace"]
SsaType = Literal["atomic", "set", "map", "granular"]


@dataclass(frozen=True)
class FieldType:
    """The merge behaviour of one field.

    smp: for lists, "merge" means merge by `merge_key` (or a scalar set union when `merge_key`
    is None); for maps and structs, "replace" means replaced whole. `retain_keys` marks union
    structs (the field itself, or each item of a list) that honour `$retainKeys`.
    ssa: "map" lists are keyed by `keys` (missing key fields take `key_defaults`); "atomic"
    lists, maps and structs are replaced whole; "granular" maps and structs merge per key.
    """

    smp: SmpStrategy = "replace"
    merge_key: str | None = None
    retain_keys: bool = False
    ssa: SsaType = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults: dict[str, Any] = field(default_factory=dict)


class FieldTypes(Protocol):
    def lookup(self, path: tuple[str, ...]) -> FieldType | None:
        """The field's type, or None when the defaults for its JSON type apply."""


def _keyed(key: str, *ssa_keys: str, defaults: dict[str, Any] | None = None) -> FieldType:
    return FieldType(smp="merge", merge_key=key, ssa="map", keys=ssa_keys or (key,), key_defaults=defaults or {})


_SET = FieldType(smp="merge", ssa="set")
_ATOMIC_MAP = FieldType(smp="merge", ssa="atomic")
_LABEL_SELECTOR = FieldType(smp="merge", ssa="atomic")
_CONDITIONS = _keyed("type")

_CONTAINER = {
    (): _keyed("name"),
    ("ports",): _keyed("containerPort", "containerPort", "protocol", defaults={"protocol": "TCP"}),
    ("env",): _keyed("name"),
    ("volumeMounts",): _keyed("mountPath"),
    ("volumeDevices",): _keyed("devicePath"),
}

_POD_SPEC: dict[tuple[str, ...], FieldType] = {
    ("volumes",): FieldType(smp="merge", merge_key="name", retain_keys=True, ssa="map", keys=("name",)),
    ("resourceClaims",): FieldType(smp="merge", merge_key="name", retain_keys=True, ssa="map", keys=("name",)),
    ("imagePullSecrets",): _keyed("name"),
    ("schedulingGates",): _keyed("name"),
    ("hostAliases",): _keyed("ip"),
    ("topologySpreadConstraints",): _keyed("topologyKey", "topologyKey", "whenUnsatisfiable"),
    ("nodeSelector",): _ATOMIC_MAP,
}
for _list in ("containers", "initContainers", "ephemeralContainers"):
    for _sub, _ft in _CONTAINER.items():
        _POD_SPEC[(_list, *_sub)] = _ft

_POD_STATUS: dict[tuple[str, ...], FieldType] = {
    ("podIPs",): _keyed("ip"),
    ("hostIPs",): FieldType(smp="merge", merge_key="ip", ssa="atomic"),
    ("conditions",): _CONDITIONS,
}

_METADATA: dict[tuple[str, ...], FieldType] = {
    ("metadata", "finalizers"): _SET,
    ("metadata", "ownerReferences"): _keyed("uid"),
    ("metadata", "managedFields"): FieldType(),
}

def _mount(prefix: tuple[str, ...], table: dict[tuple[str, ...], FieldType]) -> dict[tuple[str, ...], FieldType]:
    return {prefix + path: ft for path, ft in table.items()}


def _workload(template_prefix: tuple[str, ...], extra: dict[tuple[str, ...], FieldType] | None = None
              ) -> dict[tuple[str, ...], FieldType]:
    table = {
        **_mount((*template_prefix, "template", "spec"), _POD_SPEC),
        ("status", "conditions"): _CONDITIONS,
        ("spec", "selector"): _LABEL_SELECTOR,
    }
    return {**table, **(extra or {})}


_BY_KIND: dict[tuple[str, str], dict[tuple[str, ...], FieldType]] = {
    ("", "Pod"): {**_mount(("spec",), _POD_SPEC), **_mount(("status",), _POD_STATUS)},
    ("", "PodTemplate"): _mount(("template", "spec"), _POD_SPEC),
    ("", "ReplicationController"): _mount(("spec", "template", "spec"), _POD_SPEC),
    ("", "Service"): {
        ("spec", "ports"): _keyed("port", "port", "protocol", defaults={"protocol": "TCP"}),
        ("spec", "selector"): _ATOMIC_MAP,
        ("status", "conditions"): _CONDITIONS,
    },
    ("", "ServiceAccount"): {("secrets",): _keyed("name")},
    ("", "Node"): {
        ("spec", "podCIDRs"): _SET,
        ("status", "addresses"): _keyed("type"),
        ("status", "conditions"): _CONDITIONS,
    },
    ("", "Namespace"): {("status", "conditions"): _CONDITIONS},
    ("", "PersistentVolumeClaim"): {("status", "conditions"): _CONDITIONS},
    ("apps", "Deployment"): _workload(
        ("spec",), {("spec", "strategy"): FieldType(smp="merge", retain_keys=True, ssa="granular")}
    ),
    ("apps", "ReplicaSet"): _workload(("spec",)),
    ("apps", "StatefulSet"): _workload(("spec",)),
    ("apps", "DaemonSet"): _workload(("spec",)),
    ("batch", "Job"): {
        **_workload(("spec",)),
        ("status", "conditions"): FieldType(smp="merge", merge_key="type", ssa="atomic"),
    },
    ("batch", "CronJob"): _mount(("spec", "jobTemplate", "spec", "template", "spec"), _POD_SPEC),
    ("policy", "PodDisruptionBudget"): {
        ("spec", "selector"): FieldType(smp="replace", ssa="atomic"),
        ("status", "conditions"): _CONDITIONS,
    },
    ("autoscaling", "HorizontalPodAutoscaler"): {("status", "conditions"): _CONDITIONS},
}


@dataclass(frozen=True)
class TableFieldTypes:
    """FieldTypes backed by a path table (the built-in kinds)."""

    table: dict[tuple[str, ...], FieldType]

    def lookup(self, path: tuple[str, ...]) -> FieldType | None:
        return self.table.get(path)


@functools.cache
def builtin_field_types(group: str, kind: str) -> FieldTypes:
    """Field types of a built-in kind; unknown kinds get only the ObjectMeta rules (made once per kind)."""
    return TableFieldTypes({**_METADATA, **_BY_KIND.get((group, kind), {})})


_MAX_REMEMBERED_PATHS = 4096


@dataclass(frozen=True)
class SchemaFieldTypes:
    """FieldTypes read from a CRD's structural schema (`x-kubernetes-list-type` and friends).

    CR lists without `x-kubernetes-list-type` are atomic; objects are granular unless
    `x-kubernetes-map-type: atomic`; `metadata` follows the ObjectMeta rules. CRs never take
    strategic merge patches, so `smp` is only filled in for completeness.
    """

    schema: dict[str, Any]
    # each path's answer (an apply looks up every field of its body, and of the object, several times); bounded, as
    # a map's keys are paths too
    _found: dict[tuple[str, ...], FieldType | None] = field(default_factory=dict, compare=False, repr=False)

    def lookup(self, path: tuple[str, ...]) -> FieldType | None:
        if path[:1] == ("metadata",):
            return _METADATA.get(path)
        try:
            return self._found[path]
        except KeyError:
            pass
        node: dict[str, Any] | None = self.schema
        for name in path:
            node = _child(node, name)
            if node is None:
                break
        found = _from_schema(node) if node is not None else None
        if len(self._found) >= _MAX_REMEMBERED_PATHS:
            self._found.clear()
        self._found[path] = found
        return found


def _child(node: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    while node is not None and node.get("type") == "array":
        node = node.get("items")
    if node is None:
        return None
    props = node.get("properties")
    if isinstance(props, dict) and name in props:
        child = props[name]
        return child if isinstance(child, dict) else None
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _from_schema(node: dict[str, Any]) -> FieldType | None:
    if node.get("type") == "array":
        list_type = node.get("x-kubernetes-list-type", "atomic")
        if list_type == "map":
            keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
            items = node.get("items") or {}
            props = items.get("properties") or {}
            defaults = {k: props[k]["default"] for k in keys
                        if isinstance(props.get(k), dict) and "default" in props[k]}
            return FieldType(smp="merge", merge_key=keys[0] if len(keys) == 1 else None, ssa="map", keys=keys,
                             key_defaults=defaults)
        if list_type == "set":
            return _SET
        return FieldType()
    if node.get("type") == "object" or "properties" in node or "additionalProperties" in node:
        atomic = node.get("x-kubernetes-map-type") == "atomic"
        return FieldType(smp="merge", ssa="atomic" if atomic else "granular")
    return None
