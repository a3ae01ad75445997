"""The objects every benchmark writes: ConfigMaps with about 1 KB of data."""

from __future__ import annotations

from typing import Any

import orjson

PAYLOAD = "x" * 1000  # ~1 KB of data per object


def configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"payload": PAYLOAD}}


def configmap_bytes(name: str, labels: dict[str, str] | None = None) -> bytes:
    return orjson.dumps(configmap(name, labels))


def stored_configmap_bytes(name: str, namespace: str, rv: int, labels: dict[str, str] | None = None) -> bytes:
    """About what the server stores for such a ConfigMap (uid, resourceVersion, timestamps)."""
    obj = configmap(name, labels)
    obj["metadata"].update({"namespace": namespace, "uid": f"00000000-0000-4000-8000-{rv:012d}",
                            "resourceVersion": str(rv), "creationTimestamp": "2026-01-01T00:00:00Z"})
    return orjson.dumps(obj)


def list_labels(i: int) -> dict[str, str]:
    """Labels of object i of the list data set: 1 in 10 carries sel=yes."""
    return {"app": "bench", "sel": "yes" if i % 10 == 0 else "no"}
