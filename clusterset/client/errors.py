"""Typed errors for API responses, so callers branch on kind of failure rather than on status codes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A non-2xx answer from the API server, carrying its `Status` body."""

    def __init__(self, status: int, body: dict[str, Any] | None = None, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.body: dict[str, Any] = body or {}
        self.reason: str = str(self.body.get("reason") or "")
        self.message: str = str(self.body.get("message") or f"HTTP {status}")
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}".strip())

    @property
    def details(self) -> dict[str, Any]:
        details = self.body.get("details")
        return details if isinstance(details, dict) else {}


class BadRequest(ApiError):
    """400."""


class Unauthorized(ApiError):
    """401: the credential was refused."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or admission) said no."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409 with reason Conflict: a stale resourceVersion; re-read and retry."""


class AlreadyExists(ApiError):
    """409 with reason AlreadyExists."""


class Gone(ApiError):
    """410 Expired: the resourceVersion is too old; relist."""


class Invalid(ApiError):
    """422: the object failed validation; `causes` name the fields."""

    @property
    def causes(self) -> list[dict[str, Any]]:
        causes = self.details.get("causes")
        return causes if isinstance(causes, list) else []


class TooManyRequests(ApiError):
    """429: retried by the client with backoff."""


class ServerError(ApiError):
    """5xx: retried by the client with backoff."""


class ConnectionFailed(Exception):
    """The server could not be reached (after retries)."""


class CredentialError(Exception):
    """No usable credential: an exec plugin failed, or the kubeconfig names no way to authenticate."""


def error_for(status: int, body: dict[str, Any] | None, *, method: str = "", path: str = "") -> ApiError:
    """The most specific ApiError subclass for a status code and Status body."""
    reason = (body or {}).get("reason")
    cls: type[ApiError]
    if status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status >= 500:
        cls = ServerError
    else:
        cls = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 410: Gone, 422: Invalid,
               429: TooManyRequests}.get(status, ApiError)
    return cls(status, body, method=method, path=path)
