"""`/admin/clusters` (the server's admin token only): list (GET), add (POST {"name", ...}), remove
(DELETE /admin/clusters/<name>) logical clusters of the running server."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from clusterset.apiserver.http.codecs import json_response, read_body
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors


async def admin_request(services: Services, request: web.Request, path: str) -> web.Response:
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["clusters"]:
        raise errors.path_not_found()
    if request.method == "GET" and len(parts) == 1:
        return json_response({"clusters": [_cluster_info(services, name) for name in services.clusters]})
    if request.method == "POST" and len(parts) == 1:
        body = await read_body(request, services.max_body)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise errors.bad_request('expected {"name": "<cluster name>"}')
        try:
            nodes, delay = int(body.get("nodes", 3)), float(body.get("podReadyDelay", 0.5))
        except (TypeError, ValueError) as exc:
            raise errors.bad_request('"nodes" must be an integer and "podReadyDelay" a number of seconds') from exc
        await services.admin.add_cluster(
            body["name"], dual_stack=bool(body.get("dualStack")), controllers=body.get("controllers") is not False,
            nodes=nodes, pod_ready_delay=delay,
        )
        await services.admin.refresh_kubeconfig()
        return json_response(_cluster_info(services, body["name"]), 201)
    if request.method == "DELETE" and len(parts) == 2:
        await services.admin.remove_cluster(parts[1])
        await services.admin.refresh_kubeconfig()
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
    raise errors.method_not_allowed()


def _cluster_info(services: Services, name: str) -> dict[str, Any]:
    cluster = services.clusters[name]
    return {
        "name": cluster.name,
        "server": services.admin.cluster_url(cluster.name),
        "token": cluster.token,
        **{k: v for k, v in cluster.settings.items() if k != "token"},
    }
