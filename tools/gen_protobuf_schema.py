"""Generate clusterset/apiserver/http/protobuf_schema.json from the upstream `generated.proto` files.

kubectl >= 1.32 sends typed create/update bodies as `application/vnd.kubernetes.protobuf`; the
decoder in `clusterset.apiserver.http.protobuf` turns them into the dicts the JSON encoding would give,
driven by the table this script writes. Run it by hand and commit the JSON (not the .proto files):

    .venv/bin/python tools/gen_protobuf_schema.py --protos /tmp/protos \\
        --descriptors "$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.33" \\
        --descriptors /usr/lib/google-cloud-sdk/bin/anthoscli

Inputs, and why each is needed:

- `--protos DIR`: the upstream go-to-protobuf `generated.proto` texts laid out by import path
  (`DIR/k8s.io/api/core/v1/generated.proto`, `DIR/k8s.io/apimachinery/pkg/apis/meta/v1/...`). They
  give messages, field numbers, types, `repeated` and `map<,>`. Doc comments may be stripped.
- the official `kubernetes` Python client (a test dependency): proto field names are *mostly* the
  JSON names, but not always (`aPIVersion`, `uID`, `aPIGroup`, `ref` -> `$ref`,
  `xKubernetesPreserveUnknownFields` -> `x-kubernetes-preserve-unknown-fields`), and Go structs
  embedded with `json:",inline"` (Volume.volumeSource, Probe.handler, ...) are sub-messages in
  protobuf but flat in JSON. The client's `attribute_map` gives the JSON names, and a field whose
  name is unknown there but whose message's JSON names all belong to the parent is inline.
- `--descriptors BINARY` (optional, repeatable): Go binaries built with the gogo-protobuf
  registrations (kubectl, anything vendoring k8s.io/api) carry every `generated.proto` as a gzipped
  FileDescriptorProto with the `(gogoproto.nullable)` option. gogo always writes non-pointer
  scalars, even when zero, while JSON omits them (`omitempty`): the decoder must drop zero values of
  non-pointer fields and keep those of pointer fields (`replicas: 0`). The descriptors say which is
  which, and double as a check of the .proto texts (numbers, names, repeated-ness must agree).
  Fields with no descriptor are treated as non-pointer (zero values dropped). Fields the API marks
  required (per the Python client) keep their zero values too: they have no `omitempty`.

The committed table was generated from these texts (path under staging/src/ of the repo@commit),
checked against kubectl 1.33's descriptors (apiextensions: those in gcloud's anthoscli):
  kubernetes/kubernetes@0032f46b k8s.io/api/core/v1 (1.35 era), @0122c43a apps/v1, @008b3652 batch/v1
  and networking/v1, @081ac6b5 rbac/v1, @b94367ca discovery/v1, @1672e6d6 coordination/v1,
  @0a893867 events/v1, @01d0b727 scheduling/v1, @07ef5fd7 authentication/v1, @06726ca7 autoscaling/v1,
  @0f9f0907 apimachinery api/resource, @009a4a8b util/intstr, @203d8ac8 runtime;
  aaron-prindle/kubernetes@25d85c8f apimachinery apis/meta/v1; LogicalShark/kubernetes@af8834bd
  policy/v1; lalitc375/kubernetes@44e034a1 apiextensions-apiserver apis/apiextensions/v1.
The review kinds (authorization.k8s.io/v1, authentication.k8s.io/v1 TokenReview and SelfSubjectReview,
authentication.k8s.io/v1beta1 SelfSubjectReview; `kubectl auth can-i/whoami` send them as protobuf)
were added from .proto text rendered from kubectl 1.33's own descriptors of those packages (with
`+protobuf.nullable=true` restored on ExtraValue); every message they share with the table above
came out identical.

Only the messages reachable from the served kinds (KINDS) are kept. Output layout:

    {"kinds": {"apps/v1/Deployment": "apps.v1.Deployment", ...},
     "anyVersionKinds": {"DeleteOptions": "meta.v1.DeleteOptions", ...},
     "special": {"apiextensions.v1.JSONSchemaPropsOrBool": "orBool", ...},
     "messages": {"apps.v1.Deployment": [[1, "metadata", "meta.v1.ObjectMeta", 0], ...], ...}}

A field is [number, jsonName, type, flags(, mapKeyType)] in declaration (= Go struct = JSON)
order. `type` is a scalar (`string`, `int32`, `bytes`, ...), a message name (has a dot) or one of
the apimachinery types with their own JSON form: `@quantity`, `@intorstring`, `@time`, `@microtime`,
`@duration`, `@rawjson`. Flags: 1 repeated, 2 map (type is the value type), 4 inline, 8 keep zero
values (a pointer field).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "clusterset" / "apiserver" / "protobuf_schema.json"

REPEATED, MAP, INLINE, KEEP_ZERO = 1, 2, 4, 8

# (apiVersion, kind, proto message)
KINDS: list[tuple[str, str, str]] = [
    ("v1", "Namespace", "k8s.io.api.core.v1.Namespace"),
    ("v1", "Service", "k8s.io.api.core.v1.Service"),
    ("v1", "Endpoints", "k8s.io.api.core.v1.Endpoints"),
    ("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap"),
    ("v1", "Secret", "k8s.io.api.core.v1.Secret"),
    ("v1", "ServiceAccount", "k8s.io.api.core.v1.ServiceAccount"),
    ("v1", "Event", "k8s.io.api.core.v1.Event"),
    ("v1", "Pod", "k8s.io.api.core.v1.Pod"),
    ("v1", "Node", "k8s.io.api.core.v1.Node"),
    ("v1", "Binding", "k8s.io.api.core.v1.Binding"),
    ("v1", "ResourceQuota", "k8s.io.api.core.v1.ResourceQuota"),
    ("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment"),
    ("apps/v1", "ReplicaSet", "k8s.io.api.apps.v1.ReplicaSet"),
    ("apps/v1", "StatefulSet", "k8s.io.api.apps.v1.StatefulSet"),
    ("apps/v1", "DaemonSet", "k8s.io.api.apps.v1.DaemonSet"),
    ("batch/v1", "Job", "k8s.io.api.batch.v1.Job"),
    ("batch/v1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
    ("discovery.k8s.io/v1", "EndpointSlice", "k8s.io.api.discovery.v1.EndpointSlice"),
    ("coordination.k8s.io/v1", "Lease", "k8s.io.api.coordination.v1.Lease"),
    ("events.k8s.io/v1", "Event", "k8s.io.api.events.v1.Event"),
    ("rbac.authorization.k8s.io/v1", "Role", "k8s.io.api.rbac.v1.Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "k8s.io.api.rbac.v1.ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "k8s.io.api.rbac.v1.RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "k8s.io.api.rbac.v1.ClusterRoleBinding"),
    ("policy/v1", "PodDisruptionBudget", "k8s.io.api.policy.v1.PodDisruptionBudget"),
    ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
    ("networking.k8s.io/v1", "Ingress", "k8s.io.api.networking.v1.Ingress"),
    ("scheduling.k8s.io/v1", "PriorityClass", "k8s.io.api.scheduling.v1.PriorityClass"),
    ("authentication.k8s.io/v1", "TokenRequest", "k8s.io.api.authentication.v1.TokenRequest"),
    ("authentication.k8s.io/v1", "TokenReview", "k8s.io.api.authentication.v1.TokenReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "k8s.io.api.authentication.v1.SelfSubjectReview"),
    ("authentication.k8s.io/v1beta1", "SelfSubjectReview", "k8s.io.api.authentication.v1beta1.SelfSubjectReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "k8s.io.api.authorization.v1.SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", "k8s.io.api.authorization.v1.SelfSubjectRulesReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview", "k8s.io.api.authorization.v1.SubjectAccessReview"),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", "k8s.io.api.authorization.v1.LocalSubjectAccessReview"),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ),
]
# meta/v1 types every group version registers (client-go sends DeleteOptions as `apps/v1`, ...).
ANY_VERSION_KINDS: dict[str, str] = {
    "DeleteOptions": "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "Status": "k8s.io.apimachinery.pkg.apis.meta.v1.Status",
}

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1."
# Messages whose JSON form is not an object of their fields.
SPECIAL_TYPES: dict[str, str] = {
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "@quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "@intorstring",
    META + "Time": "@time",
    META + "MicroTime": "@microtime",
    META + "Duration": "@duration",
    META + "FieldsV1": "@rawjson",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "@rawjson",
    APIEXT + "JSON": "@rawjson",
}
# Messages kept as tables but rendered by a rule of their own (MarshalJSON in Go).
SPECIAL_MESSAGES: dict[str, str] = {
    APIEXT + "JSONSchemaPropsOrArray": "orArray",
    APIEXT + "JSONSchemaPropsOrBool": "orBool",
    APIEXT + "JSONSchemaPropsOrStringArray": "orStringArray",
}
SHORT_PREFIXES = (
    "k8s.io.api.",
    "k8s.io.apimachinery.pkg.apis.",
    "k8s.io.apiextensions_apiserver.pkg.apis.",
    "k8s.io.apimachinery.pkg.",
)
SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}


def short(name: str) -> str:
    for prefix in SHORT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


# ------------------------------------------------------------------------------ .proto parsing
@dataclass
class ProtoField:
    name: str
    number: int
    type: str  # scalar or fully qualified message name (resolved after parsing)
    repeated: bool = False
    map_key: str | None = None


@dataclass
class ProtoMessage:
    name: str  # fully qualified, no leading dot
    fields: list[ProtoField] = field(default_factory=list)
    comment: str = ""


TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_.][A-Za-z0-9_.]*|-?\d+|[{}\[\]<>=;,()]""",
    re.S,
)


