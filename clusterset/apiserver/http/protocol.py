"""aiohttp's HTTP/1.1 protocol with kube-apiserver's limits, and the requests it refuses answered as a Status.

kube-apiserver (Go's net/http) reads up to 1 MiB of request line and headers; a label selector of thousands
of terms fits in a URL. aiohttp's defaults (8 KiB a line) refuse that with a plain-text 400 before any
handler runs. The request line may have 1 MiB here too; a header 64 KiB (128 of them at most, aiohttp's
count), so that one request's head stays bounded. What the parser refuses (a line or header too long, a
malformed request) becomes a `Status` like every other error: 431 for a head too large (Go's code), else 400.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from clusterset.apiserver.http.codecs import status_response
from clusterset.apiserver.meta.errors import StatusError

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 1024 * 1024
MAX_HEADER = 64 * 1024
_HANDLER_OPTIONS: dict[str, Any] = {"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER,
                                    "access_log": None}  # no access log, as the server's AppRunner is made


class StatusErrorHandler(web.RequestHandler):
    """One connection's protocol; a request refused before routing gets a Status body."""

    __slots__ = ()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of a response went out already: only closing is left
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        log.debug("refused a request from %s: %s", request.remote, exc)
        err = refusal(status, exc)
        response = status_response(err)
        response.force_close()
        return response


def refusal(status: int, exc: BaseException | None) -> StatusError:
    if isinstance(exc, LineTooLong):
        return StatusError(
            431, "RequestHeaderFieldsTooLarge",
            f"Request Header Fields Too Large: the request line may have at most {MAX_REQUEST_LINE} bytes "
            f"and each header {MAX_HEADER}",
        )
    if status == 400:
        detail = exc.message if isinstance(exc, HttpProcessingError) else ""
        return StatusError(400, "BadRequest", f"Bad Request: {detail}" if detail else "Bad Request")
    return StatusError(status, "InternalError" if status >= 500 else "", HTTPStatus(status).phrase)


# Connections the kernel queues before the loop accepts them; it caps this at net.core.somaxconn (4,096 on current
# Linux), as Go's servers ask. An embedded fleet's members open thousands at once while the loop is busy: at 1,024,
# a 200-member start saw Unix-socket connects fail with EAGAIN (TCP would drop SYNs: a second's retry each).
LISTEN_BACKLOG = 65_535


async def listen(runner: web.BaseRunner, sock: Any, ssl_context: Any) -> Any:
    """Serves `runner`'s server on the bound socket with these limits; returns the asyncio server (close it
    before cleaning up the runner). In place of aiohttp's SockSite, whose protocol cannot be chosen."""
    http_server = runner.server
    assert http_server is not None, "the runner is set up first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: StatusErrorHandler(http_server, loop=loop, **_HANDLER_OPTIONS),
        sock=sock, ssl=ssl_context, backlog=LISTEN_BACKLOG,
    )
