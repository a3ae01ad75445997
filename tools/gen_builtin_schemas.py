"""Generate clusterset/apiserver/schema/builtin_schemas.json from the official `kubernetes` client's models.

Run once (needs the `kubernetes` package, a test dependency) and commit the output:

    .venv/bin/python tools/gen_builtin_schemas.py

The runtime never imports `kubernetes`: it reads the JSON through `clusterset.apiserver.schema.builtin`.

Output layout (kept small by sharing definitions, as kube-apiserver's OpenAPI v3 does):

    {"kinds": {"apps/v1/Deployment": "io.k8s.api.apps.v1.Deployment", "/v1/Pod": ...},
     "definitions": {"io.k8s.api.apps.v1.Deployment": {...}, ...}}

Definitions use the CRD dialect (type/properties/items/additionalProperties/format/description,
`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`) and refer to each other as
upstream v3 does: `{"allOf": [{"$ref": "#/components/schemas/<name>"}], "description": ...}`.
The merge metadata of `clusterset.apiserver.patch.typeinfo` is written as
`x-kubernetes-patch-strategy`/`-patch-merge-key`/`-list-type`/`-list-map-keys`/`-map-type`.

What the Python client loses, and how it is restored here:
- resource.Quantity is a plain `str` in the client: the fields are listed in QUANTITY_FIELDS.
- IntOrString is recognised by its pydantic annotation (Union[int, str]).
- Both become upstream-named definitions marked `x-kubernetes-int-or-string` (upstream v3 writes
  them as `oneOf`); int-or-string also keeps upstream's `format: int-or-string`.
- RawExtension/JSON/JSONSchemaPropsOr* become `x-kubernetes-preserve-unknown-fields`.
- int32/int64 formats are unknown: integers carry no format.
- The Go package of a type is not recorded: PACKAGES maps class names to upstream packages.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

import kubernetes.client.models as models

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clusterset.apiserver.patch.typeinfo import (  # noqa: E402
    FieldType,
    TableFieldTypes,
    builtin_field_types,
)

OUT = ROOT / "clusterset" / "apiserver" / "schema" / "builtin_schemas.json"
REF_PREFIX = "#/components/schemas/"

# (group, version, kind, python class)
KINDS: list[tuple[str, str, str, str]] = [
    ("", "v1", "Namespace", "V1Namespace"),
    ("", "v1", "Service", "V1Service"),
    ("", "v1", "Endpoints", "V1Endpoints"),
    ("", "v1", "ConfigMap", "V1ConfigMap"),
    ("", "v1", "Secret", "V1Secret"),
    ("", "v1", "ServiceAccount", "V1ServiceAccount"),
    ("", "v1", "Event", "CoreV1Event"),
    ("", "v1", "Pod", "V1Pod"),
    ("", "v1", "Node", "V1Node"),
    ("", "v1", "Binding", "V1Binding"),
    ("", "v1", "ReplicationController", "V1ReplicationController"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "V1EndpointSlice"),
    ("apps", "v1", "Deployment", "V1Deployment"),
    ("apps", "v1", "ReplicaSet", "V1ReplicaSet"),
    ("apps", "v1", "StatefulSet", "V1StatefulSet"),
    ("apps", "v1", "DaemonSet", "V1DaemonSet"),
    ("apps", "v1", "ControllerRevision", "V1ControllerRevision"),
    ("batch", "v1", "Job", "V1Job"),
    ("batch", "v1", "CronJob", "V1CronJob"),
    ("coordination.k8s.io", "v1", "Lease", "V1Lease"),
    ("apiregistration.k8s.io", "v1", "APIService", "V1APIService"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "V1CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "v1", "Role", "V1Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "V1ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "V1RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "V1ClusterRoleBinding"),
    ("autoscaling", "v1", "Scale", "V1Scale"),
    ("events.k8s.io", "v1", "Event", "EventsV1Event"),
    ("authentication.k8s.io", "v1", "TokenRequest", "AuthenticationV1TokenRequest"),
]
# Non-kind definitions the OpenAPI documents reference (responses, delete bodies, list metadata).
EXTRA = ["V1Status", "V1DeleteOptions", "V1ListMeta"]

# The DeleteOptions/Status "kinds" are served by every group version upstream.
EXTRA_GVK: dict[str, list[dict[str, str]]] = {
    "V1Status": [{"group": "", "kind": "Status", "version": "v1"}],
    "V1DeleteOptions": [{"group": g, "kind": "DeleteOptions", "version": "v1"} for g in (
        "", "apps", "apiextensions.k8s.io", "apiregistration.k8s.io", "authentication.k8s.io", "autoscaling",
        "batch", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io")],
}

GROUP_PACKAGE = {
    "": "io.k8s.api.core", "apps": "io.k8s.api.apps", "discovery.k8s.io": "io.k8s.api.discovery",
    "coordination.k8s.io": "io.k8s.api.coordination", "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "autoscaling": "io.k8s.api.autoscaling", "events.k8s.io": "io.k8s.api.events",
    "authentication.k8s.io": "io.k8s.api.authentication", "batch": "io.k8s.api.batch",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
META = "io.k8s.apimachinery.pkg.apis.meta"
PREFIX_PACKAGE = {
    "Core": "io.k8s.api.core", "Events": "io.k8s.api.events", "Discovery": "io.k8s.api.discovery",
    "Rbac": "io.k8s.api.rbac", "Authentication": "io.k8s.api.authentication",
    "Apiextensions": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "Apiregistration": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}
PACKAGES: dict[str, set[str]] = {
    META: {"ObjectMeta", "ListMeta", "ManagedFieldsEntry", "OwnerReference", "LabelSelector",
           "LabelSelectorRequirement", "Condition", "Status", "StatusCause", "StatusDetails", "DeleteOptions",
           "Preconditions", "ShardInfo"},
    "io.k8s.api.coordination": {"Lease", "LeaseSpec"},
    "io.k8s.api.batch": {"Job", "JobSpec", "JobStatus", "JobCondition", "JobTemplateSpec", "CronJob", "CronJobSpec",
                         "CronJobStatus", "PodFailurePolicy", "PodFailurePolicyRule",
                         "PodFailurePolicyOnExitCodesRequirement", "PodFailurePolicyOnPodConditionsPattern",
                         "SuccessPolicy", "SuccessPolicyRule", "UncountedTerminatedPods"},
    "io.k8s.kube-aggregator.pkg.apis.apiregistration": {"APIService", "APIServiceSpec", "APIServiceStatus",
                                                         "APIServiceCondition"},
    "io.k8s.api.rbac": {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "PolicyRule",
                        "AggregationRule", "RoleRef"},
    "io.k8s.api.autoscaling": {"Scale", "ScaleSpec", "ScaleStatus"},
    "io.k8s.api.authentication": {"TokenRequestSpec", "TokenRequestStatus", "BoundObjectReference"},
    "io.k8s.api.discovery": {"EndpointSlice", "Endpoint", "EndpointConditions", "EndpointHints", "ForZone",
                             "ForNode"},
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions": {
        "JSONSchemaProps", "ExternalDocumentation", "ValidationRule", "WebhookConversion", "SelectableField"},
}
APPS_PREFIXES = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "RollingUpdate", "ControllerRevision")

# resource.Quantity fields (the client types them as plain strings).
QUANTITY_FIELDS = {
    ("V1PodSpec", "overhead"), ("V1ResourceFieldSelector", "divisor"),
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "size_limit"), ("V1PodStatus", "allocated_resources"),
    ("V1ContainerStatus", "allocated_resources"), ("V1NodeAllocatableMappedResources", "quantity"),
    ("V1NodeAllocatableOverheadResources", "per_container"), ("V1NodeAllocatableOverheadResources", "per_pod"),
    ("V1NodeStatus", "allocatable"), ("V1NodeStatus", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocated_resources"), ("V1PersistentVolumeClaimStatus", "capacity"),
}
# Struct-typed `object` fields whose content is free-form but always a JSON object.
FREE_OBJECT_FIELDS = {("V1ManagedFieldsEntry", "fields_v1")}
# Empty structs (CustomResourceSubresourceStatus): an object with no known fields.
EMPTY_OBJECT_FIELDS = {("V1CustomResourceSubresources", "status")}

# Named like upstream so that `kubectl explain` shows <Quantity> and <IntOrString>.
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
QUANTITY_SCHEMA = {
    "description": "Quantity is a fixed-point representation of a number: a plain number or a string with a "
                   "suffix, such as 100m, 1.5, 2Gi or 1e3.",
    "x-kubernetes-int-or-string": True,
}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
INT_OR_STRING_SCHEMA = {
    "description": "IntOrString is a type that can hold an int32 or a string.",
    "format": "int-or-string",
    "x-kubernetes-int-or-string": True,
}
METADATA_DESC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

_CLASS = re.compile(
    r"^(Core|Events|Discovery|Rbac|Authentication|Apiextensions|Apiregistration)?(V\d+(?:alpha\d+|beta\d+)?)(\w+)$")


def upstream_name(cls_name: str) -> str:
    """`V1PodSpec` → `io.k8s.api.core.v1.PodSpec`; prefixed classes (`CoreV1Event`) name their package."""
    m = _CLASS.match(cls_name)
    if not m:
        raise ValueError(cls_name)
    prefix, version, name = m.group(1), m.group(2).lower(), m.group(3)
    if prefix:
        package = PREFIX_PACKAGE[prefix]
    else:
        package = next((p for p, names in PACKAGES.items() if name in names), "")
        if not package:
            if name.startswith(APPS_PREFIXES):
                package = "io.k8s.api.apps"
            elif name.startswith("CustomResource"):
                package = PREFIX_PACKAGE["Apiextensions"]
            else:
                package = "io.k8s.api.core"
    return f"{package}.{version}.{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": REF_PREFIX + name}]}


def _description(text: str | None) -> str:
    return (text or "").strip()


def _class_description(cls: Any) -> str:
    doc = (cls.__doc__ or "").split("Attributes:")[0].strip()
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip())


def _model_field(cls: Any, attr: str, json_name: str) -> Any:
    fields = cls.model_fields
    if attr in fields:
        return fields[attr]
    for f in fields.values():
        if f.serialization_alias == json_name or f.alias == json_name:
            return f
    return None


def _is_int_or_string(annotation: Any) -> bool:
    args = set()
    for arg in typing.get_args(annotation):
        base = typing.get_args(arg)[0] if typing.get_origin(arg) is typing.Annotated else arg
        args.add(base)
    args.discard(type(None))
    return args == {int, str}


class Generator:
    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.class_of: dict[str, str] = {}  # upstream name -> python class

    def add_class(self, cls_name: str) -> str:
        name = upstream_name(cls_name)
        if name in self.definitions:
            if self.class_of[name] != cls_name:
                raise ValueError(f"{name}: {self.class_of[name]} and {cls_name}")
            return name
        cls = getattr(models, cls_name)
        schema: dict[str, Any] = {}
        self.definitions[name] = schema
        self.class_of[name] = cls_name
        desc = _class_description(cls)
        if desc:
            schema["description"] = desc
        schema["type"] = "object"
        props: dict[str, Any] = {}
        required: list[str] = []
        for attr, type_str in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            field = _model_field(cls, attr, json_name)
            prop = self.type_schema(cls_name, attr, type_str, field)
            fdesc = _description(getattr(field, "description", None))
            if fdesc:
                prop = {"description": fdesc, **prop}
            props[json_name] = prop
            if field is not None and field.is_required():
                required.append(json_name)
        schema["properties"] = dict(sorted(props.items()))
        if required:
            schema["required"] = sorted(required)
        return name

    def type_schema(self, cls_name: str, attr: str, type_str: str, field: Any) -> dict[str, Any]:
        key = (cls_name, attr)
        if key in QUANTITY_FIELDS:
            self.definitions.setdefault(QUANTITY, dict(QUANTITY_SCHEMA))
            if type_str.startswith("Dict["):
                return {"type": "object", "additionalProperties": _ref(QUANTITY)}
            return _ref(QUANTITY)
        if key in FREE_OBJECT_FIELDS:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if key in EMPTY_OBJECT_FIELDS:
            return {"type": "object"}
        return self._type(type_str, field.annotation if field is not None else None)

    def _type(self, t: str, annotation: Any) -> dict[str, Any]:
        t = t.strip()
        if t.startswith("List[") and t.endswith("]"):
            return {"type": "array", "items": self._type(t[5:-1], None)}
        if t.startswith("Dict[str, ") and t.endswith("]"):
            return {"type": "object", "additionalProperties": self._type(t[10:-1], None)}
        simple = {
            "str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
            "float": {"type": "number", "format": "double"}, "datetime": {"type": "string", "format": "date-time"},
            "date": {"type": "string", "format": "date"}, "bytes": {"type": "string", "format": "byte"},
        }
        if t in simple:
            return dict(simple[t])
        if t == "object":
            if annotation is not None and _is_int_or_string(annotation):
                self.definitions.setdefault(INT_OR_STRING, dict(INT_OR_STRING_SCHEMA))
                return _ref(INT_OR_STRING)
            return {"x-kubernetes-preserve-unknown-fields": True}
        if hasattr(models, t):
            return _ref(self.add_class(t))
        raise ValueError(f"unknown type {t!r}")

    # ------------------------------------------------------------ merge metadata
    def apply_field_types(self, root: str, table: dict[tuple[str, ...], FieldType]) -> None:
        for path, ft in sorted(table.items()):
            node = self._locate(root, path)
            if node is None:
                print(f"  note: {root}: no field {'.'.join(path)}", file=sys.stderr)
                continue
            ext = _extensions(node, ft)
            for k, v in ext.items():
                if k in node and node[k] != v:
                    print(f"  conflict: {root} {'.'.join(path)} {k}: {node[k]} vs {v}", file=sys.stderr)
                node[k] = v

    def _locate(self, root: str, path: tuple[str, ...]) -> dict[str, Any] | None:
        """The property node (inside its parent definition) that `path` names."""
        definition: dict[str, Any] | None = self.definitions[root]
        node: dict[str, Any] | None = None
        for name in path:
            if definition is None:
                return None
            node = (definition.get("properties") or {}).get(name)
            if node is None:
                return None
            definition = self._definition_of(node)
        return node

    def _definition_of(self, node: dict[str, Any]) -> dict[str, Any] | None:
        while node.get("type") == "array":
            node = node["items"]
        ref = _ref_name(node)
        return self.definitions[ref] if ref else None


def _ref_name(node: dict[str, Any]) -> str | None:
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        return str(all_of[0]["$ref"]).removeprefix(REF_PREFIX)
    return None


def _extensions(node: dict[str, Any], ft: FieldType) -> dict[str, Any]:
    ext: dict[str, Any] = {}
    if node.get("type") == "array":
        if ft.smp == "merge":
            ext["x-kubernetes-patch-strategy"] = "merge,retainKeys" if ft.retain_keys else "merge"
            if ft.merge_key:
                ext["x-kubernetes-patch-merge-key"] = ft.merge_key
        ext["x-kubernetes-list-type"] = ft.ssa if ft.ssa in ("map", "set") else "atomic"
        if ft.ssa == "map":
            ext["x-kubernetes-list-map-keys"] = list(ft.keys)
    else:
        if ft.retain_keys:
            ext["x-kubernetes-patch-strategy"] = "retainKeys"
        elif ft.smp == "replace":
            ext["x-kubernetes-patch-strategy"] = "replace"
        if ft.ssa == "atomic":
            ext["x-kubernetes-map-type"] = "atomic"
    return ext


def main() -> None:
    gen = Generator()
    kinds: dict[str, str] = {}
    for group, version, kind, cls_name in KINDS:
        name = gen.add_class(cls_name)
        definition = gen.definitions[name]
        definition["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
        metadata = definition["properties"].get("metadata")
        if metadata is not None and "description" not in metadata:
            # the client drops descriptions of struct-typed fields; this one is the same everywhere
            definition["properties"]["metadata"] = {"description": METADATA_DESC, **metadata}
        kinds[f"{group}/{version}/{kind}"] = name
    for cls_name in EXTRA:
        name = gen.add_class(cls_name)
        if cls_name in EXTRA_GVK:
            gen.definitions[name]["x-kubernetes-group-version-kind"] = EXTRA_GVK[cls_name]
    for group, _version, kind, cls_name in KINDS:
        field_types = builtin_field_types(group, kind)
        assert isinstance(field_types, TableFieldTypes)
        gen.apply_field_types(upstream_name(cls_name), field_types.table)
    out = {"kinds": kinds, "definitions": dict(sorted(gen.definitions.items()))}
    text = json.dumps(out, sort_keys=False, separators=(",", ":"), ensure_ascii=False)
    OUT.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(gen.definitions)} definitions, {len(text)} bytes")
    for name, cls_name in sorted(gen.class_of.items()):
        if name.startswith("io.k8s.api.core.") and not cls_name.startswith("Core"):
            continue
        print(f"  {cls_name:45} {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
