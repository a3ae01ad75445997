"""Resource requests answered to clients in this process without HTTP: the embedded fleet's joins and member reads.

A fleet's own clients (each member's join, each agent's lists and watches of its member) would pay for an HTTP
request each with both ends in this process: the body and headers encoded and parsed twice, a socket, aiohttp's
tasks and timers, and every watch event framed. Here the same request -- method, path under the cluster, query,
body, bearer token -- takes the same steps as over HTTP: authentication, authorization from the path (upstream's
RequestInfo), the registry (admission, validation, storage), lists and watches with the same resourceVersion
semantics; and its answer, like an HTTP answer, leaves only once what it shows is committed. Only plain resource
verbs and a group-version's resource list (what a controller's discovery asks) are served this way; anything else
(the other discovery documents, reviews, logs, scale, impersonation, deletes) answers None and the client sends it
over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from multidict import MultiDict, MultiDictProxy

from clusterset.apiserver.auth import reviews, tokens
from clusterset.apiserver.auth.attributes import request_attributes, watch_requested
from clusterset.apiserver.auth.authz import authorize, forbidden
from clusterset.apiserver.http import discovery
from clusterset.apiserver.http.app import HEALTH_PATHS, health
from clusterset.apiserver.http.codecs import ENCODED, JSON, answer_as, answer_bytes, decode
from clusterset.apiserver.http.reads import list_bytes, listed, object_bytes
from clusterset.apiserver.http.routing import Target, list_options_invalid, make_ctx, parse_target, query_list_options
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.http.watch import watch_events, watch_spec
from clusterset.apiserver.http.writes import decode_object, patch_raw
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.storage.encoding import go_json
from clusterset.apiserver.storage.sqlite import StorageFailed

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """An answer as HTTP would carry it: status and JSON body; a watch's events in `stream` (newline-ended)."""

    status: int
    body: bytes
    stream: AsyncGenerator[bytes, None] | None = None
    content_type: str = JSON


