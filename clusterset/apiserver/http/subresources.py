"""Requests that are not plain object writes: the reviews (created, answered, never stored), a ServiceAccount's
TokenRequest (`serviceaccounts/token`), and the `scale` subresource."""

from __future__ import annotations

from aiohttp import web

from clusterset.apiserver.auth import reviews, tokens
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http.codecs import read_body, respond
from clusterset.apiserver.http.routing import Target
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.scale import scale_of, write_scale


def is_review(target: Target) -> bool:
    return reviews.is_review(target.group, target.plural)


async def create_review(services: Services, request: web.Request, ctx: Ctx, target: Target,
                        user: UserInfo) -> web.Response:
    if request.method != "POST" or target.name is not None:
        raise errors.method_not_allowed()
    body = await read_body(request, services.max_body, kind=ctx.rt.kind, version=target.version)
    review = reviews.create_review(ctx.cluster, services.authenticator, user, target.group, target.version,
                                   target.plural, target.namespace, body)
    return respond(ctx, review, 201)


async def create_token(services: Services, request: web.Request, ctx: Ctx, name: str) -> web.Response:
    body = await read_body(request, services.max_body, kind="TokenRequest", version="v1")
    assert ctx.namespace is not None  # serviceaccounts are namespaced: routing made sure
    result = tokens.token_request(services.tokens, ctx.cluster.name, ctx.cluster.store, ctx.namespace, name, body)
    return respond(ctx, result, 201)


def get_scale(services: Services, ctx: Ctx, name: str) -> web.Response:
    return respond(ctx, scale_of(ctx, services.rest.get(ctx, name).obj))


async def put_scale(services: Services, request: web.Request, ctx: Ctx, name: str) -> web.Response:
    body = await read_body(request, services.max_body, kind=ctx.rt.kind, version=ctx.rt.version,
                           validation=ctx.field_validation, warnings=ctx.warnings)
    return respond(ctx, await write_scale(services.rest, ctx, name, body))
