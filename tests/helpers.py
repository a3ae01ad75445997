"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo

T = TypeVar("T")

# A Service and the ReplicationController behind it, as an old multi-document manifest has them
WEB_RC = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
"""



def wait_until(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> T:
    """Polls `predicate` until it returns something truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def install(info: ClusterInfo, manifests: list[dict[str, Any]]) -> None:
    """Creates CRDs and waits until each is Established (served)."""
    ext = client.ApiextensionsV1Api(info.api_client())
    for crd in manifests:
        ext.create_custom_resource_definition(crd)
    for crd in manifests:
        name = crd["metadata"]["name"]

        def established(name: str = name) -> bool:
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conds)

        wait_until(established)


def core(info: ClusterInfo) -> client.CoreV1Api:
    return client.CoreV1Api(info.api_client())


def apps(info: ClusterInfo) -> client.AppsV1Api:
    return client.AppsV1Api(info.api_client())


def custom(info: ClusterInfo) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(info.api_client())


def table(text: str) -> list[list[str]]:
    """kubectl's human-readable table as rows of cells, cut at the header's column starts (so blank cells
    stay in place)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    bounds = [*starts[1:], None]
    return [[line[start:end].strip() for start, end in zip(starts, bounds, strict=True)] for line in lines]


def gone(read: Callable[[], Any]) -> bool:
    """True once `read()` answers 404."""
    try:
        read()
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False
