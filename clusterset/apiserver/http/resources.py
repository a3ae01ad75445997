"""A resource request routed to its verb: the collection (list, watch, create, deletecollection), one object
(get, update, patch, delete), or one of its subresources."""

from __future__ import annotations

from aiohttp import web

from clusterset.apiserver.auth.attributes import watch_requested
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http import reads, subresources, writes
from clusterset.apiserver.http.podlogs import pod_log
from clusterset.apiserver.http.podstreams import CONNECTING, connect
from clusterset.apiserver.http.routing import Target, list_options, list_options_invalid, request_ctx
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.http.watch import watch
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.cluster import Cluster


async def resource_request(services: Services, request: web.Request, cluster: Cluster, target: Target,
                           user: UserInfo) -> web.StreamResponse:
    ctx = request_ctx(request, cluster, target, user)
    method = request.method
    if subresources.is_review(target):
        return await subresources.create_review(services, request, ctx, target, user)
    if target.name is None:
        if method == "GET":
            watching = watch_requested(request.query)  # as authorization read it
            opts = await list_options(request, watching)
            if watching:
                return await watch(request, ctx, opts, services.bookmark_interval)
            if request.query.get("sendInitialEvents"):
                raise list_options_invalid("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list")
            return await reads.list_objects(request, ctx, opts)
        if method == "POST":
            return await writes.create(services, request, ctx)
        if method == "DELETE":
            return await writes.delete_collection(services, request, ctx)
        raise errors.method_not_allowed()
    name, sub = target.name, target.subresource
    if sub == "log":
        if method != "GET":
            raise errors.method_not_allowed()
        return await pod_log(services.rest, request, ctx, name)
    if sub in CONNECTING:
        return await connect(services.rest, request, ctx, name, sub)
    if sub == "scale" and method in ("GET", "PUT"):
        return subresources.get_scale(services, ctx, name) if method == "GET" else \
            await subresources.put_scale(services, request, ctx, name)
    if sub == "token":
        if method != "POST":
            raise errors.method_not_allowed()
        return await subresources.create_token(services, request, ctx, name)
    if method == "GET":
        if sub == "finalize":
            raise errors.method_not_allowed()
        return reads.get_object(services.rest, request, ctx, name)
    if method == "PUT":
        return await writes.update(services, request, ctx, name, sub)
    if method == "PATCH":
        return await writes.patch_object(services, request, ctx, target, name, user)
    if method == "DELETE" and sub is None:
        return await writes.delete(services, request, ctx, name)
    raise errors.method_not_allowed()
