"""GET of one object (JSON or a Table) and LIST (JSON, pages, resourceVersion semantics, or a Table)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from clusterset.apiserver.http.codecs import JSON, respond, wants_table, warning_headers
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
    entry = rest.get(ctx, name)
    if wants_table(request):
        return respond(ctx, to_table(ctx.rt, [entry.obj], include_object=request.query.get("includeObject", "Metadata"),
                                     resource_version=entry.obj["metadata"]["resourceVersion"]))
    body = raw_as(entry, ctx.rt.group_version) + b"\n"  # json.Encoder's newline (one copy of one object)
    return web.Response(body=body, headers={"Content-Type": JSON, **warning_headers(ctx)})


async def list_objects(request: web.Request, ctx: Ctx, opts: ListOptions) -> web.Response:
    """A list at the resourceVersion asked for (waiting a little for one not reached yet; 410 for one compacted)."""
    entries, meta = await listed(ctx, opts)
    if wants_table(request):
        table = to_table(
            ctx.rt,
            [e.obj for e in entries],
            include_object=request.query.get("includeObject", "Metadata"),
            resource_version=meta["resourceVersion"],
            continue_token=meta.get("continue", ""),
        )
        if "remainingItemCount" in meta:
            table["metadata"]["remainingItemCount"] = meta["remainingItemCount"]
        return respond(ctx, table)
    body = list_body(ctx, meta, [raw_as(e, ctx.rt.group_version) for e in entries])
    return web.Response(body=body, headers={"Content-Type": JSON, **warning_headers(ctx)})


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