def tokenize(text: str) -> list[str]:
    """Tokens with comments kept (they carry `+protobuf.nullable=true`) and whitespace dropped."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"unexpected character {text[pos]!r} at offset {pos}")
        token = match.group(0)
        pos = match.end()
        if not token.isspace():
            out.append(token)
    return out


class ProtoParser:
    """Just enough of proto2 for go-to-protobuf output: package, import, option, message (nested
    too), enum (skipped), optional/required/repeated fields, map<K, V>, reserved, field options."""

    def __init__(self, text: str, source: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.source = source
        self.package = ""
        self.comment = ""  # comments seen since the last statement
        self.messages: list[ProtoMessage] = []

    def fail(self, what: str) -> ValueError:
        near = " ".join(self.tokens[self.pos : self.pos + 8])
        return ValueError(f"{self.source}: {what} near {near!r}")

    def next(self) -> str:
        """The next token, collecting comments into `self.comment`."""
        while self.pos < len(self.tokens) and self.tokens[self.pos].startswith(("//", "/*")):
            self.comment += self.tokens[self.pos] + "\n"
            self.pos += 1
        if self.pos >= len(self.tokens):
            raise self.fail("unexpected end of file")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def peek(self) -> str | None:
        save, comment = self.pos, self.comment
        try:
            return self.next()
        except ValueError:
            return None
        finally:
            self.pos, self.comment = save, comment

    def expect(self, token: str) -> None:
        got = self.next()
        if got != token:
            raise self.fail(f"expected {token!r}, got {got!r}")

    def skip_statement(self) -> None:
        depth = 0
        while True:
            token = self.next()
            if token == "{":
                depth += 1
            elif token == "}":
                depth -= 1
                if depth == 0:
                    return
            elif token == ";" and depth == 0:
                return

    def parse(self) -> list[ProtoMessage]:
        self.comment = ""
        while self.peek() is not None:
            token = self.next()
            if token == "package":
                self.package = self.next()
                self.expect(";")
            elif token == "message":
                self.parse_message(self.package)
            elif token in ("syntax", "import", "option", "enum", "service", "extend"):
                self.skip_statement()
            elif token == ";":
                pass
            else:
                raise self.fail(f"unexpected {token!r}")
            self.comment = ""
        return self.messages

    def parse_message(self, scope: str) -> None:
        comment, self.comment = self.comment, ""
        message = ProtoMessage(f"{scope}.{self.next()}", comment=comment)
        self.messages.append(message)
        self.expect("{")
        while True:
            token = self.next()
            if token == "}":
                return
            if token == "message":
                self.parse_message(message.name)
            elif token in ("enum", "option", "reserved", "extensions"):
                self.skip_statement()
            elif token == "oneof":
                raise self.fail("oneof is not used by go-to-protobuf")
            elif token == "map":
                self.expect("<")
                key = self.next()
                self.expect(",")
                value = self.next()
                self.expect(">")
                message.fields.append(self.parse_field_tail(value, map_key=key))
            elif token in ("optional", "required", "repeated"):
                message.fields.append(self.parse_field_tail(self.next(), repeated=token == "repeated"))
            elif token == ";":
                pass
            else:
                raise self.fail(f"unexpected {token!r} in message {message.name}")
            self.comment = ""

    def parse_field_tail(self, type_: str, *, repeated: bool = False, map_key: str | None = None) -> ProtoField:
        name = self.next()
        self.expect("=")
        number = int(self.next())
        token = self.next()
        if token == "[":
            while self.next() != "]":
                pass
            token = self.next()
        if token != ";":
            raise self.fail(f"expected ';' after field {name}")
        return ProtoField(name, number, type_, repeated, map_key)


def load_protos(root: Path) -> dict[str, ProtoMessage]:
    messages: dict[str, ProtoMessage] = {}
    files = sorted(root.rglob("*.proto"))
    if not files:
        raise SystemExit(f"no .proto files under {root}")
    for path in files:
        parser = ProtoParser(path.read_text(encoding="utf-8"), str(path))
        for message in parser.parse():
            messages[message.name] = message
    # Resolve type references the protoc way: innermost scope outwards, then fully qualified.
    for message in messages.values():
        for f in message.fields:
            if f.type in SCALARS:
                continue
            if f.type.startswith("."):
                f.type = f.type[1:]
                continue
            scope = message.name
            while True:
                candidate = f"{scope}.{f.type}" if scope else f.type
                if candidate in messages or candidate in SPECIAL_TYPES:
                    f.type = candidate
                    break
                if not scope:
                    break  # left as written; reported if reachable
                scope = scope.rpartition(".")[0]
    return messages


# ------------------------------------------------------------------------ descriptors in binaries
def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def wire_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


@dataclass
class DescField:
    name: str
    repeated: bool
    type_name: str  # ".pkg.Msg" for messages, "" for scalars
    scalar: str  # proto scalar type name, "" for messages
    nullable: bool
    source: int = 0  # index of the binary it came from: the first one is the reference


GOGO_NULLABLE = 65001
# FieldDescriptorProto.Type numbers.
DESCRIPTOR_SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32", 8: "bool",
    9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
}


def descriptors_from_binary(path: Path, source: int) -> dict[str, dict[int, DescField]]:
    """Every gzipped FileDescriptorProto in a Go binary, as message -> number -> field."""
    data = path.read_bytes()
    found: dict[str, dict[int, DescField]] = {}
    for match in re.finditer(rb"\x1f\x8b\x08\x00\x00[\x00\x09]", data):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[match.start() : match.start() + (1 << 20)])
        except zlib.error:
            continue
        if not raw.startswith(b"\n") or b".proto" not in raw[:200]:
            continue
        try:
            top = wire_fields(raw)
        except (ValueError, IndexError):
            continue
        package = next((v.decode() for n, v in top if n == 2 and isinstance(v, bytes)), "")
        for number, value in top:
            if number == 4 and isinstance(value, bytes):
                collect_descriptor(value, package, found, source)
    return found


def collect_descriptor(data: bytes, scope: str, found: dict[str, dict[int, DescField]], source: int) -> None:
    parts = wire_fields(data)
    name = next(v.decode() for n, v in parts if n == 1 and isinstance(v, bytes))
    full = f"{scope}.{name}"
    table = found.setdefault(full, {})
    for number, value in parts:
        if number == 3 and isinstance(value, bytes):
            collect_descriptor(value, full, found, source)
        if number != 2 or not isinstance(value, bytes):
            continue
        attrs = dict(wire_fields(value))
        options = attrs.get(8, b"")
        nullable = True
        if isinstance(options, bytes):
            for opt_number, opt_value in wire_fields(options):
                if opt_number == GOGO_NULLABLE:
                    nullable = bool(opt_value)
        type_name = attrs.get(6, b"")
        number_, name_ = attrs[3], attrs[1]
        if not isinstance(number_, int) or not isinstance(name_, bytes):
            raise ValueError(f"malformed field descriptor in {full}")
        table[number_] = DescField(
            name=name_.decode(),
            repeated=attrs.get(4) == 3,
            type_name=type_name.decode() if isinstance(type_name, bytes) else "",
            scalar=DESCRIPTOR_SCALARS.get(attrs.get(5, 0), "") if isinstance(attrs.get(5), int) else "",
            nullable=nullable,
            source=source,
        )


# ------------------------------------------------------------------------------- JSON names
def python_client_attrs(message: str) -> list[str] | None:
    """The JSON names of a message per the official Python client, or None if it has no model."""
    model = python_client_model(message)
    return None if model is None else list(model.attribute_map.values())


def python_client_required(message: str) -> set[str]:
    """JSON names of the fields the API marks required: Go writes those even when zero (no omitempty)."""
    model = python_client_model(message)
    fields = getattr(model, "model_fields", None) or {}
    return {model.attribute_map[k] for k, f in fields.items() if f.is_required() and k in model.attribute_map}


def python_client_model(message: str) -> Any:
    import kubernetes.client.models as models

    package, _, name = message.rpartition(".")
    parts = package.split(".")
    version = parts[-1].capitalize()
    group = parts[-2].capitalize() if len(parts) >= 2 else ""
    if package.startswith("k8s.io.apimachinery"):
        group = ""
    for candidate in (f"{group}{version}{name}", f"{version}{name}"):
        cls = getattr(models, candidate, None)
        if cls is not None:
            return cls
    return None


def kebab_extension(name: str) -> str:
    """`xKubernetesListType` -> `x-kubernetes-list-type`, the JSON name of OpenAPI extensions."""
    if not re.match(r"x[A-Z]", name):
        return name
    return re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), name)


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# ---------------------------------------------------------------------------------- generation
@dataclass
class Generator:
    messages: dict[str, ProtoMessage]
    descriptors: dict[str, dict[int, DescField]]
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    out: dict[str, list[list[Any]]] = field(default_factory=dict)
    special: dict[str, str] = field(default_factory=dict)
    no_descriptor: int = 0

    def type_ref(self, type_: str) -> str:
        if type_ in SCALARS:
            return type_
        if type_ in SPECIAL_TYPES:
            return SPECIAL_TYPES[type_]
        if type_ not in self.messages:
            self.errors.append(f"unknown message type {type_}")
            return type_
        self.visit(type_)
        return short(type_)

    def visit(self, name: str) -> None:
        key = short(name)
        if key in self.out:
            return
        rows: list[list[Any]] = []
        self.out[key] = rows  # before recursing: messages refer to themselves (JSONSchemaProps)
        message = self.messages[name]
        if name in SPECIAL_MESSAGES:
            self.special[key] = SPECIAL_MESSAGES[name]
        if "+protobuf.nullable=true" in message.comment and [f.name for f in message.fields] == ["items"]:
            self.special[key] = "items"  # ExtraValue, Verbs: a list in JSON
        attrs = None if key in self.special else python_client_attrs(name)
        required = set() if key in self.special else python_client_required(name)
        if attrs is None and key not in self.special:
            self.warnings.append(f"{name}: no Python client model; proto names used as JSON names")
        desc = self.descriptors.get(name)
        if desc is None:
            self.warnings.append(f"{name}: no descriptor; zero values of its scalars are dropped")
        for f in message.fields:
            flags = REPEATED if f.repeated else 0
            if f.map_key is not None:
                flags |= MAP
            json_name = kebab_extension(f.name)
            if attrs is not None:
                matches = [a for a in attrs if norm(a) == norm(f.name)]
                if len(matches) == 1:
                    json_name = matches[0]
                elif not f.repeated and f.map_key is None and f.type in self.messages and self.is_inline(f, attrs):
                    flags |= INLINE
                else:
                    self.warnings.append(f"{name}.{f.name}: not in the Python client; JSON name assumed")
            self.check_descriptor(name, f, desc)
            d = desc.get(f.number) if desc else None
            if d is None:
                self.no_descriptor += 1
            scalar_like = not f.repeated and f.map_key is None
            if scalar_like and ((d is not None and d.nullable) or json_name in required):
                flags |= KEEP_ZERO
            row: list[Any] = [f.number, json_name, self.type_ref(f.type), flags]
            if f.map_key is not None:
                row.append(f.map_key)
            rows.append(row)

    def is_inline(self, f: ProtoField, parent_attrs: list[str]) -> bool:
        child = python_client_attrs(f.type)
        if child is None:
            child = [c.name for c in self.messages[f.type].fields]
        return bool(child) and {norm(c) for c in child} <= {norm(a) for a in parent_attrs}

    def check_descriptor(self, message: str, f: ProtoField, desc: dict[int, DescField] | None) -> None:
        if not desc:
            return
        d = desc.get(f.number)
        if d is None:
            return
        where = f"{message}.{f.name} = {f.number}"
        if d.name != f.name:  # renamed upstream (aPIVersion -> apiVersion): same wire format
            self.warnings.append(f"{where}: descriptor calls field {f.number} {d.name!r}")
        if d.repeated != (f.repeated or f.map_key is not None):
            self.errors.append(f"{where}: repeated-ness differs from the descriptor")
        if f.map_key is None and f.type not in SCALARS and d.type_name and d.type_name[1:] != f.type:
            self.errors.append(f"{where}: type {f.type} but descriptor says {d.type_name}")
        if f.map_key is None and f.type in SCALARS and d.scalar != f.type:
            self.errors.append(f"{where}: type {f.type} but descriptor says {d.scalar or d.type_name}")

    def missing_from_text(self) -> None:
        """Fields the reference binary knows but the .proto text lacks: the text is too old (or was
        mistyped). Fields only older binaries know were removed upstream (ObjectMeta.clusterName)."""
        for key in self.out:
            full = next(n for n in self.messages if short(n) == key)
            desc = self.descriptors.get(full, {})
            have = {f.number for f in self.messages[full].fields}
            for number, d in sorted(desc.items()):
                if number not in have:
                    report = self.errors if d.source == 0 else self.warnings
                    report.append(f"{full}: field {d.name} = {number} is in a descriptor but not the .proto")


def generate(protos: Path, binaries: list[Path]) -> tuple[dict[str, Any], Generator]:
    messages = load_protos(protos)
    descriptors: dict[str, dict[int, DescField]] = {}
    for source, binary in enumerate(binaries):
        for name, fields in descriptors_from_binary(binary, source).items():
            known = descriptors.setdefault(name, {})
            for number, d in fields.items():
                known.setdefault(number, d)  # the first binary given wins
    gen = Generator(messages, descriptors)
    kinds: dict[str, str] = {}
    for api_version, kind, message in KINDS:
        if message not in messages:
            gen.errors.append(f"{api_version} {kind}: message {message} not found in {protos}")
            continue
        gen.visit(message)
        kinds[f"{api_version}/{kind}"] = short(message)
    any_version: dict[str, str] = {}
    for kind, message in ANY_VERSION_KINDS.items():
        gen.visit(message)
        any_version[kind] = short(message)
    if descriptors:
        gen.missing_from_text()
    table = {
        "comment": "Generated by tools/gen_protobuf_schema.py from upstream generated.proto files; do not edit.",
        "kinds": kinds,
        "anyVersionKinds": any_version,
        "special": dict(sorted(gen.special.items())),
        "messages": {k: gen.out[k] for k in sorted(gen.out)},
    }
    return table, gen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protos", type=Path, required=True, help="root of the generated.proto tree")
    parser.add_argument("--descriptors", type=Path, action="append", default=[], help="Go binary with descriptors")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--verbose", action="store_true", help="print every warning")
    args = parser.parse_args()
    table, gen = generate(args.protos, args.descriptors)
    for warning in gen.warnings if args.verbose else []:
        print("warning:", warning, file=sys.stderr)
    for error in gen.errors:
        print("error:", error, file=sys.stderr)
    if gen.errors:
        raise SystemExit(1)
    text = json.dumps(table, separators=(",", ":"), ensure_ascii=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    fields = sum(len(rows) for rows in table["messages"].values())
    print(
        f"wrote {args.out} ({len(text)} bytes, gzip {len(gzip.compress(text.encode()))}): "
        f"{len(table['kinds'])} kinds, {len(table['messages'])} messages, {fields} fields, "
        f"{gen.no_descriptor} fields without a descriptor, {len(gen.warnings)} warnings"
    )


if __name__ == "__main__":
    main()
