"""POST, PUT, PATCH, DELETE and DELETE of a collection: the body decoded, then the registry's write pipeline."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from clusterset.apiserver.auth.attributes import Attributes
from clusterset.apiserver.auth.authz import authorize_create_on_apply
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http.codecs import decode, read_body, read_raw, respond, truthy
from clusterset.apiserver.http.routing import Target, delete_options, list_options
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.patching import APPLY_PATCH, patch


async def _object_body(services: Services, request: web.Request, ctx: Ctx) -> Any:
    return await read_body(request, services.max_body, kind=ctx.rt.kind, version=ctx.rt.version,
                           validation=ctx.field_validation, warnings=ctx.warnings)


async def decode_object(services: Services, ctx: Ctx, raw: bytes, content_type: str) -> Any:
    """An object body given whole (from this process), decoded as `_object_body` decodes a request's."""
    if len(raw) > services.max_body:
        raise errors.too_large(services.max_body)
    return await decode(raw, content_type, max_size=services.max_body, kind=ctx.rt.kind, version=ctx.rt.version,
                        validation=ctx.field_validation, warnings=ctx.warnings)


async def create(services: Services, request: web.Request, ctx: Ctx) -> web.Response:
    obj = await services.rest.create(ctx, await _object_body(services, request, ctx))
    return respond(ctx, obj, 201)


async def update(services: Services, request: web.Request, ctx: Ctx, name: str, sub: str | None) -> web.Response:
    obj = await services.rest.update(ctx, name, await _object_body(services, request, ctx), sub)
    return respond(ctx, obj, 200)


async def patch_object(services: Services, request: web.Request, ctx: Ctx, target: Target, name: str,
                       user: UserInfo) -> web.Response:
    raw = await read_raw(request, services.max_body)
    code, obj = await patch_raw(services, ctx, target, name, user, raw, request.headers.get("Content-Type") or "",
                                request.query.get("force"), request.path)
    return respond(ctx, obj, code)


async def patch_raw(services: Services, ctx: Ctx, target: Target, name: str, user: UserInfo, raw: bytes,
                    content_type: str, force_param: str | None, path: str) -> tuple[int, Any]:
    """A PATCH of `name` with the body `raw` (over HTTP or from this process): its status code and object."""
    content_type = content_type.split(";")[0].strip()
    force = None if force_param is None else truthy(force_param)
    cluster = ctx.cluster
    if content_type == APPLY_PATCH and not user.master \
            and cluster.store.get(ctx.served.key, ctx.namespace or "", name) is None:
        # an apply that creates needs `create` too (no await until the patch looks the object up)
        authorize_create_on_apply(cluster, user, Attributes(
            "create", True, path, ctx.namespace or "", target.group, target.version, target.plural,
            target.subresource or "", name))
    return await patch(services.rest, ctx, name, content_type, raw, target.subresource, force, services.max_body)


async def delete(services: Services, request: web.Request, ctx: Ctx, name: str) -> web.Response:
    options = await delete_options(request, services.max_body)
    _code, result = await services.rest.delete(ctx, name, options)
    return respond(ctx, result)


async def delete_collection(services: Services, request: web.Request, ctx: Ctx) -> web.Response:
    if "deletecollection" not in ctx.rt.verbs:
        raise errors.method_not_allowed()
    opts = await list_options(request)
    options = await delete_options(request, services.max_body)
    return respond(ctx, await services.rest.delete_collection(ctx, opts, options))
