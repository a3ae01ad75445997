"""What a client needs of a server in its own process that answers some requests without HTTP (the embedded
fleet's `Apiserver.in_process`): the request as it would go over HTTP in, the answer as HTTP would carry it out."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Protocol


class InProcessAnswer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    @property
    def content_type(self) -> str:
        """JSON, but for `/readyz` and the like (text)."""

    @property
    def stream(self) -> AsyncGenerator[bytes, None] | None:
        """A watch's events, newline-ended, however chunked."""


class InProcessServer(Protocol):
    async def request(self, token: str | None, method: str, path: str, query: Mapping[str, str], body: bytes | None,
                      content_type: str | None, user_agent: str = ..., accept: str | None = ...
                      ) -> InProcessAnswer | None:
        """The answer to a request to `path` (under the client's server URL) as the holder of `token`, or None: not
        served in process, send it over HTTP. `accept`: the Accept header (JSON when None)."""
