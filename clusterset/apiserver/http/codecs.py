"""Request bodies in (JSON, YAML, Kubernetes protobuf; size-limited) and responses out (JSON, Status, warnings)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from clusterset.api import boundedyaml
from clusterset.apiserver.http.duplicates import duplicate_fields
from clusterset.apiserver.http.protobuf import CONTENT_TYPE as PROTOBUF
from clusterset.apiserver.http.protobuf import decode_protobuf
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.offload import off_loop
from clusterset.apiserver.meta.yamlcodec import load_yaml
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.storage.encoding import go_json

JSON = "application/json"
YAML = "application/yaml"
BODY_MEDIA_TYPES = [JSON, YAML, PROTOBUF]  # what kube-apiserver decodes, in the order its 415 lists them
# Bodies larger than this decode on a worker thread (meta/offload.py): YAML and protobuf cost about 1.5 µs a
# byte in Python (a 3 MiB YAML body: 4 s), JSON about 0.02 µs (orjson); below these sizes, 10 ms at most.
_INLINE_UP_TO = {JSON: 256 * 1024, YAML: 4 * 1024, PROTOBUF: 4 * 1024}


# How kube-apiserver writes JSON: its serializer (objects, lists, Status, Tables, discovery) with json.Encoder,
# which ends the body with a newline; OpenAPI with json.Marshal (no newline); `/` and `/version` with
# WriteRawJSON (json.MarshalIndent, two spaces, no newline).
ENCODED = orjson.OPT_APPEND_NEWLINE
MARSHALLED = 0
INDENTED = orjson.OPT_INDENT_2


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None, *,
                  form: int = ENCODED) -> web.Response:
    return _json_bytes(go_json(body, form), status, headers)


def _json_bytes(raw: bytes, status: int, headers: dict[str, str] | None) -> web.Response:
    return web.Response(body=raw, status=status, headers={**(headers or {}), "Content-Type": JSON})


def status_response(err: StatusError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return json_response(err.to_status(), err.code, headers)


def warning_headers(ctx: Ctx) -> dict[str, str]:
    if not ctx.warnings:
        return {}
    # aiohttp joins repeated keys poorly; kube clients accept comma-separated warning values
    return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in ctx.warnings)}


def respond(ctx: Ctx, body: Any, code: int = 200) -> web.Response:
    return _json_bytes(answer_bytes(ctx, body), code, warning_headers(ctx))


def answer_bytes(ctx: Ctx, body: Any) -> bytes:
    """The encoded answer: the object just written is its stored encoding, anything else encoded now."""
    stored = ctx.stored
    if stored is not None and stored.obj is body:
        return stored.raw + b"\n"
    return go_json(body, ENCODED)


TABLE = "Table"
METADATA = "PartialObjectMetadata"
METADATA_LIST = "PartialObjectMetadataList"
_META_VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True)
class AnswerAs:
    """An answer transformed as the Accept header asked (`application/json;as=<kind>;g=meta.k8s.io;v=<version>`):
    a Table (kubectl), or only the objects' metadata (PartialObjectMetadata, a metadata-only informer's)."""

    kind: str
    api_version: str


def answer_as(accept: str) -> AnswerAs | None:
    """The first clause of `accept` that can be served, as kube-apiserver negotiates: a transform (`as=` with
    `g=meta.k8s.io` and `v=v1` or `v1beta1`), or the object itself for a clause without `as=` (always JSON here, as
    before: a protobuf client falls back on the answer's Content-Type). Only clauses asking for what cannot be
    served: 406 NotAcceptable."""
    if "as=" not in accept:
        return None
    for clause in accept.split(","):
        media, *parts = (p.strip() for p in clause.split(";"))
        params = dict(p.partition("=")[::2] for p in parts)
        kind = params.get("as")
        if kind is None:
            return None
        version = params.get("v")
        if params.get("g") != "meta.k8s.io" or version not in _META_VERSIONS:
            continue
        if kind in (METADATA, METADATA_LIST) or (kind == TABLE and media in (JSON, YAML, "application/*", "*/*")):
            return AnswerAs(kind, f"meta.k8s.io/{version}")
    raise errors.not_acceptable("only the following media types are accepted: " + ", ".join(BODY_MEDIA_TYPES))


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


async def read_raw(request: web.Request, max_body: int) -> bytes:
    length = request.content_length
    if length is not None and length > max_body:
        raise errors.too_large(max_body)
    chunks: list[bytes] = []
    size = 0
    while True:  # read(n) returns what has arrived so far, not n bytes: read to the end
        chunk = await request.content.read(max_body + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            raise errors.too_large(max_body)


async def read_body(request: web.Request, max_body: int, *, kind: str = "", version: str = "",
                    validation: str = "Ignore", warnings: list[str] | None = None) -> Any:
    """The decoded body; `kind`/`version` name what it should be, in errors (a TokenRequest, the resource's kind);
    `validation` is the request's fieldValidation (duplicate fields: Strict → 400, Warn → into `warnings`)."""
    raw = await read_raw(request, max_body)
    return await decode(raw, request.headers.get("Content-Type", ""), max_size=max_body, kind=kind, version=version,
                        validation=validation, warnings=warnings)


def body_media_type(content_type: str) -> str:
    """The body's media type; 415 for one kube-apiserver does not decode (no Content-Type means JSON)."""
    media = content_type.split(";")[0].strip().lower() or JSON
    if media not in BODY_MEDIA_TYPES:
        raise errors.unsupported_media_type(BODY_MEDIA_TYPES)
    return media


async def decode(raw: bytes, content_type: str, *, max_size: int, kind: str = "", version: str = "",
                 validation: str = "Ignore", warnings: list[str] | None = None) -> Any:
    """JSON, YAML or Kubernetes protobuf body → Python; malformed input is a 400, never a 500. Large bodies are
    decoded off the event loop, so that one request does not stall every cluster."""
    media = body_media_type(content_type)
    job = functools.partial(_decode, raw, media, max_size=max_size, kind=kind, version=version,
                            find_duplicates=validation != "Ignore")
    value, duplicates = job() if len(raw) <= _INLINE_UP_TO[media] else await off_loop(job)
    if duplicates:
        if validation == "Strict":
            text = ", ".join(f'duplicate field "{path}"' for path in duplicates)
            raise errors.bad_request(f"{_cannot_handle(kind, version)}strict decoding error: {text}")
        if warnings is not None:
            warnings.extend(f'duplicate field "{path}"' for path in duplicates)
    return value


def _decode(raw: bytes, media: str, *, max_size: int, kind: str, version: str,
            find_duplicates: bool) -> tuple[Any, list[str]]:
    """The value and, for JSON when asked, the paths of its duplicate fields."""
    if media == PROTOBUF:
        return decode_protobuf(raw), []  # kubectl >= 1.32 sends built-in kinds this way
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    if media == YAML:
        return _yaml(raw, max_size, kind), []
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"{_cannot_handle(kind, version)}{exc}") from exc
    return value, duplicate_fields(raw, value) if find_duplicates else []


def _yaml(raw: bytes, max_size: int, kind: str) -> Any:
    try:
        return load_yaml(raw.decode("utf-8"), max_size)
    except boundedyaml.TooLarge as exc:
        raise errors.too_large(exc.limit) from exc
    except boundedyaml.ExcessiveAliasing as exc:
        if kind:  # kube-apiserver's words for a body it cannot decode into the kind (transformDecodeError)
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): {exc} ({_summary(raw)})") from exc
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
    except (boundedyaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc


def _cannot_handle(kind: str, version: str) -> str:
    return f'{kind} in version "{version}" cannot be handled as a {kind}: ' if kind else ""


def _summary(raw: bytes, limit: int = 30) -> str:
    """How kube-apiserver quotes a body it could not decode (summarizeData): JSON as text, else hex."""
    head = raw[:limit]
    text = head.decode("utf-8", errors="replace") if raw[:1] == b"{" else head.hex()
    return text + " ..." if len(raw) > limit else text
