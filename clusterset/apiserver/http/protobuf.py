"""Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) as JSON-shaped dicts.

kubectl >= 1.32 sends typed creates and updates (`kubectl create configmap/deployment/...`,
`create token`, drain's evictions) as protobuf, and client-go has no JSON fallback for it, so the
server must read it. Everything downstream speaks JSON, so `decode_protobuf` returns exactly what
the JSON encoding of the same object would have given: JSON field names, Go's JSON forms of the
apimachinery types (Quantity, IntOrString, Time, MicroTime, Duration, RawExtension), base64 for
bytes, inline (embedded) structs flattened, and no zero values for non-pointer fields (gogo writes
them, JSON's `omitempty` does not).

The body is the magic `k8s\\x00` then a `runtime.Unknown` {1 typeMeta {1 apiVersion, 2 kind},
2 raw, 3 contentEncoding, 4 contentType}; `raw` is the object's own message. The wire reader is
generic; what each message means comes from protobuf_schema.json, generated from the upstream
generated.proto files by tools/gen_protobuf_schema.py (see there for the table's layout).
Unknown field numbers are skipped, as protobuf readers do. Anything malformed is a 400.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from clusterset.apiserver.meta import errors

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_SCHEMA_PATH = Path(__file__).with_name("protobuf_schema.json")
# Message nesting allowed in one body: deep enough for any CRD schema, far from Python's stack limit.
MAX_DEPTH = 200

_REPEATED, _MAP, _INLINE, _KEEP_ZERO = 1, 2, 4, 8
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
_WIRE_OF: dict[str, int] = {
    **dict.fromkeys(("int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool"), _VARINT),
    **dict.fromkeys(("fixed64", "sfixed64", "double"), _I64),
    **dict.fromkeys(("fixed32", "sfixed32", "float"), _I32),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class _Malformed(Exception):
    """Raised inside the reader; `decode_protobuf` turns it into a 400."""


@dataclass(frozen=True, slots=True)
class _Field:
    number: int
    name: str
    type: str  # scalar, message name (has a dot) or "@special"
    flags: int
    key_type: str

    @property
    def is_scalar(self) -> bool:
        return "." not in self.type and not self.type.startswith("@")


@dataclass(frozen=True)
class _Schema:
    kinds: dict[str, str]
    any_version: dict[str, str]
    special: dict[str, str]
    fields: dict[str, tuple[_Field, ...]]


@cache
def _schema() -> _Schema:
    """Read once, lazily: importing this module costs nothing."""
    with _SCHEMA_PATH.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    fields = {
        name: tuple(_Field(row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else "") for row in rows)
        for name, rows in data["messages"].items()
    }
    return _Schema(data["kinds"], data["anyVersionKinds"], data["special"], fields)


def supported_kinds() -> list[str]:
    """`apiVersion/kind` of every top-level type the table knows (for diagnostics and tests)."""
    return sorted(_schema().kinds)


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body as the dict its JSON encoding gives; malformed bodies are a 400."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body does not start with the Kubernetes magic number 'k8s\\x00'")
    try:
        return _decode_unknown(bytes(body[len(MAGIC) :]), 0)
    except _Malformed as exc:
        raise errors.bad_request(f"unable to decode protobuf body: {exc}") from None
    except RecursionError:
        raise errors.bad_request("unable to decode protobuf body: nested too deeply") from None


# ------------------------------------------------------------------------------ the envelope
def _decode_unknown(data: bytes, depth: int) -> dict[str, Any]:
    """runtime.Unknown → {"apiVersion", "kind", ...the object's fields}."""
    wire = _scan(data)
    type_meta = _scan(_last_bytes(wire, 1, "typeMeta"))
    api_version = _text(_last_bytes(type_meta, 1, "apiVersion"))
    kind = _text(_last_bytes(type_meta, 2, "kind"))
    raw = _last_bytes(wire, 2, "raw")
    encoding = _text(_last_bytes(wire, 3, "contentEncoding"))
    content_type = _text(_last_bytes(wire, 4, "contentType")).split(";")[0].strip().lower()
    if encoding:
        raise _Malformed(f"unsupported content encoding {encoding!r}")
    if not kind:
        raise _Malformed("Object 'Kind' is missing")
    if content_type == "application/json":
        obj = _json(raw)
        if not isinstance(obj, dict):
            raise _Malformed("the embedded JSON object is not an object")
        return {"apiVersion": api_version, "kind": kind, **obj}
    if content_type not in ("", CONTENT_TYPE):
        raise _Malformed(f"unsupported embedded content type {content_type!r}")
    schema = _schema()
    message = schema.kinds.get(f"{api_version}/{kind}") or schema.any_version.get(kind)
    if message is None:
        raise _Malformed(f'no kind "{kind}" is registered for version "{api_version}"')
    obj = _decode_message(message, raw, depth + 1)
    return {"apiVersion": api_version, "kind": kind, **obj}


# ------------------------------------------------------------------------------ wire format
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise _Malformed("unexpected end of data in a varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")


_Raw = tuple[int, int | bytes]  # (wire type, value): ints for varint/fixed, bytes for length-delimited


def _scan(data: bytes) -> dict[int, list[_Raw]]:
    """One message's fields by number, in wire order; groups (never written by Kubernetes) skipped."""
    out: dict[int, list[_Raw]] = {}
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("illegal field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _I64:
            if pos + 8 > end:
                raise _Malformed("unexpected end of data in a 64-bit field")
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == _I32:
            if pos + 4 > end:
                raise _Malformed("unexpected end of data in a 32-bit field")
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            if length > end - pos:
                raise _Malformed(f"field {number} is {length} bytes long, past the end of its message")
            value, pos = data[pos : pos + length], pos + length
        elif wire == _SGROUP:
            pos = _skip_group(data, pos, number)
            continue
        else:
            raise _Malformed(f"illegal wire type {wire} for field {number}")
        out.setdefault(number, []).append((wire, value))
    return out


def _skip_group(data: bytes, pos: int, number: int) -> int:
    depth = 1
    while True:
        if pos >= len(data):
            raise _Malformed(f"unterminated group {number}")
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == _VARINT:
            _, pos = _varint(data, pos)
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            pos += length
        elif wire == _SGROUP:
            depth += 1
        elif wire == _EGROUP:
            depth -= 1
            if depth == 0:
                return pos
        else:
            raise _Malformed(f"illegal wire type {wire} in group {number}")


def _last_bytes(wire: dict[int, list[_Raw]], number: int, what: str) -> bytes:
    """The last occurrence of a length-delimited field, b"" if absent (proto: last one wins)."""
    values = wire.get(number)
    if not values:
        return b""
    kind, value = values[-1]
    if kind != _LEN or not isinstance(value, bytes):
        raise _Malformed(f"wrong wire type {kind} for {what}")
    return value


def _text(value: bytes) -> str:
    # Go strings may hold any bytes; its JSON encoder writes invalid UTF-8 as U+FFFD, and so do we.
    return value.decode("utf-8", errors="replace")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _Malformed(f"embedded JSON is invalid: {exc}") from None


# ------------------------------------------------------------------------------ messages
def _decode_message(name: str, data: bytes, depth: int) -> Any:
    """One message as its JSON value (a dict for ordinary messages)."""
    if depth > MAX_DEPTH:
        raise _Malformed(f"messages nested more than {MAX_DEPTH} deep")
    if name.startswith("@"):
        return _decode_special(name, data, depth)
    schema = _schema()
    fields = schema.fields.get(name)
    if fields is None:
        raise _Malformed(f"no schema for message {name}")  # a broken table, not a client error
    wire = _scan(data)
    out: dict[str, Any] = {}
    for f in fields:  # declaration order: the order of the Go struct, hence of the JSON
        values = wire.get(f.number)
        if values is None:
            continue
        where = f"{name}.{f.name}"
        if f.flags & _MAP:
            out[f.name] = _decode_map(f, values, where, depth)
        elif f.flags & _REPEATED:
            out[f.name] = _decode_repeated(f, values, where, depth)
        elif not f.is_scalar:
            # A message field seen more than once merges, which is what concatenation means on the wire.
            chunk = b"".join(_length_delimited(v, where) for v in values)
            value = _decode_message(f.type, chunk, depth + 1)
            if f.flags & _INLINE and isinstance(value, dict):
                out.update(value)
            else:
                out[f.name] = value
        else:
            value = _scalar(f.type, values[-1], where)
            if f.flags & _KEEP_ZERO or not _is_zero(value):
                out[f.name] = _jsonable(f.type, value)
    special = schema.special.get(name)
    return _render_special_message(special, out) if special else out


def _length_delimited(raw: _Raw, where: str) -> bytes:
    wire, value = raw
    if wire != _LEN or not isinstance(value, bytes):
        raise _Malformed(f"wrong wire type {wire} for {where}")
    return value


def _decode_repeated(f: _Field, values: list[_Raw], where: str, depth: int) -> list[Any]:
    if not f.is_scalar:
        return [_decode_message(f.type, _length_delimited(v, where), depth + 1) for v in values]
    out: list[Any] = []
    expected = _WIRE_OF.get(f.type, _LEN)
    for wire, value in values:
        if wire == _LEN and expected != _LEN and isinstance(value, bytes):
            out.extend(_jsonable(f.type, v) for v in _unpack(f.type, expected, value, where))  # packed
        else:
            out.append(_jsonable(f.type, _scalar(f.type, (wire, value), where)))
    return out


def _unpack(type_: str, wire: int, data: bytes, where: str) -> list[Any]:
    out: list[Any] = []
    pos = 0
    size = 8 if wire == _I64 else 4
    while pos < len(data):
        value: int
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        else:
            if pos + size > len(data):
                raise _Malformed(f"truncated packed field {where}")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        out.append(_scalar(type_, (wire, value), where))
    return out


def _decode_map(f: _Field, values: list[_Raw], where: str, depth: int) -> dict[str, Any]:
    """Maps are repeated entry messages {1 key, 2 value}; a missing half is its zero value."""
    out: dict[str, Any] = {}
    for raw in values:
        entry = _scan(_length_delimited(raw, where))
        key_raw = entry.get(1)
        key = _scalar(f.key_type, key_raw[-1], where) if key_raw else _zero(f.key_type)
        value_raw = entry.get(2)
        if f.is_scalar:
            value = _scalar(f.type, value_raw[-1], where) if value_raw else _zero(f.type)
            value = _jsonable(f.type, value)
        else:
            chunk = b"".join(_length_delimited(v, where) for v in value_raw or [])
            value = _decode_message(f.type, chunk, depth + 1)
        out[key if isinstance(key, str) else json.dumps(key)] = value
    return out


# ------------------------------------------------------------------------------ scalars
def _scalar(type_: str, raw: _Raw, where: str) -> Any:
    """A wire value as the Python value of its proto scalar type (bytes stay bytes here)."""
    wire, value = raw
    expected = _WIRE_OF.get(type_, _LEN)
    if wire != expected:
        raise _Malformed(f"wrong wire type {wire} for {where} ({type_})")
    if isinstance(value, bytes):
        if type_ == "string":
            return _text(value)
        if type_ == "bytes":
            return value
        raise _Malformed(f"unknown scalar type {type_} for {where}")
    if type_ == "bool":
        return value != 0
    if type_ in ("int64", "sfixed64"):
        return value - (1 << 64) if value >= 1 << 63 else value
    if type_ in ("int32", "sfixed32"):
        value &= 0xFFFFFFFF  # gogo truncates 64-bit varints of negative int32s the same way
        return value - (1 << 32) if value >= 1 << 31 else value
    if type_ == "uint32":
        return value & 0xFFFFFFFF
    if type_ in ("uint64", "fixed64", "fixed32"):
        return value
    if type_ in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if type_ == "double":
        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    if type_ == "float":
        return struct.unpack("<f", value.to_bytes(4, "little"))[0]
    raise _Malformed(f"unknown scalar type {type_} for {where}")


def _zero(type_: str) -> Any:
    if type_ == "string":
        return ""
    if type_ == "bytes":
        return b""
    if type_ == "bool":
        return False
    return 0.0 if type_ in ("double", "float") else 0


def _is_zero(value: Any) -> bool:
    return not value  # "", b"", 0, 0.0, False


def _jsonable(type_: str, value: Any) -> Any:
    """Go's JSON form: []byte is base64; whole floats print without a fraction; NaN has no JSON."""
    if type_ == "bytes":
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Malformed(f"{value} cannot be represented in JSON")
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
    return value


# ------------------------------------------------------------------------------ special types
def _decode_special(name: str, data: bytes, depth: int) -> Any:
    """apimachinery types whose JSON form is not an object of their proto fields."""
    wire = _scan(data)
    if name == "@quantity":  # {1 string}
        return _text(_last_bytes(wire, 1, "Quantity.string")) or "0"
    if name == "@intorstring":  # {1 type, 2 intVal, 3 strVal}
        kind = _scalar("int64", wire[1][-1], "IntOrString.type") if 1 in wire else 0
        if kind == 0:
            return _scalar("int32", wire[2][-1], "IntOrString.intVal") if 2 in wire else 0
        if kind == 1:
            return _text(_last_bytes(wire, 3, "IntOrString.strVal"))
        raise _Malformed(f"impossible IntOrString.Type {kind}")
    if name in ("@time", "@microtime"):  # {1 seconds, 2 nanos}; empty is Go's zero time: null
        if not data:
            return None
        seconds = _scalar("int64", wire[1][-1], "Time.seconds") if 1 in wire else 0
        nanos = _scalar("int32", wire[2][-1], "Time.nanos") if 2 in wire else 0
        return _format_time(seconds, nanos if name == "@microtime" else 0, micro=name == "@microtime")
    if name == "@duration":  # {1 duration (ns)}
        return _go_duration(_scalar("int64", wire[1][-1], "Duration.duration") if 1 in wire else 0)
    if name == "@rawjson":  # RawExtension, apiextensions JSON, FieldsV1: {1 raw}
        raw = _last_bytes(wire, 1, "raw")
        if not raw:
            return None
        if raw.startswith(MAGIC):  # an embedded object serialized as protobuf
            return _decode_unknown(raw[len(MAGIC) :], depth)
        return _json(raw)
    raise _Malformed(f"unknown special type {name}")


def _format_time(seconds: int, nanos: int, *, micro: bool) -> str | None:
    """metav1.Time is RFC 3339 in UTC to the second, MicroTime to the microsecond."""
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise _Malformed(f"time {seconds}s is out of range") from None
    if moment == _GO_ZERO_TIME:
        return None
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    return f"{text}.{moment.microsecond:06d}Z" if micro else f"{text}Z"


def _go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `1h0m0s`, `1.5s`, `300ms`, `2µs`, `0s`."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)

    def frac(value: int, prec: int) -> str:
        whole, rest = divmod(value, 10**prec)
        digits = f"{rest:0{prec}d}".rstrip("0") if prec else ""
        return f"{whole}.{digits}" if digits else str(whole)

    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{frac(u, 3)}µs"
        return f"{sign}{frac(u, 6)}ms"
    seconds, rest = divmod(u, 1_000_000_000)
    text = f"{frac((seconds % 60) * 1_000_000_000 + rest, 9)}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _render_special_message(special: str, fields: dict[str, Any]) -> Any:
    """apiextensions' either-or types, as their MarshalJSON writes them."""
    if special == "orArray":  # JSONSchemaPropsOrArray {1 schema, 2 jSONSchemas}
        return fields.get("jSONSchemas") or fields.get("schema")
    if special == "orBool":  # JSONSchemaPropsOrBool {1 allows, 2 schema}
        if "schema" in fields:
            return fields["schema"]
        return bool(fields.get("allows", False))
    if special == "orStringArray":  # JSONSchemaPropsOrStringArray {1 schema, 2 property}
        return fields.get("property") or fields.get("schema")
    if special == "items":  # ExtraValue, Verbs: a named []string
        return fields.get("items")
    raise _Malformed(f"unknown special message {special}")
