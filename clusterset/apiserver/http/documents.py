"""The endpoints that describe a cluster's API: discovery (legacy and aggregated) and OpenAPI v2/v3.

Documents are pure functions of the cluster's served resources (`discovery.py`, `openapi.py`); they are
built once per registry generation and kept until the registry changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from clusterset.apiserver.http import discovery
from clusterset.apiserver.http.codecs import ENCODED, JSON, MARSHALLED, json_response
from clusterset.apiserver.http.openapi import (
    OPENAPI_V2_PROTOBUF_TYPE,
    openapi_hash,
    openapi_v2_json,
    openapi_v2_protobuf,
    openapi_v3_document,
    openapi_v3_index,
)
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.encoding import go_json, kept

T = TypeVar("T")

ROOT_PATHS = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3", "/readyz", "/version"]


def _cached(services: Services, cluster: Cluster, what: str, build: Callable[[], T]) -> T:
    """One document per cluster and kind, rebuilt when the cluster's registry changes."""
    key = (cluster.name, what)
    found = services.documents.get(key)
    if found is not None and found[0] == cluster.registry.generation:
        result: T = found[1]
        return result
    value = build()
    services.documents[key] = (cluster.registry.generation, value)
    return value


def discovery_root(services: Services, request: web.Request, cluster: Cluster, core: bool) -> web.Response:
    """`/api` or `/apis`: aggregated discovery when the client asks for it, else the legacy documents."""
    version = discovery.aggregated_version(request.headers.get("Accept", ""))
    headers = {"Vary": "Accept"}
    if version is not None:
        body = _cached(services, cluster, f"aggregated-{core}-{version}", lambda: kept(go_json(
            discovery.aggregated(cluster.registry, core, f"apidiscovery.k8s.io/{version}"), ENCODED)))
        content_type = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})
    if core:
        return json_response(discovery.api_versions(request.host), headers=headers)
    return json_response(discovery.api_group_list(cluster.registry), headers=headers)


def api_group(cluster: Cluster, group: str) -> web.Response:
    doc = discovery.api_group(cluster.registry, group)
    if doc is None:
        raise errors.path_not_found()
    return json_response(doc)


def resource_list(cluster: Cluster, group: str, version: str) -> web.Response:
    doc = discovery.api_resource_list(cluster.registry, group, version)
    if doc is None:
        raise errors.path_not_found()
    return json_response(doc)


def openapi(services: Services, request: web.Request, cluster: Cluster, parts: list[str]) -> web.Response:
    if parts == ["v2"]:
        if "protobuf" in request.headers.get("Accept", ""):
            return web.Response(body=openapi_v2_protobuf(), headers={"Content-Type": OPENAPI_V2_PROTOBUF_TYPE})
        return json_response(openapi_v2_json(), form=MARSHALLED)
    if parts[:1] != ["v3"]:
        raise errors.path_not_found()
    docs = _cached(services, cluster, "openapi-v3", lambda: _openapi_v3(cluster))
    if len(parts) == 1:
        index = openapi_v3_index(f"/clusters/{cluster.name}", {k: h for k, (h, _) in docs.items()})
        return json_response(index, form=MARSHALLED)
    key = "/".join(parts[1:])
    if key not in docs:
        raise errors.path_not_found()
    digest, body = docs[key]
    return web.Response(
        body=body, headers={"Content-Type": JSON, "Cache-Control": "public, immutable", "Etag": f'"{digest}"'}
    )


def _openapi_v3(cluster: Cluster) -> dict[str, tuple[str, bytes]]:
    docs: dict[str, tuple[str, bytes]] = {}
    for group, versions in cluster.registry.group_versions().items():
        for version in versions:
            resources = [s.rt for s in cluster.registry.in_group_version(group, version)]
            doc: dict[str, Any] = openapi_v3_document(group, version, resources)
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            docs[key] = (openapi_hash(doc), kept(orjson.dumps(doc)))
    return docs
