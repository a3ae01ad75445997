"""HTTP: routing of kube-apiserver paths, authentication and authorization, content negotiation, watch streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiohttp import web

from clusterset.apiserver.auth import reviews, tokens
from clusterset.apiserver.auth.attributes import Attributes, request_attributes, watch_requested
from clusterset.apiserver.auth.authz import authorize, authorize_create_on_apply, forbidden
from clusterset.apiserver.auth.impersonation import impersonate, wants_impersonation
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http import discovery
from clusterset.apiserver.http.openapi import (
    OPENAPI_V2_PROTOBUF_TYPE,
    openapi_hash,
    openapi_v2_json,
    openapi_v2_protobuf,
    openapi_v3_document,
    openapi_v3_index,
)
from clusterset.apiserver.http.protobuf import CONTENT_TYPE as PROTOBUF
from clusterset.apiserver.http.protobuf import decode_protobuf
from clusterset.apiserver.http.tables import to_table
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.selectors import parse_field_selector, parse_label_selector
from clusterset.apiserver.meta.version import VERSION_INFO
from clusterset.apiserver.meta.yamlcodec import load_yaml
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.lists import ListOptions, list_entries, raw_as, watch_filter
from clusterset.apiserver.registry.patching import APPLY_PATCH, patch
from clusterset.apiserver.registry.scale import scale_of, write_scale
from clusterset.apiserver.storage.store import Event, TooOld

if TYPE_CHECKING:
    from clusterset.apiserver.server import Apiserver

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
JSON = "application/json"


def make_app(server: Apiserver) -> web.Application:
    app = web.Application(client_max_size=server.max_body + 1024)
    handler = Handler(server)
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers={**(headers or {}), "Content-Type": JSON})


def _status_response(err: StatusError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(err.retry_after)
    return _json(err.to_status(), err.code, headers)


@dataclass
class Target:
    """A parsed resource path."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


