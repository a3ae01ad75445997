"""OpenAPI documents: the /openapi/v3 index and per-group-version documents, and a minimal /openapi/v2.

Clients read these for three things (shared/specs/kube-apiserver.md §7):
- kubectl's `--validate=strict` looks for the `fieldValidation` query parameter on the PATCH
  operation of the object's GVK (or core/v1 Namespace's, for GVs it cannot find);
- kubectl picks strategic merge patch only when the PATCH operation accepts
  `application/strategic-merge-patch+json`, so custom resources must never advertise it;
- `kubectl explain` and client-side apply read the kind schemas (found by their
  `x-kubernetes-group-version-kind`) and their patch/list-type extensions.
Documents are pure functions of the served resources; the caller caches them by registry generation.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from clusterset.apiserver.meta.version import KUBE_VERSION
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.schema import builtin as builtin_schemas

REF = builtin_schemas.REF_PREFIX
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
PATCH = f"{META}.Patch"

API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this from "
    "the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
METADATA_DESC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
LIST_METADATA_DESC = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)

PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json")
SMP = "application/strategic-merge-patch+json"
RESPONSE_TYPES = ("application/json", "application/yaml")
# What kube-openapi answers to either protobuf Accept form. The deprecated request form
# (`...spec.v2@v1.0+protobuf`) is not a valid response type: Go's mime parser rejects the `@`.
OPENAPI_V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# Subresources with a fixed request/response kind (the rest use the resource's own kind).
_SUBRESOURCE_GVK = {
    "scale": ("autoscaling", "v1", "Scale"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
    "binding": ("", "v1", "Binding"),
}
# Which operations each subresource has: HTTP method -> x-kubernetes-action.
_SUBRESOURCE_OPS: dict[str, tuple[str, ...]] = {
    "status": ("get", "put", "patch"),
    "scale": ("get", "put", "patch"),
    "finalize": ("put",),
    "token": ("post",),
    "binding": ("post",),
}


# ---------------------------------------------------------------------------- index, hash, v2
def openapi_v3_index(base_path: str, docs: dict[str, str]) -> dict[str, Any]:
    """The /openapi/v3 discovery document; URLs carry the cluster's base path and the doc hash."""
    base = base_path.rstrip("/")
    return {"paths": {key: {"serverRelativeURL": f"{base}/openapi/v3/{key}?hash={digest}"}
                      for key, digest in sorted(docs.items())}}


def openapi_hash(doc: dict[str, Any]) -> str:
    """Uppercase hex SHA-512 of the canonical (key-sorted, compact) JSON: changes with the document."""
    return hashlib.sha512(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest().upper()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def openapi_v2_protobuf() -> bytes:
    """A gnostic `openapi.v2.Document`: swagger (1), info (2: title 1, version 2), empty paths (8)
    and definitions (9). kubectl 1.27/1.28 need /openapi/v2 to exist; with no definitions they
    skip client-side schema validation for every kind."""
    info = _field(1, b"Kubernetes") + _field(2, KUBE_VERSION.encode())
    return _field(1, b"2.0") + _field(2, info) + _field(8, b"") + _field(9, b"")


def openapi_v2_json() -> dict[str, Any]:
    """The same minimal document for `Accept: application/json`."""
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION}, "paths": {},
            "definitions": {}}


# ---------------------------------------------------------------------------- names
def _ref(name: str, **extra: Any) -> dict[str, Any]:
    return {**extra, "allOf": [{"$ref": REF + name}]}


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _reversed_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def _package(group: str) -> str:
    """Upstream schema package of a group: `io.k8s.api.apps` for built-ins, reversed domain for CRs."""
    known = {"": "io.k8s.api.core", "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"}
    if group in known:
        return known[group]
    if group.endswith(".k8s.io"):
        return "io.k8s.api." + group.removesuffix(".k8s.io").split(".")[0]
    if "." not in group:
        return "io.k8s.api." + group
    return _reversed_group(group)


