"""How to reach and authenticate to one cluster: the client's whole configuration, no I/O.

`ClientConfig` is what a kubeconfig context or a ClusterProfile access provider turns into; the
client never looks at kubeconfig files or ClusterProfiles itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_EXTENSION = "client.authentication.k8s.io/exec"


@dataclass
class ExecConfig:
    """A client-go exec credential plugin (KEP-541), as in a kubeconfig `user.exec` stanza.

    `config` is the per-cluster plugin configuration (the cluster's `client.authentication.k8s.io/exec`
    extension); it reaches the plugin as `spec.cluster.config` when `provide_cluster_info` is true.
    """

    command: str
    api_version: str = "client.authentication.k8s.io/v1"
    args: list[str] = field(default_factory=list)
    env: list[dict[str, str]] = field(default_factory=list)
    provide_cluster_info: bool = False
    interactive_mode: str = "Never"
    install_hint: str = ""
    config: Any = None


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    `attempts` counts every try, the first included. A `Retry-After` header replaces the computed
    delay (capped by `max_retry_after`).
    """

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number `attempt + 1` (`attempt` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


@dataclass
class ClientConfig:
    """Server, TLS, credentials and transport settings of one cluster.

    Certificate and key data are PEM bytes (already base64-decoded); `*_file` fields are paths.
    `token_file` is re-read once a minute and after a 401, so rotated service-account tokens keep working.
    """

    server: str
    name: str = ""
    namespace: str = "default"
    ca_data: bytes | None = None
    ca_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    exec: ExecConfig | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy: str | None = None
    disable_compression: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    user_agent: str | None = None
