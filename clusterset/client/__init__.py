"""Async Kubernetes REST client on raw dicts: kubeconfig, in-cluster configuration, exec credentials, retries,
typed errors."""

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
from clusterset.client.incluster import in_cluster, in_cluster_config
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
    "in_cluster",
    "in_cluster_config",
    "load_kubeconfig",
]