def schema_name(rt: ResourceType) -> str:
    """`io.k8s.api.apps.v1.Deployment`; CRs `com.example.stable.v1.CronTab`."""
    if not rt.is_crd:
        name = builtin_schemas.definition_name(rt.group, rt.version, rt.kind)
        if name is not None:
            return name
        return f"{_package(rt.group)}.{rt.version}.{rt.kind}"
    return f"{_reversed_group(rt.group)}.{rt.version}.{rt.kind}"


def _ident(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[.\-]", text) if p)


def _op_prefix(rt: ResourceType) -> str:
    """`CoreV1`, `AppsV1`, `RbacAuthorizationV1`, `StableExampleComV1`: upstream operationId infix."""
    group = "Core" if not rt.group else _ident(rt.group.removesuffix(".k8s.io"))
    return group + rt.version[:1].upper() + rt.version[1:]


def _tag(rt: ResourceType) -> str:
    if not rt.group:
        return f"core_{rt.version}"
    ident = _ident(rt.group.removesuffix(".k8s.io"))
    return f"{ident[:1].lower()}{ident[1:]}_{rt.version}"


# ---------------------------------------------------------------------------- parameters
def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": True}}


P_PRETTY = _query("pretty", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent "
                            "indicates a browser or command-line HTTP tool (curl and wget).")
P_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted. Valid values "
                             "are: - All: all dry run stages will be processed")
P_FIELD_MANAGER = _query("fieldManager", "fieldManager is a name associated with the actor or entity that is "
                                         "making these changes. It is required for apply requests "
                                         "(application/apply-patch) but optional for non-apply patch types.")
P_FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped. - Warn: "
    "unknown fields are dropped and a warning header is sent (the default). - Strict: the request fails with a "
    "BadRequest error if any unknown fields would be dropped or if any duplicate fields are present.")
P_FORCE = _query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting "
                          "fields owned by other people. Must be unset for non-apply patch requests.", "boolean")
P_GRACE = _query("gracePeriodSeconds", "The duration in seconds before the object should be deleted. Zero means "
                                       "delete immediately.", "integer")
P_ORPHAN = _query("orphanDependents", "Deprecated: please use the PropagationPolicy, this field will be deprecated "
                                      "in 1.7.", "boolean")
P_PROPAGATION = _query("propagationPolicy", "Whether and how garbage collection will be performed: 'Orphan', "
                                            "'Background' or 'Foreground'.")
P_LIST = [
    _query("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to "
                            "everything."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to "
                            "everything."),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be "
                              "served from."),
    _query("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list "
                                   "calls."),
    _query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources and return them as a stream of add, update, "
                    "and remove notifications.", "boolean"),
]


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


P_NAMESPACE = _path_param("namespace", "object name and auth scope, such as for teams and projects")


# ---------------------------------------------------------------------------- operations
def _content(schema: str) -> dict[str, Any]:
    return {ct: {"schema": {"$ref": REF + schema}} for ct in RESPONSE_TYPES}