class Handler:
    def __init__(self, server: Apiserver) -> None:
        self.server = server
        self._discovery_cache: dict[tuple[str, str, int], Any] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except StatusError as err:
            return _status_response(err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # never a bare 500 page: a Status, and the server keeps going
            log.exception("internal error on %s %s", request.method, request.path)
            return _status_response(errors.internal(str(exc) or type(exc).__name__))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in HEALTH_PATHS:
            return self._health(path)
        if path.startswith("/admin/"):
            self._auth_admin(request)
            return await self._admin(request, path[len("/admin/") :])
        if not path.startswith("/clusters/"):
            if self._bearer(request) is None:
                raise errors.unauthorized()
            raise errors.path_not_found()
        rest = path[len("/clusters/") :]
        name, _, sub = rest.partition("/")
        sub_path = "/" + sub
        if sub_path in HEALTH_PATHS:
            if name not in self.server.clusters:
                raise errors.path_not_found()
            return self._health(sub_path)
        cluster, user = self._auth_cluster(request, name)
        if wants_impersonation(request.headers):
            user = impersonate(cluster, user, request.headers)
        if not user.master:  # system:masters (the admin token) skips authorization, as upstream
            attrs = request_attributes(request.method, sub_path, request.query)
            decision = authorize(cluster, user, attrs)
            if not decision.allowed:
                raise forbidden(user, attrs, decision.reason)
        return await self._cluster_request(request, cluster, sub_path, user)

    # ---------------------------------------------------------------- auth
    @staticmethod
    def _bearer(request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip()
        return None

    def _auth_cluster(self, request: web.Request, name: str) -> tuple[Cluster, UserInfo]:
        found = self.server.authenticator.authenticate(self._bearer(request), name)
        if found is None:
            raise errors.unauthorized()
        return found

    def _auth_admin(self, request: web.Request) -> None:
        if not secrets.compare_digest(self._bearer(request) or "", self.server.admin_token):
            raise errors.unauthorized()  # constant time: this token can read every cluster's token

    # ---------------------------------------------------------------- non-resource
    @staticmethod
    def _health(path: str) -> web.Response:
        if path.startswith("/version"):
            return _json(VERSION_INFO)
        return web.Response(text="ok", content_type="text/plain")

    async def _admin(self, request: web.Request, path: str) -> web.Response:
        """`/admin/clusters`: list (GET), add (POST {"name"}), remove (DELETE /admin/clusters/<name>)."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["clusters"]:
            raise errors.path_not_found()
        if request.method == "GET" and len(parts) == 1:
            return _json({"clusters": [self._cluster_info(c) for c in self.server.clusters.values()]})
        if request.method == "POST" and len(parts) == 1:
            body = await self._read_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise errors.bad_request('expected {"name": "<cluster name>"}')
            try:
                nodes, delay = int(body.get("nodes", 3)), float(body.get("podReadyDelay", 0.5))
            except (TypeError, ValueError) as exc:
                raise errors.bad_request('"nodes" must be an integer and "podReadyDelay" a number of seconds') from exc
            cluster = await self.server.add_cluster(
                body["name"], dual_stack=bool(body.get("dualStack")), controllers=body.get("controllers") is not False,
                nodes=nodes, pod_ready_delay=delay,
            )
            await self.server.refresh_kubeconfig()
            return _json(self._cluster_info(cluster), 201)
        if request.method == "DELETE" and len(parts) == 2:
            await self.server.remove_cluster(parts[1])
            await self.server.refresh_kubeconfig()
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        raise errors.method_not_allowed()

    def _cluster_info(self, cluster: Cluster) -> dict[str, Any]:
        return {
            "name": cluster.name,
            "server": self.server.cluster_url(cluster.name),
            "token": cluster.token,
            **{k: v for k, v in cluster.settings.items() if k not in ("token",)},
        }

    async def _cluster_request(self, request: web.Request, cluster: Cluster, path: str, user: UserInfo
                               ) -> web.StreamResponse:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _json(
                {
                    "paths": [
                        "/api",
                        "/api/v1",
                        "/apis",
                        "/healthz",
                        "/livez",
                        "/openapi/v2",
                        "/openapi/v3",
                        "/readyz",
                        "/version",
                    ]
                }
            )
        head = parts[0]
        if head == "openapi":
            return self._openapi(request, cluster, parts[1:])
        if head == "api":
            if len(parts) == 1:
                return self._discovery_root(request, cluster, core=True)
            if parts[1] != "v1":
                raise errors.path_not_found()
            if len(parts) == 2:
                return self._resource_list(cluster, "", "v1")
            target = self._parse_target(cluster, "", "v1", parts[2:])
        elif head == "apis":
            if len(parts) == 1:
                return self._discovery_root(request, cluster, core=False)
            if len(parts) == 2:
                doc = discovery.api_group(cluster.registry, parts[1])
                if doc is None:
                    raise errors.path_not_found()
                return _json(doc)
            if len(parts) == 3:
                return self._resource_list(cluster, parts[1], parts[2])
            target = self._parse_target(cluster, parts[1], parts[2], parts[3:])
        else:
            raise errors.path_not_found()
        return await self._resource_request(request, cluster, target, user)

    def _discovery_root(self, request: web.Request, cluster: Cluster, core: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        version = discovery.aggregated_version(accept)
        headers = {"Vary": "Accept"}
        if version is not None:
            key = (cluster.name, f"agg-{core}-{version}", cluster.registry.generation)
            body = self._discovery_cache.get(key)
            if body is None:
                body = orjson.dumps(discovery.aggregated(cluster.registry, core, f"apidiscovery.k8s.io/{version}"))
                self._discovery_cache[key] = body
            content_type = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
            return web.Response(body=body, headers={**headers, "Content-Type": content_type})
        if core:
            host = request.host or f"{self.server.host}:{self.server.port}"
            return _json(discovery.api_versions(host), headers=headers)
        return _json(discovery.api_group_list(cluster.registry), headers=headers)

    def _resource_list(self, cluster: Cluster, group: str, version: str) -> web.Response:
        doc = discovery.api_resource_list(cluster.registry, group, version)
        if doc is None:
            raise errors.path_not_found()
        return _json(doc)

    def _openapi(self, request: web.Request, cluster: Cluster, parts: list[str]) -> web.Response:
        if parts == ["v2"]:
            if "protobuf" in request.headers.get("Accept", ""):
                return web.Response(body=openapi_v2_protobuf(), headers={"Content-Type": OPENAPI_V2_PROTOBUF_TYPE})
            return _json(openapi_v2_json())
        if parts[:1] != ["v3"]:
            raise errors.path_not_found()
        docs = self._openapi_docs(cluster)
        if len(parts) == 1:
            return _json(openapi_v3_index(f"/clusters/{cluster.name}", {k: h for k, (h, _) in docs.items()}))
        key = "/".join(parts[1:])
        if key not in docs:
            raise errors.path_not_found()
        digest, body = docs[key]
        return web.Response(
            body=body, headers={"Content-Type": JSON, "Cache-Control": "public, immutable", "Etag": f'"{digest}"'}
        )

    def _openapi_docs(self, cluster: Cluster) -> dict[str, tuple[str, bytes]]:
        cache_key = (cluster.name, "openapi", cluster.registry.generation)
        cached = self._discovery_cache.get(cache_key)
        if cached is not None:
            docs: dict[str, tuple[str, bytes]] = cached
            return docs
        docs = {}
        for group, versions in cluster.registry.group_versions().items():
            for version in versions:
                resources = [s.rt for s in cluster.registry.in_group_version(group, version)]
                doc = openapi_v3_document(group, version, resources)
                key = f"apis/{group}/{version}" if group else f"api/{version}"
                docs[key] = (openapi_hash(doc), orjson.dumps(doc))
        self._discovery_cache[cache_key] = docs
        return docs

    # ---------------------------------------------------------------- resources
    def _parse_target(self, cluster: Cluster, group: str, version: str, parts: list[str]) -> Target:
        namespace: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
            namespace = parts[1]
            parts = parts[2:]
        if len(parts) > 3 or not parts:
            raise errors.path_not_found()
        plural = parts[0]
        served = cluster.registry.get(group, version, plural)
        if served is None:
            raise errors.path_not_found()
        if served.rt.namespaced != (namespace is not None) and not (served.rt.namespaced and len(parts) == 1):
            raise errors.path_not_found()
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if sub is not None and sub not in served.rt.subresources:
            raise errors.path_not_found()
        return Target(group, version, plural, namespace, name, sub)

    def _ctx(self, request: web.Request, cluster: Cluster, target: Target) -> Ctx:
        q = request.query
        served = cluster.registry.get(target.group, target.version, target.plural)
        assert served is not None
        manager = q.get("fieldManager")
        explicit = manager is not None
        if manager is not None and (len(manager) > 128 or not manager.isprintable()):
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [errors.field_invalid("fieldManager", manager, "must be less than 128 characters and printable")],
            )
        if manager is None:
            manager = request.headers.get("User-Agent", "unknown").split("/")[0]
        validation = q.get("fieldValidation", "") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f"fieldValidation {validation} is not a valid value: must be Strict, Warn or Ignore"
            )
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'unsupported dry run option "{d}"; only "All" is supported')
        ctx = Ctx(
            cluster,
            served,
            target.namespace,
            manager=manager,
            manager_explicit=explicit,
            dry_run=bool(dry),
            field_validation=validation,
        )
        if served.rt.deprecated:
            ctx.warnings.append(
                served.rt.deprecation_warning or f"{served.rt.group_version} {served.rt.kind} is deprecated"
            )
        return ctx

    async def _resource_request(self, request: web.Request, cluster: Cluster, target: Target, user: UserInfo
                                ) -> web.StreamResponse:
        ctx = self._ctx(request, cluster, target)
        method = request.method
        rest = self.server.rest
        q = request.query
        if reviews.is_review(target.group, target.plural):
            if method != "POST" or target.name is not None:
                raise errors.method_not_allowed()
            body = await self._read_typed(request, ctx.rt.kind, target.version)
            review = reviews.create_review(cluster, self.server.authenticator, user, target.group, target.version,
                                           target.plural, target.namespace, body)
            return self._respond(ctx, review, 201)
        if target.name is None:
            if method == "GET":
                watching = watch_requested(q)  # as authorization read it
                opts = self._list_options(request, watching)
                if watching:
                    return await self._watch(request, ctx, opts)
                if q.get("sendInitialEvents"):
                    raise _list_options_invalid(
                        "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list"
                    )
                return await self._list(request, ctx, opts)
            if method == "POST":
                body = await self._read_body(request, ctx)
                obj = await rest.create(ctx, body)
                return self._respond(ctx, obj, 201)
            if method == "DELETE":
                self._verb_allowed(ctx, "deletecollection")
                opts = self._list_options(request)
                options = await self._delete_options(request)
                result = await rest.delete_collection(ctx, opts, options)
                return self._respond(ctx, result)
            raise errors.method_not_allowed()
        name = target.name
        sub = target.subresource
        if method == "GET":
            entry = rest.get(ctx, name)
            if sub == "scale":
                return self._respond(ctx, scale_of(ctx, entry.obj))
            if sub in ("finalize", "token"):
                raise errors.method_not_allowed()
            if wants_table(request.headers.get("Accept", "")):
                return self._respond(
                    ctx,
                    to_table(
                        ctx.rt,
                        [entry.obj],
                        include_object=q.get("includeObject", "Metadata"),
                        resource_version=entry.obj["metadata"]["resourceVersion"],
                    ),
                )
            body = raw_as(entry, ctx.rt.group_version)
            return web.Response(body=body, headers={"Content-Type": JSON, **self._warning_headers(ctx)})
        if method == "PUT":
            body = await self._read_body(request, ctx)
            if sub == "scale":
                return self._respond(ctx, await write_scale(rest, ctx, name, body))
            if sub == "token":
                raise errors.method_not_allowed()
            obj = await rest.update(ctx, name, body, sub)
            return self._respond(ctx, obj, 200)
        if method == "PATCH":
            raw = await self._read_raw(request)
            content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
            force_param = q.get("force")
            force = None if force_param is None else _truthy(force_param)
            if content_type == APPLY_PATCH and not user.master \
                    and cluster.store.get(ctx.served.key, ctx.namespace or "", name) is None:
                # an apply that creates needs `create` too (no await until rest.patch looks the object up)
                authorize_create_on_apply(cluster, user, Attributes(
                    "create", True, request.path, ctx.namespace or "", target.group, target.version, target.plural,
                    sub or "", name))
            code, obj = await patch(rest, ctx, name, content_type, raw, sub, force)
            return self._respond(ctx, obj, code)
        if method == "DELETE":
            if sub is not None:
                raise errors.method_not_allowed()
            options = await self._delete_options(request)
            _code, result = await rest.delete(ctx, name, options)
            return self._respond(ctx, result)
        if method == "POST" and sub == "token":
            body = await self._read_typed(request, "TokenRequest", "v1")
            assert target.namespace is not None
            result = tokens.token_request(self.server.tokens, cluster.name, cluster.store, target.namespace, name,
                                          body)
            return self._respond(ctx, result, 201)
        raise errors.method_not_allowed()

    def _verb_allowed(self, ctx: Ctx, verb: str) -> None:
        if verb not in ctx.rt.verbs:
            raise errors.method_not_allowed()

    def _respond(self, ctx: Ctx, body: Any, code: int = 200) -> web.Response:
        return _json(body, code, self._warning_headers(ctx))

    @staticmethod
    def _warning_headers(ctx: Ctx) -> dict[str, str]:
        if not ctx.warnings:
            return {}
        # aiohttp joins repeated keys poorly; kube clients accept comma-separated warning values
        return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in ctx.warnings)}

    # ---------------------------------------------------------------- request bodies
    async def _read_raw(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.server.max_body:
            raise errors.too_large(self.server.max_body)
        chunks: list[bytes] = []
        size = 0
        while True:  # read(n) returns what has arrived so far, not n bytes: read to the end
            chunk = await request.content.read(self.server.max_body + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > self.server.max_body:
                raise errors.too_large(self.server.max_body)

    async def _read_json(self, request: web.Request) -> Any:
        return _decode(await self._read_raw(request), request.headers.get("Content-Type", ""), strict=False)

    async def _read_typed(self, request: web.Request, kind: str, version: str) -> Any:
        """A body that is not the resource's own kind (TokenRequest, the reviews)."""
        raw = await self._read_raw(request)
        return _decode(raw, request.headers.get("Content-Type", ""), strict=False, kind=kind, version=version)

    async def _read_body(self, request: web.Request, ctx: Ctx) -> Any:
        raw = await self._read_raw(request)
        return _decode(
            raw,
            request.headers.get("Content-Type", ""),
            strict=ctx.field_validation == "Strict",
            kind=ctx.rt.kind,
            version=ctx.rt.version,
        )

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await self._read_raw(request)
            if raw.strip():
                body = _decode(raw, request.headers.get("Content-Type", ""), strict=False)
                if not isinstance(body, dict):
                    raise errors.bad_request("DeleteOptions must be an object")
                options.update(body)
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            try:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError as exc:
                raise errors.bad_request("gracePeriodSeconds must be an integer") from exc
        if "orphanDependents" in q:
            options["orphanDependents"] = _truthy(q["orphanDependents"])
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                "",
                [
                    errors.field_not_supported(
                        "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]
                    )
                ],
            )
        return options

    # ---------------------------------------------------------------- list and watch
    def _list_options(self, request: web.Request, watching: bool = False) -> ListOptions:
        q = request.query
        limit_text = q.get("limit", "0") or "0"
        try:
            limit = int(limit_text)
        except ValueError as exc:
            raise errors.bad_request(f"limit: invalid value {limit_text!r}") from exc
        opts = ListOptions(
            label_selector=parse_label_selector(q.get("labelSelector")),
            field_selector=parse_field_selector(q.get("fieldSelector")),
            limit=max(0, limit),
            continue_token=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
        )
        match = opts.resource_version_match
        if match and not watching:
            if match not in ("Exact", "NotOlderThan"):
                raise _list_options_invalid(
                    "resourceVersionMatch", f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"'
                )
            if not opts.resource_version:
                raise _list_options_invalid(
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            if opts.continue_token:
                raise _list_options_invalid(
                    "resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden when continue is provided"
                )
            if match == "Exact" and opts.resource_version == "0":
                raise _list_options_invalid(
                    "resourceVersionMatch",
                    'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
        return opts

    async def _list(self, request: web.Request, ctx: Ctx, opts: ListOptions) -> web.Response:
        store = ctx.cluster.store
        rv_text = opts.resource_version
        if rv_text and rv_text != "0" and not opts.continue_token:
            rv = _parse_rv(rv_text)
            exact = opts.resource_version_match == "Exact" or (not opts.resource_version_match and opts.limit)
            if rv > store.rv:
                if not await store.wait_for_rv(rv, 3.0):
                    raise StatusError(
                        504,
                        "Timeout",
                        f"Timeout: Too large resource version: {rv}, current: {store.rv}",
                        {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]},
                        retry_after=1,
                    )
            elif exact and rv < store.rv and store.changed_since(ctx.served.key, rv):
                raise errors.expired("The resourceVersion for the provided list is too old.")
        entries, meta = list_entries(ctx, opts)
        accept = request.headers.get("Accept", "")
        if wants_table(accept):
            table = to_table(
                ctx.rt,
                [e.obj for e in entries],
                include_object=request.query.get("includeObject", "Metadata"),
                resource_version=meta["resourceVersion"],
                continue_token=meta.get("continue", ""),
            )
            if "remainingItemCount" in meta:
                table["metadata"]["remainingItemCount"] = meta["remainingItemCount"]
            return self._respond(ctx, table)
        head = orjson.dumps({"kind": ctx.rt.list_kind, "apiVersion": ctx.rt.group_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(raw_as(e, ctx.rt.group_version) for e in entries) + b"]}"
        return web.Response(body=body, headers={"Content-Type": JSON, **self._warning_headers(ctx)})

    async def _watch(self, request: web.Request, ctx: Ctx, opts: ListOptions) -> web.StreamResponse:
        q = request.query
        store = ctx.cluster.store
        send_initial = q.get("sendInitialEvents")
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        if send_initial is not None:
            if opts.resource_version_match != "NotOlderThan":
                raise _list_options_invalid(
                    "sendInitialEvents",
                    "Forbidden: sendInitialEvents is forbidden for watch "
                    "unless resourceVersionMatch is set to NotOlderThan",
                )
            if not bookmarks and _truthy(send_initial):
                raise _list_options_invalid(
                    "allowWatchBookmarks",
                    "Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is true",
                )
        elif opts.resource_version_match:
            raise _list_options_invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            )
        timeout_text = q.get("timeoutSeconds")
        timeout = float(timeout_text) if timeout_text else 1800.0
        accepts = watch_filter(ctx, opts)
        rv_text = opts.resource_version
        initial: list[Event] = []
        initial_snapshot = send_initial is not None and _truthy(send_initial)
        after: int | None
        after = None if initial_snapshot or rv_text in ("", "0") else _parse_rv(rv_text)
        table = wants_table(request.headers.get("Accept", ""))
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": JSON, "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private"},
        )
        try:
            watcher, replay = store.watch(ctx.served.key, accepts, after)
        except TooOld as exc:
            await response.prepare(request)
            status = errors.expired(f"too old resource version: {exc.requested} ({exc.current})").to_status()
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            await response.write_eof()
            return response
        if after is None:
            snapshot_rv = store.rv
            for entry in store.entries(ctx.served.key, ctx.namespace):
                ev = Event(int(entry.obj["metadata"]["resourceVersion"]), "ADDED", ctx.served.key, entry)
                if accepts(ev):
                    initial.append(ev)
        else:
            snapshot_rv = after
            initial = replay
        await response.prepare(request)
        last_rv = snapshot_rv
        try:
            for ev in initial:
                await response.write(self._event_bytes(ctx, ev, table))
            if initial_snapshot:
                await response.write(
                    self._bookmark(ctx, store.rv if not initial else max(snapshot_rv, store.rv), initial_end=True)
                )
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.server.bookmark_interval
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - now))
                try:
                    got = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and time.monotonic() >= next_bookmark:
                        await response.write(self._bookmark(ctx, max(last_rv, store.rv)))
                        next_bookmark = time.monotonic() + self.server.bookmark_interval
                    continue
                if got is None:
                    break
                chunks = [self._event_bytes(ctx, got, table)]
                last_rv = got.rv
                while not watcher.queue.empty():
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        watcher.closed = True
                        break
                    chunks.append(self._event_bytes(ctx, nxt, table))
                    last_rv = nxt.rv
                await response.write(b"".join(chunks))
                if watcher.closed:
                    break
        except ConnectionResetError:
            pass
        finally:
            store.unwatch(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    def _event_bytes(self, ctx: Ctx, ev: Event, table: bool) -> bytes:
        if table:
            obj = to_table(ctx.rt, [ev.entry.obj], resource_version=str(ev.rv))
            return orjson.dumps({"type": ev.type, "object": obj}) + b"\n"
        raw = raw_as(ev.entry, ctx.rt.group_version)
        return b'{"type":"' + ev.type.encode() + b'","object":' + raw + b"}\n"

    def _bookmark(self, ctx: Ctx, rv: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": ctx.rt.kind, "apiVersion": ctx.rt.group_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError as exc:
        raise errors.bad_request(f'invalid resource version "{text}"') from exc


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def _list_options_invalid(field: str, message: str) -> StatusError:
    reason = "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueNotSupported"
    return errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError(field, reason, message)])


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'duplicate field "{key}"')
        out[key] = value
    return out


def _decode(raw: bytes, content_type: str, *, strict: bool, kind: str = "", version: str = "") -> Any:
    """JSON, YAML or Kubernetes protobuf body → Python; malformed input is a 400, never a 500."""
    media = content_type.split(";")[0].strip().lower()
    if media == PROTOBUF:
        return decode_protobuf(raw)  # kubectl >= 1.32 sends built-in kinds this way
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    try:
        if media in ("application/yaml", "application/x-yaml", "text/yaml"):
            return load_yaml(raw.decode("utf-8"))
        if strict:
            return json.loads(raw, object_pairs_hook=_no_duplicates)
        return orjson.loads(raw)
    except ValueError as exc:
        prefix = f'{kind} in version "{version}" cannot be handled as a {kind}: ' if kind else ""
        if "duplicate field" in str(exc):
            raise errors.bad_request(f"{prefix}strict decoding error: {exc}") from exc
        raise errors.bad_request(f"{prefix}{exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
