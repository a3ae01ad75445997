"""A cluster's endpoint as a kubeconfig v1 `Cluster`: what may be shared (server, CA), never credentials."""

from __future__ import annotations

import base64
from typing import Any

from clusterset.client import ClusterClient


def endpoint_of(member: ClusterClient) -> dict[str, Any]:
    """How consumers reach the member: a kubeconfig v1 Cluster without credentials."""
    cluster: dict[str, Any] = {"server": member.server}
    ca = member.config.ca_data
    if ca is None and member.config.ca_file:
        with open(member.config.ca_file, "rb") as f:
            ca = f.read()
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    if member.config.tls_server_name:
        cluster["tls-server-name"] = member.config.tls_server_name
    return cluster