class InProcess:
    """One cluster's resource API for clients in this process (`Apiserver.in_process`)."""

    def __init__(self, services: Services, cluster: str) -> None:
        self.services = services
        self.cluster = cluster

    async def request(self, token: str | None, method: str, path: str, query: Mapping[str, str], body: bytes | None,
                      content_type: str | None, user_agent: str = "unknown", accept: str | None = None
                      ) -> Answer | None:
        """The answer to `method path?query` (path under `/clusters/<cluster>`) as the holder of `token`, or None
        when it is not a request served here (then the client sends it over HTTP). `accept`: the Accept header (a
        GET's answer as a Table or as metadata only)."""
        if path in HEALTH_PATHS and method == "GET":  # an agent's probe of its member, as over HTTP: no credentials
            return self._health(path)
        target = _resource_path(path)
        listing = _resource_list_path(path) if target is None and method == "GET" else None
        if (target is None and listing is None) or method not in ("GET", "POST", "PUT", "PATCH"):
            return None
        q = MultiDictProxy(MultiDict(query))
        ctx: Ctx | None = None
        db = self.services.db
        try:
            found = self.services.authenticator.authenticate(token, self.cluster)
            if found is None:
                raise errors.unauthorized()
            cluster, user = found
            if not user.master:  # system:masters skips authorization, as upstream (http/filters.py)
                attrs = request_attributes(method, path, q)
                decision = authorize(cluster, user, attrs)
                if not decision.allowed:
                    raise forbidden(user, attrs, decision.reason)
            if listing is not None:  # a group-version's resources, as a controller's discovery asks for them
                doc = discovery.api_resource_list(cluster.registry, *listing)
                if doc is None:
                    raise errors.path_not_found()
                return Answer(200, go_json(doc, ENCODED))
            assert target is not None
            group, version, parts = target
            parsed = parse_target(cluster, group, version, parts)
            if reviews.is_review(parsed.group, parsed.plural) or parsed.subresource in ("log", "scale", "exec",
                                                                                      "attach", "portforward"):
                return None
            ctx = make_ctx(cluster, parsed, user, q, user_agent)
            answer = await self._serve(ctx, parsed, method, path, q, body or b"", content_type or "", accept or "")
        except StatusError as err:
            answer = Answer(err.code, go_json(err.to_status(), ENCODED))
        except StorageFailed as exc:
            answer = Answer(500, go_json(errors.internal(str(exc)).to_status(), ENCODED))
        except Exception as exc:  # as over HTTP: a Status, never an exception in the caller's request
            log.exception("internal error on in-process %s %s", method, path)
            answer = Answer(500, go_json(errors.internal(str(exc) or type(exc).__name__).to_status(), ENCODED))
        # as the HTTP handler: a write's answer shows its own write, any other answer what memory holds
        await db.durable_through(ctx.stored_at if ctx is not None and ctx.stored_at is not None else db.written)
        return answer

    def _health(self, path: str) -> Answer:
        if self.cluster not in self.services.clusters:  # removed: its URL is gone
            return Answer(404, go_json(errors.path_not_found().to_status(), ENCODED))
        status, body, content_type = health(path, self.services.db.failure)
        return Answer(status, body, content_type=content_type)

    async def _serve(self, ctx: Ctx, target: Target, method: str, path: str, q: MultiDictProxy[str], raw: bytes,
                     content_type: str, accept: str) -> Answer | None:
        services = self.services
        rest = services.rest
        name, sub = target.name, target.subresource
        want = answer_as(accept) if method == "GET" else None  # a Table or metadata only, as HTTP negotiates it
        if name is None:
            if method == "GET":
                watching = watch_requested(q)
                opts = await query_list_options(q, watching)
                if watching:
                    stream = watch_events(ctx, opts, watch_spec(q, opts, want), services.bookmark_interval)
                    await anext(stream)  # registered with the store, as before an HTTP watch's headers go out
                    return Answer(200, b"", stream)
                if q.get("sendInitialEvents"):
                    raise list_options_invalid("sendInitialEvents",
                                               "Forbidden: sendInitialEvents is forbidden for list")
                entries, meta = await listed(ctx, opts)
                return Answer(200, list_bytes(ctx, entries, meta, want, q.get("includeObject", "Metadata")))
            if method == "POST":
                obj = await rest.create(ctx, await decode_object(services, ctx, raw, content_type))
                return Answer(201, answer_bytes(ctx, obj))
            raise errors.method_not_allowed()
        if sub == "token":
            if method != "POST":
                raise errors.method_not_allowed()
            body = await decode(raw, content_type, max_size=services.max_body, kind="TokenRequest", version="v1")
            assert ctx.namespace is not None  # serviceaccounts are namespaced: routing made sure
            result = tokens.token_request(services.tokens, ctx.cluster.name, ctx.cluster.store, ctx.namespace, name,
                                          body)
            return Answer(201, answer_bytes(ctx, result))
        if method == "GET":
            if sub == "finalize":
                raise errors.method_not_allowed()
            return Answer(200, object_bytes(ctx, rest.get(ctx, name), want, q.get("includeObject", "Metadata")))
        if method == "PUT":
            obj = await rest.update(ctx, name, await decode_object(services, ctx, raw, content_type), sub)
            return Answer(200, answer_bytes(ctx, obj))
        code, obj = await patch_raw(services, ctx, target, name, ctx.user, raw, content_type, q.get("force"),
                                 f"/clusters/{self.cluster}{path}")
        return Answer(code, answer_bytes(ctx, obj))


def _resource_list_path(path: str) -> tuple[str, str] | None:
    """(group, version) of a discovery resource list (`/api/v1`, `/apis/<group>/<version>`), else None."""
    parts = [p for p in path.split("/") if p]
    if parts == ["api", "v1"]:
        return "", "v1"
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def _resource_path(path: str) -> tuple[str, str, list[str]] | None:
    """(group, version, the rest) of a resource path (`/api/v1/...`, `/apis/<group>/<version>/...`), else None."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        rest = parts[2:]
        group, version = "", "v1"
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if rest[0] == "watch":  # the deprecated prefix: HTTP serves it
        return None
    return group, version, rest