def _responses(schema: str, *codes: str) -> dict[str, Any]:
    text = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {code: {"description": text[code], "content": _content(schema)} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


class _Doc:
    """One group-version document under construction."""

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}

    def need(self, name: str) -> None:
        """Include a built-in definition and everything it refers to."""
        defs = builtin_schemas.definitions()
        for dep in sorted(builtin_schemas.closure(name)):
            self.schemas.setdefault(dep, defs[dep])

    def operation(self, rt: ResourceType, *, method: str, action: str, op_id: str, description: str,
                  gvk: tuple[str, str, str], schema: str, params: list[dict[str, Any]],
                  body: str | None = None, codes: tuple[str, ...] = ("200",)) -> dict[str, Any]:
        op: dict[str, Any] = {
            "tags": [_tag(rt)], "description": description, "operationId": op_id, "parameters": params,
        }
        if method == "patch":
            types = PATCH_TYPES if rt.is_crd else (*PATCH_TYPES, SMP)
            op["requestBody"] = {"content": {t: {"schema": {"$ref": REF + PATCH}} for t in types}, "required": True}
        elif body is not None:
            op["requestBody"] = {"content": {"*/*": {"schema": {"$ref": REF + body}}}, "required": True}
        op["responses"] = _responses(schema, *codes)
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = _gvk(*gvk)
        return op

    def add_resource(self, rt: ResourceType) -> None:
        kind_schema = schema_name(rt)
        self._add_kind_schema(rt, kind_schema)
        gvk = (rt.group, rt.version, rt.kind)
        prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
        scope = "Namespaced" if rt.namespaced else ""
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        collection = f"{prefix}{ns}/{rt.plural}"
        item = f"{collection}/{{name}}"
        ids = _op_prefix(rt)
        common = [P_NAMESPACE] if rt.namespaced else []
        name_param = _path_param("name", f"name of the {rt.kind}")
        verbs = set(rt.verbs)
        write = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
        patch_params = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION, P_FORCE]
        delete_params = [P_DRY_RUN, P_GRACE, P_ORPHAN, P_PROPAGATION]

        coll_ops: dict[str, Any] = {}
        if "list" in verbs:
            list_schema = self._add_list_schema(rt, kind_schema)
            coll_ops["get"] = self.operation(
                rt, method="get", action="list", op_id=f"list{ids}{scope}{rt.kind}",
                description=f"list or watch objects of kind {rt.kind}", gvk=gvk, schema=list_schema, params=P_LIST)
            if rt.namespaced:
                self.paths[f"{prefix}/{rt.plural}"] = {
                    "get": self.operation(
                        rt, method="get", action="list", op_id=f"list{ids}{rt.kind}ForAllNamespaces",
                        description=f"list or watch objects of kind {rt.kind}", gvk=gvk, schema=list_schema,
                        params=P_LIST),
                    "parameters": [P_PRETTY],
                }
        if "create" in verbs:
            coll_ops["post"] = self.operation(
                rt, method="post", action="post", op_id=f"create{ids}{scope}{rt.kind}",
                description=f"create {_article(rt.kind)} {rt.kind}", gvk=gvk, schema=kind_schema, params=write,
                body=kind_schema, codes=("200", "201", "202"))
        if "deletecollection" in verbs:
            self.need(STATUS)
            self.need(DELETE_OPTIONS)
            coll_ops["delete"] = self.operation(
                rt, method="delete", action="deletecollection", op_id=f"delete{ids}Collection{scope}{rt.kind}",
                description=f"delete collection of {rt.kind}", gvk=gvk, schema=STATUS,
                params=[*delete_params, *[p for p in P_LIST if p["name"] not in ("allowWatchBookmarks", "watch")]],
                body=DELETE_OPTIONS)
        if coll_ops:
            self.paths[collection] = {**coll_ops, "parameters": [*common, P_PRETTY]}

        item_ops: dict[str, Any] = {}
        if "get" in verbs:
            item_ops["get"] = self.operation(
                rt, method="get", action="get", op_id=f"read{ids}{scope}{rt.kind}",
                description=f"read the specified {rt.kind}", gvk=gvk, schema=kind_schema, params=[])
        if "update" in verbs:
            item_ops["put"] = self.operation(
                rt, method="put", action="put", op_id=f"replace{ids}{scope}{rt.kind}",
                description=f"replace the specified {rt.kind}", gvk=gvk, schema=kind_schema, params=write,
                body=kind_schema, codes=("200", "201"))
        if "patch" in verbs:
            self.need(PATCH)
            item_ops["patch"] = self.operation(
                rt, method="patch", action="patch", op_id=f"patch{ids}{scope}{rt.kind}",
                description=f"partially update the specified {rt.kind}", gvk=gvk, schema=kind_schema,
                params=patch_params, codes=("200", "201"))
        if "delete" in verbs:
            self.need(STATUS)
            self.need(DELETE_OPTIONS)
            item_ops["delete"] = self.operation(
                rt, method="delete", action="delete", op_id=f"delete{ids}{scope}{rt.kind}",
                description=f"delete {_article(rt.kind)} {rt.kind}", gvk=gvk, schema=STATUS, params=delete_params,
                body=DELETE_OPTIONS, codes=("200", "202"))
        if item_ops:
            self.paths[item] = {**item_ops, "parameters": [name_param, *common, P_PRETTY]}

        for sub in rt.subresources:
            self._add_subresource(rt, sub, item, ids, scope, kind_schema, [name_param, *common, P_PRETTY])

    def _add_subresource(self, rt: ResourceType, sub: str, item: str, ids: str, scope: str, kind_schema: str,
                         path_params: list[dict[str, Any]]) -> None:
        methods = _SUBRESOURCE_OPS.get(sub)
        if methods is None:
            return
        if sub in _SUBRESOURCE_GVK:
            gvk = _SUBRESOURCE_GVK[sub]
            found = builtin_schemas.definition_name(*gvk)
            if found is None:
                return
            schema = found
            self.need(schema)
        else:
            gvk = (rt.group, rt.version, rt.kind)
            schema = kind_schema
        suffix = _ident(sub)
        what = {"get": ("read", "read {sub} of the specified {kind}"),
                "put": ("replace", "replace {sub} of the specified {kind}"),
                "patch": ("patch", "partially update {sub} of the specified {kind}"),
                "post": ("create", "create {sub} of {article} {kind}")}
        ops: dict[str, Any] = {}
        for method in methods:
            verb, text = what[method]
            params: list[dict[str, Any]] = []
            codes: tuple[str, ...] = ("200",)
            body: str | None = None
            if method == "patch":
                self.need(PATCH)
                params = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION, P_FORCE]
                codes = ("200", "201")
            elif method in ("put", "post"):
                params = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
                body = schema
                codes = ("200", "201") if method == "put" else ("200", "201", "202")
            ops[method] = self.operation(
                rt, method=method, action=method, op_id=f"{verb}{ids}{scope}{rt.kind}{suffix}",
                description=text.format(sub=sub, kind=rt.kind, article=_article(rt.kind)), gvk=gvk, schema=schema,
                params=params, body=body, codes=codes)
        self.paths[f"{item}/{sub}"] = {**ops, "parameters": path_params}

    def _add_kind_schema(self, rt: ResourceType, name: str) -> None:
        if name in self.schemas:
            return
        if not rt.is_crd and name in builtin_schemas.definitions():
            self.need(name)
            return
        self.need(OBJECT_META)
        base = rt.schema if rt.is_crd and isinstance(rt.schema, dict) else None
        if base is None:
            base = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        props = dict(base.get("properties") or {})
        props["apiVersion"] = {"description": API_VERSION_DESC, "type": "string"}
        props["kind"] = {"description": KIND_DESC, "type": "string"}
        props["metadata"] = _ref(OBJECT_META, description=METADATA_DESC)
        schema = {k: v for k, v in base.items() if k not in ("properties", "x-kubernetes-group-version-kind")}
        schema["type"] = "object"
        schema["properties"] = dict(sorted(props.items()))
        schema["x-kubernetes-group-version-kind"] = [_gvk(rt.group, rt.version, rt.kind)]
        self.schemas[name] = schema

    def _add_list_schema(self, rt: ResourceType, kind_schema: str) -> str:
        name = kind_schema + "List"
        if name not in self.schemas:
            self.need(LIST_META)
            self.schemas[name] = {
                "description": f"{rt.list_kind} is a list of {rt.kind}",
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
                    "items": {"description": f"List of {rt.plural}.", "type": "array",
                              "items": _ref(kind_schema)},
                    "kind": {"description": KIND_DESC, "type": "string"},
                    "metadata": _ref(LIST_META, description=LIST_METADATA_DESC),
                },
                "x-kubernetes-group-version-kind": [_gvk(rt.group, rt.version, rt.list_kind)],
            }
        return name


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def openapi_v3_document(group: str, version: str, resources: list[ResourceType]) -> dict[str, Any]:
    """The /openapi/v3/apis/<group>/<version> (or api/v1) document for the served resources."""
    doc = _Doc(group, version)
    doc.schemas[PATCH] = {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    }
    for rt in sorted(resources, key=lambda r: r.plural):
        doc.add_resource(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": dict(sorted(doc.paths.items())),
        "components": {"schemas": dict(sorted(doc.schemas.items()))},
    }
