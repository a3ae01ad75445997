"""Request bodies in (JSON, YAML, Kubernetes protobuf; size-limited) and responses out (JSON, Status, warnings)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import yaml
from aiohttp import web

from clusterset.apiserver.http.protobuf import CONTENT_TYPE as PROTOBUF
from clusterset.apiserver.http.protobuf import decode_protobuf
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.yamlcodec import load_yaml
from clusterset.apiserver.registry.context import Ctx

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers={**(headers or {}), "Content-Type": JSON})


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
    return json_response(body, code, warning_headers(ctx))


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


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
                    strict: bool = False) -> Any:
    """The decoded body; `kind`/`version` name what it should be, in errors (a TokenRequest, the resource's kind)."""
    raw = await read_raw(request, max_body)
    return decode(raw, request.headers.get("Content-Type", ""), strict=strict, kind=kind, version=version)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'duplicate field "{key}"')
        out[key] = value
    return out


def decode(raw: bytes, content_type: str, *, strict: bool, kind: str = "", version: str = "") -> Any:
    """JSON, YAML or Kubernetes protobuf body → Python; malformed input is a 400, never a 500."""
    media = content_type.split(";")[0].strip().lower()
    if media == PROTOBUF:
        return decode_protobuf(raw)  # kubectl >= 1.32 sends built-in kinds this way
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    try:
        if media in ("application/yaml", "application/x-yaml", "text/yaml"):
            return load_yaml(raw.decode("utf-8"))
        if strict:
            return json.loads(raw, object_pairs_hook=_no_duplicates)
        return orjson.loads(raw)
    except ValueError as exc:
        prefix = f'{kind} in version "{version}" cannot be handled as a {kind}: ' if kind else ""
        if "duplicate field" in str(exc):
            raise errors.bad_request(f"{prefix}strict decoding error: {exc}") from exc
        raise errors.bad_request(f"{prefix}{exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
