"""GET `pods/<name>/log`: the simulated container's log as text, or with `follow=true` a stream of its new lines
until the container terminates, the pod goes or the client leaves (kube-apiserver proxies the kubelet's stream)."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from clusterset.api.objects import meta, spec
from clusterset.apiserver.kinds.podlogs import (
    LogOptions,
    container_log,
    log_container,
    log_ended,
    parse_log_options,
    render,
)
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.store import Event, Obj

TEXT = "text/plain"
# how often a follower with nothing new looks whether its client is still there
CLIENT_CHECK_SECONDS = 5.0


async def pod_log(rest: Rest, request: web.Request, ctx: Ctx, name: str) -> web.StreamResponse:
    opts = parse_log_options(request.query, name)
    pod = rest.get(ctx, name).obj
    container = log_container(pod, opts.container)
    if not spec(pod).get("nodeName"):
        return web.Response(body=b"", content_type=TEXT)  # no kubelet yet: upstream answers an empty log
    lines = container_log(pod, container, opts.previous)
    chunks = render(lines, opts)
    if not opts.follow:
        body = b"".join(chunks)
        return web.Response(body=body[:opts.limit_bytes] if opts.limit_bytes else body, content_type=TEXT)
    response = web.StreamResponse(headers={"Content-Type": TEXT})
    await response.prepare(request)
    out = _LimitedWriter(response, opts.limit_bytes)
    await out.write(chunks)
    if not out.full and not opts.previous:
        await _follow(request, ctx, pod, container, set(lines), dataclasses.replace(opts, tail_lines=None), out)
    await response.write_eof()
    return response


async def _follow(request: web.Request, ctx: Ctx, pod: Obj, container: str, seen: set[tuple[object, str]],
                  opts: LogOptions, out: _LimitedWriter) -> None:
    """Writes each new line of the pod's container as its status changes, until the log ends."""
    store, resource = ctx.cluster.store, ctx.served.key
    namespace, name, uid = meta(pod).get("namespace", ""), meta(pod)["name"], meta(pod).get("uid")
    changed = asyncio.Event()

    def on_event(_cluster: str, event: Event) -> None:
        if meta(event.entry.obj).get("uid") == uid:
            changed.set()

    store.subscribe(resource, on_event)
    try:
        current: Obj | None = pod
        while not log_ended(current, container) and not out.full:
            try:
                await asyncio.wait_for(changed.wait(), CLIENT_CHECK_SECONDS)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            changed.clear()
            entry = store.get(resource, namespace, name)
            current = entry.obj if entry is not None and meta(entry.obj).get("uid") == uid else None
            if current is None:
                return
            try:
                new = [line for line in container_log(current, container, False) if line not in seen]
            except StatusError:
                return
            seen.update(new)
            await out.write(render(new, opts))
    finally:
        store.unsubscribe(resource, on_event)


class _LimitedWriter:
    """Writes to the response until `limitBytes` are sent."""

    def __init__(self, response: web.StreamResponse, limit: int | None) -> None:
        self.response = response
        self.left = limit

    @property
    def full(self) -> bool:
        return self.left is not None and self.left <= 0

    async def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if self.left is not None:
                chunk = chunk[:self.left]
                self.left -= len(chunk)
            if chunk:
                await self.response.write(chunk)
