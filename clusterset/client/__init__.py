"""Async Kubernetes REST client on raw dicts: kubeconfig, exec credentials, retries, typed errors."""

from clusterset.client.client import ClusterClient
from clusterset.client.config import ClientConfig, ExecConfig, RetryPolicy
from clusterset.client.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    CredentialError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from clusterset.client.kubeconfig import load_kubeconfig

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ClientConfig",
    "ClusterClient",
    "Conflict",
    "ConnectionFailed",
    "CredentialError",
    "ExecConfig",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "RetryPolicy",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "load_kubeconfig",
]
