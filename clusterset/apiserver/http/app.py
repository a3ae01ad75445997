"""The HTTP server of the embedded API: kube-apiserver's paths under `/clusters/<name>`, the health
endpoints, and `/admin`. Every error is a `Status`, never a bare 500 page, and the server keeps going."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http import documents
from clusterset.apiserver.http.admin import admin_request
from clusterset.apiserver.http.codecs import INDENTED, JSON, json_response, status_response
from clusterset.apiserver.http.filters import admit, authenticate_admin, bearer
from clusterset.apiserver.http.resources import resource_request
from clusterset.apiserver.http.routing import CTX_KEY, parse_target
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.version import VERSION_INFO
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.encoding import go_json
from clusterset.apiserver.storage.sqlite import StorageFailed

log = logging.getLogger(__name__)

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

HEALTH_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
TEXT = "text/plain; charset=utf-8"


def make_server(services: Services) -> web.Server:
    """aiohttp's low-level server: every path goes to one handler, so the Application's router, middlewares and
    signals would only add work to each request."""
    handler = Handler(services)
    max_size = services.max_body + 1024
    loop = asyncio.get_running_loop()

    def make_request(message: RawRequestMessage, payload: StreamReader, protocol: RequestHandler,
                     writer: AbstractStreamWriter, task: asyncio.Task[None]) -> web.BaseRequest:
        return web.Request(message, payload, protocol, writer, task, loop, client_max_size=max_size)

    # every request is a web.Request (make_request), which is what the handler is typed for
    return web.Server(cast(_Handler, handler.handle), request_factory=make_request, access_log=None)


class Handler:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            try:
                response = await self._dispatch(request)
            except StatusError as err:  # an error may show what memory holds too (409 AlreadyExists)
                response = status_response(err)
            await self._await_durable_answer(request)
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except StorageFailed as exc:
            return status_response(errors.internal(str(exc)))
        except Exception as exc:  # never a bare 500 page: a Status, and the server keeps going
            log.exception("internal error on %s %s", request.method, request.path)
            return status_response(errors.internal(str(exc) or type(exc).__name__))

    async def _await_durable_answer(self, request: web.Request) -> None:
        """An answer leaves the process only once what it shows is committed (a crash cannot take it back): a
        write's answer shows its own write, already committed; any other answer may show everything in memory."""
        db = self.services.db
        ctx = request.get(CTX_KEY)
        await db.durable_through(ctx.stored_at if ctx is not None and ctx.stored_at is not None else db.written)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in HEALTH_PATHS:
            return _health(path, self.services.db.failure)
        if path.startswith("/admin/"):
            authenticate_admin(self.services, request)
            return await admin_request(self.services, request, path[len("/admin/"):])
        if path.startswith("/clusters/"):
            name, _, sub = path[len("/clusters/"):].partition("/")
            sub_path = "/" + sub
        else:
            # a path without its cluster, as `kubectl get --raw /api/...` sends it (kubectl drops the server URL's
            # path for a raw request): the cluster its token was issued for, whose own rules then apply
            found = self.services.authenticator.cluster_of(bearer(request))
            if found is None:
                raise errors.unauthorized()
            name, sub_path = found, path
        if sub_path in HEALTH_PATHS:
            if name not in self.services.clusters:
                raise errors.path_not_found()
            return _health(sub_path, self.services.db.failure)
        cluster, user = admit(self.services, request, name, sub_path)
        return await self._cluster_request(request, cluster, sub_path, user)

    async def _cluster_request(self, request: web.Request, cluster: Cluster, path: str, user: UserInfo
                               ) -> web.StreamResponse:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return json_response({"paths": documents.ROOT_PATHS}, form=INDENTED)
        head = parts[0]
        if head == "openapi":
            return documents.openapi(self.services, request, cluster, parts[1:])
        if head == "api":
            if len(parts) == 1:
                return documents.discovery_root(self.services, request, cluster, core=True)
            if parts[1] != "v1":
                raise errors.path_not_found()
            if len(parts) == 2:
                return documents.resource_list(cluster, "", "v1")
            target = parse_target(cluster, "", "v1", parts[2:])
        elif head == "apis":
            if len(parts) == 1:
                return documents.discovery_root(self.services, request, cluster, core=False)
            if len(parts) == 2:
                return documents.api_group(cluster, parts[1])
            if len(parts) == 3:
                return documents.resource_list(cluster, parts[1], parts[2])
            target = parse_target(cluster, parts[1], parts[2], parts[3:])
        else:
            raise errors.path_not_found()
        return await resource_request(self.services, request, cluster, target, user)


def _health(path: str, failure: BaseException | None) -> web.Response:
    status, body, content_type = health(path, failure)
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def health(path: str, failure: BaseException | None) -> tuple[int, bytes, str]:
    """A health path's answer (status, body, content type), over HTTP and in process."""
    if path.startswith("/version"):
        return 200, go_json(VERSION_INFO, INDENTED), JSON
    if failure is not None:  # a supervisor (kubelet, systemd) restarts a server whose storage failed
        return 500, f"storage failed: {failure}".encode(), TEXT
    return 200, b"ok", TEXT
