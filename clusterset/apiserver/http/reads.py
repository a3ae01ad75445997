"""GET of one object and LIST (pages, resourceVersion semantics): JSON, a Table, or only metadata."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from clusterset.apiserver.http.codecs import ENCODED, JSON, TABLE, AnswerAs, answer_as, warning_headers
from clusterset.apiserver.http.partial import check_list, check_one, partial_list, partial_object
from clusterset.apiserver.http.routing import parse_rv
from clusterset.apiserver.http.tables import to_table
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.lists import ListOptions, list_entries, raw_as
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.encoding import go_json
from clusterset.apiserver.storage.store import Entry


def get_object(rest: Rest, request: web.Request, ctx: Ctx, name: str) -> web.Response:
    want = answer_as(request.headers.get("Accept", ""))
    body = object_bytes(ctx, rest.get(ctx, name), want, request.query.get("includeObject", "Metadata"))
    return web.Response(body=body, headers={"Content-Type": JSON, **warning_headers(ctx)})


async def list_objects(request: web.Request, ctx: Ctx, opts: ListOptions) -> web.Response:
    """A list at the resourceVersion asked for (waiting a little for one not reached yet; 410 for one compacted)."""
    want = answer_as(request.headers.get("Accept", ""))
    entries, meta = await listed(ctx, opts)
    body = list_bytes(ctx, entries, meta, want, request.query.get("includeObject", "Metadata"))
    return web.Response(body=body, headers={"Content-Type": JSON, **warning_headers(ctx)})


def object_bytes(ctx: Ctx, entry: Entry, want: AnswerAs | None, include_object: str = "Metadata") -> bytes:
    """One object as asked: itself (its stored encoding, with json.Encoder's newline), a Table, or its metadata."""
    if want is None:
        return raw_as(entry, ctx.rt.group_version) + b"\n"
    check_one(want, ctx)
    if want.kind == TABLE:
        return go_json(to_table(ctx.rt, [entry.obj], include_object=include_object,
                                resource_version=entry.obj["metadata"]["resourceVersion"]), ENCODED)
    return go_json(partial_object(entry.obj, want), ENCODED)


def list_bytes(ctx: Ctx, entries: list[Entry], meta: dict[str, Any], want: AnswerAs | None,
               include_object: str = "Metadata") -> bytes:
    """A list as asked: the objects, a Table, or their metadata."""
    if want is None:
        return list_body(ctx, meta, [raw_as(e, ctx.rt.group_version) for e in entries])
    check_list(want, ctx)
    if want.kind == TABLE:
        table = to_table(ctx.rt, [e.obj for e in entries], include_object=include_object,
                         resource_version=meta["resourceVersion"], continue_token=meta.get("continue", ""))
        if "remainingItemCount" in meta:
            table["metadata"]["remainingItemCount"] = meta["remainingItemCount"]
        return go_json(table, ENCODED)
    return go_json(partial_list([e.obj for e in entries], meta, want), ENCODED)


async def listed(ctx: Ctx, opts: ListOptions) -> tuple[list[Entry], dict[str, Any]]:
    """The entries of a list and its metadata, at the resourceVersion asked for (over HTTP or in this process)."""
    store = ctx.cluster.store
    rv_text = opts.resource_version
    if rv_text and rv_text != "0" and not opts.continue_token:
        rv = parse_rv(rv_text)
        exact = opts.resource_version_match == "Exact" or (not opts.resource_version_match and opts.limit)
        if rv > store.rv:
            if not await store.wait_for_rv(rv, 3.0):
                raise StatusError(
                    504,
                    "Timeout",
                    f"Timeout: Too large resource version: {rv}, current: {store.rv}",
                    {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]},
                    retry_after=1,
                )
        elif exact and rv < store.rv and store.changed_since(ctx.served.key, rv):
            raise errors.expired("The resourceVersion for the provided list is too old.")
    return list_entries(ctx, opts)


def list_body(ctx: Ctx, meta: dict[str, Any], items: list[bytes]) -> bytes:
    """The list as kube-apiserver streams it, in one copy of the items: a built-in kind's `kind`, `apiVersion`,
    `metadata`, `items`; a custom resource's list is an unstructured map, its keys sorted. Ends with a newline."""
    kind, version = ctx.rt.list_kind, ctx.rt.group_version
    if ctx.rt.is_crd:
        head = [b'{"apiVersion":', go_json(version), b',"items":[']
        tail = [b'],"kind":', go_json(kind), b',"metadata":', go_json(meta, orjson.OPT_SORT_KEYS), b"}\n"]
    else:
        head = [go_json({"kind": kind, "apiVersion": version, "metadata": meta})[:-1], b',"items":[']
        tail = [b"]}\n"]
    separated = [b","] * (2 * len(items) - 1) if items else []
    separated[::2] = items
    return b"".join(head + separated + tail)
