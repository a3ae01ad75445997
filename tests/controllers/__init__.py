"""Tests of the simulated controllers of embedded clusters (nodes, scheduler, kubelet, workloads).

Helpers shared by the modules here: reading objects through kubectl's JSON output; waiting with
deadlines (never fixed sleeps) is `tests.helpers.wait_until`, re-exported.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, Any

from tests.helpers import wait_until

if TYPE_CHECKING:
    from clusterset.testing import ClusterInfo, ServerThread
    from tests.conftest import Kubectl


def settings(server: ServerThread, info: ClusterInfo) -> dict[str, Any]:
    """The stored settings of a logical cluster (nodes, podReadyDelay, CIDRs, ...)."""
    return server.server.cluster_settings(info.name)


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def items(kubectl: Kubectl, *args: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get_json(kubectl, *args)["items"]
    return result


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), {})


def in_network(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def table_rows(text: str) -> list[list[str]]:
    """kubectl's table output as rows of whitespace-separated cells (header dropped)."""
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


__all__ = ["condition", "get_json", "in_network", "items", "table_rows", "wait_until"]
