"""In-cluster configuration, as client-go's `rest.InClusterConfig`: a process in a pod reaches its own cluster
through the `kubernetes` Service (`KUBERNETES_SERVICE_HOST`/`_PORT`) with the ServiceAccount token and CA the
kubelet mounts.

The token is a projected one that the kubelet rotates (hourly by default), so it is given as a file that the
client re-reads (once a minute and after a 401), never as a string read once. The mount directory can be pointed
elsewhere with `CLUSTERSET_SERVICEACCOUNT_DIR` (tests emulate a pod with it; a pod with its token mounted
elsewhere can use it too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from clusterset.client.config import ClientConfig
from clusterset.client.errors import CredentialError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DIR_VARIABLE = "CLUSTERSET_SERVICEACCOUNT_DIR"
HOST_VARIABLE = "KUBERNETES_SERVICE_HOST"
PORT_VARIABLE = "KUBERNETES_SERVICE_PORT"
NAMESPACE_VARIABLE = "POD_NAMESPACE"  # the downward API's usual name, which clientcmd also honours


def account_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the ServiceAccount's `token`, `ca.crt` and `namespace` are mounted."""
    env = os.environ if environ is None else environ
    return Path(env.get(DIR_VARIABLE) or SERVICE_ACCOUNT_DIR)


def in_cluster(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs in a pod: client-go's test (both service variables set) and a mounted token."""
    env = os.environ if environ is None else environ
    return bool(env.get(HOST_VARIABLE) and env.get(PORT_VARIABLE)) and (account_dir(env) / "token").is_file()


def in_cluster_config(environ: Mapping[str, str] | None = None) -> ClientConfig:
    """The configuration of the cluster this pod runs in. Raises CredentialError, saying what is missing, when
    not in a pod."""
    env = os.environ if environ is None else environ
    host, port = env.get(HOST_VARIABLE, ""), env.get(PORT_VARIABLE, "")
    if not host or not port:
        raise CredentialError(f"not running in a pod: {HOST_VARIABLE} and {PORT_VARIABLE} must be set")
    root = account_dir(env)
    token = root / "token"
    try:
        if not token.read_text().strip():
            raise CredentialError(f"the ServiceAccount token {token} is empty")
    except OSError as exc:
        raise CredentialError(f"cannot read the ServiceAccount token {token}: {exc.strerror}") from None
    ca = root / "ca.crt"
    namespace = env.get(NAMESPACE_VARIABLE) or _read(root / "namespace") or "default"
    return ClientConfig(
        server=f"https://{_join_host_port(host, port)}",
        name="in-cluster",
        namespace=namespace,
        ca_file=str(ca) if ca.is_file() else None,  # client-go: a missing CA falls back to the system's roots
        token_file=str(token),
    )


def _join_host_port(host: str, port: str) -> str:
    """net.JoinHostPort: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
