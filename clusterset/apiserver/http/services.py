"""What the HTTP layer serves from: the clusters, the REST pipeline, authentication, and the server's own
operations (the admin endpoint), given by the server that composes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clusterset.apiserver.auth.authn import Authenticator
from clusterset.apiserver.auth.tokens import TokenIssuer
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.sqlite import Database


class ClusterAdmin(Protocol):
    """The server's operations on its set of clusters (`/admin/clusters`)."""

    async def add_cluster(self, name: str, *, dual_stack: bool = False, controllers: bool = True, nodes: int = 3,
                          pod_ready_delay: float = 0.5) -> None: ...

    async def remove_cluster(self, name: str) -> None: ...

    async def refresh_kubeconfig(self) -> None: ...

    def cluster_url(self, name: str) -> str: ...


@dataclass
class Services:
    clusters: Mapping[str, Cluster]
    rest: Rest
    authenticator: Authenticator
    tokens: TokenIssuer
    admin: ClusterAdmin
    admin_token: str
    max_body: int
    bookmark_interval: float
    db: Database  # every answer commits what it shows first (http/app.py)
    # discovery and OpenAPI documents: (cluster, document) → (registry generation, document)
    documents: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
