"""`ClusterClient`: the Kubernetes REST API of one cluster, on raw dicts, over aiohttp.

Retry rules (client-go's, extended to cover connection refusals):
- a connection that could not be opened (refused, unreachable; TLS errors excepted) is retried for
  every method: nothing was sent;
- 429, and any 5xx carrying `Retry-After`, are retried for every method: the server says it did not
  act (kube-apiserver's max-in-flight and priority-and-fairness rejections);
- other 5xx, timeouts and connections dropped after the request was sent are retried only for
  idempotent requests (GET, PUT, DELETE, merge/strategic/apply PATCH). POST (create, TokenRequest)
  and JSON patch are not, because the first try may have taken effect.
- a 401 when the credential can be renewed (exec plugin, token file) is retried once with a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from clusterset.api import objects
from clusterset.api.resources import Resource
from clusterset.client.auth import Credentials, ssl_context
from clusterset.client.config import ClientConfig
from clusterset.client.errors import ConnectionFailed, error_for
from clusterset.client.exec_credentials import Credential
from clusterset.client.inprocess import InProcessAnswer, InProcessServer
from clusterset.client.kubeconfig import load_kubeconfig
from clusterset.client.watch import WatchDecoder

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
JSON = "application/json"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("clusterset")
    except Exception:
        return "0.0.0"


USER_AGENT = f"clusterset/{_version()}"


class ClusterClient:
    """One cluster's API. Create inside the event loop that will use it; close it (or use `async with`)."""

    def __init__(self, config: ClientConfig, session: aiohttp.ClientSession | None = None,
                 in_process: InProcessServer | None = None) -> None:
        """`session`: share one connection pool among many clients (e.g. every cluster of an embedded
        fleet, which are all one host): requests then reuse keep-alive connections across clusters.
        A shared session is not closed by `close()`. `in_process`: the server is in this process and answers
        what it can without HTTP (the embedded fleet's own clients); such answers are final, never retried."""
        self.config = config
        self.server = config.server.rstrip("/")
        self.name = config.name
        self.namespace = config.namespace
        self.credentials = Credentials(config)
        self._shared_session = session
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._static_ssl: Any = None
        self._exec_ssl: tuple[Credential, Any] | None = None
        self._user_agent = config.user_agent or USER_AGENT
        self.in_process = in_process

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: ClientConfig) -> ClusterClient:
        return cls(config)

    @classmethod
    async def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> ClusterClient:
        """A client for `context` (default: current-context) of `path` (default: $KUBECONFIG, ~/.kube/config)."""
        return cls(await asyncio.to_thread(load_kubeconfig, path, context))

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
                        ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the client's connections; later requests raise ConnectionFailed instead of quietly opening
        new ones that nobody would close (e.g. a reconcile still running when its cluster is removed)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"ClusterClient({self.name or self.server!r})"

    def set_token(self, token: str) -> None:
        """Use another bearer token from the next request on (e.g. a renewed ServiceAccount token)."""
        self.config.token = token
        self.credentials = Credentials(self.config)

    # ------------------------------------------------------------------ verbs
    async def get(self, res: Resource, name: str, namespace: str | None = None, subresource: str | None = None
                  ) -> dict[str, Any]:
        _need_namespace(res, namespace, "get")
        return await self._json("GET", res.path(namespace, name, subresource))

    async def get_metadata(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The object's metadata only (a PartialObjectMetadata): what a check of its labels, annotations or owners
        needs, without the object (a CRD's schema) sent and decoded."""
        _need_namespace(res, namespace, "get")
        return await self._json("GET", res.path(namespace, name), accept=METADATA)

    async def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None
                   ) -> dict[str, Any]:
        """One page of the raw List (`metadata.continue` names the next page)."""
        query = _query(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                       resourceVersion=resource_version, resourceVersionMatch=resource_version_match)
        if continue_:
            query["continue"] = continue_
        return await self._json("GET", res.path(namespace), query=query)

    async def watch(self, res: Resource, namespace: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, resource_version: str | None = None,
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None,
                    send_initial_events: bool | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """Watch events `{"type", "object"}` until the server ends the stream.

        Raises `Gone` for 410 (an HTTP 410 or an ERROR event with code 410: relist), the matching ApiError
        for other ERROR events, ConnectionFailed if the stream breaks mid-way. Break out through
        `contextlib.aclosing(...)` to release the connection at once.
        """
        query = _query(labelSelector=label_selector, fieldSelector=field_selector, resourceVersion=resource_version,
                       timeoutSeconds=timeout_seconds)
        query["watch"] = "true"
        if allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if send_initial_events is not None:
            query["sendInitialEvents"] = "true" if send_initial_events else "false"
            query["resourceVersionMatch"] = "NotOlderThan"
        path = res.path(namespace)
        local = await self._local(method="GET", path=path, query=query, body=None)
        if local is not None:
            async with contextlib.aclosing(_local_events(local, path)) as events:
                async for event in events:
                    yield event
            return
        read_timeout = timeout_seconds + 30.0 if timeout_seconds else None
        resp, payload = await self._exchange("GET", path, query=query, stream=True,
                                       timeout=aiohttp.ClientTimeout(sock_connect=self.config.timeout,
                                                                     sock_read=read_timeout))
        try:
            if resp.status >= 300:
                raise _api_error(resp.status, payload, "GET", path)
            decoder = WatchDecoder(path)
            try:
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        yield event
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise ConnectionFailed(f"watch {self.server}{path}: stream broken: {exc!r}") from exc
            for event in decoder.close():
                yield event
        finally:
            resp.release()

    async def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None,
                     field_manager: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """POST; the namespace defaults to `obj.metadata.namespace`."""
        ns = namespace or objects.meta(obj).get("namespace")
        _need_namespace(res, ns, "create")
        query = _query(fieldManager=field_manager, dryRun="All" if dry_run else None)
        return await self._json("POST", res.path(ns), query=query, body=obj)

    async def update(self, res: Resource, obj: dict[str, Any], subresource: str | None = None,
                     field_manager: str | None = None) -> dict[str, Any]:
        """PUT the whole object (optimistic concurrency through its resourceVersion)."""
        meta = objects.meta(obj)
        ns = meta.get("namespace")
        _need_namespace(res, ns, "update")
        path = res.path(ns, _need_name(meta), subresource)
        return await self._json("PUT", path, query=_query(fieldManager=field_manager), body=obj)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    patch_type: str = "merge", subresource: str | None = None, field_manager: str | None = None,
                    force: bool | None = None) -> dict[str, Any]:
        """PATCH with `patch_type` merge | strategic | json | apply (`force` only for apply)."""
        try:
            content_type = PATCH_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"patch_type {patch_type!r}: use one of {', '.join(PATCH_TYPES)}") from None
        _need_namespace(res, namespace, "patch")
        query = _query(fieldManager=field_manager, force=None if force is None else str(force).lower())
        return await self._json("PATCH", res.path(namespace, name, subresource), query=query, body=patch,
                                content_type=content_type)

    async def apply(self, res: Resource, obj: dict[str, Any], field_manager: str, force: bool = True,
                    subresource: str | None = None) -> dict[str, Any]:
        """Server-side apply of `obj` (apiVersion and kind default to the resource's)."""
        body = {"apiVersion": res.api_version, "kind": res.kind, **obj}
        meta = objects.meta(obj)
        return await self.patch(res, _need_name(meta), body, namespace=meta.get("namespace"), patch_type="apply",
                                subresource=subresource, field_manager=field_manager, force=force)

    async def delete(self, res: Resource, name: str, namespace: str | None = None,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """DELETE; returns what the server answered (the object, or a Status). NotFound is raised."""
        _need_namespace(res, namespace, "delete")
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        out = await self.request("DELETE", res.path(namespace, name), body=options)
        return out if isinstance(out, dict) else None

    async def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                      content_type: str | None = None) -> Any:
        """Any request: JSON answers decoded, other answers as text (`/readyz`), empty answers as None."""
        local = await self._local(method.upper(), path, _query(**(query or {})), body, content_type)
        if local is not None:
            if local.status >= 300:
                raise _api_error(local.status, local.body, method.upper(), path)
            if not local.body:
                return None
            return orjson.loads(local.body) if "json" in local.content_type else local.body.decode(errors="replace")
        resp, data = await self._exchange(method.upper(), path, query=_query(**(query or {})), body=body,
                                          content_type=content_type)
        if resp.status >= 300:
            raise _api_error(resp.status, data, method.upper(), path)
        if not data:
            return None
        if "json" in resp.headers.get("Content-Type", ""):
            return orjson.loads(data)
        return data.decode(errors="replace")

    # ------------------------------------------------------------------ transport
    async def _json(self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None,
                    content_type: str | None = None, accept: str = JSON) -> dict[str, Any]:
        local = await self._local(method, path, query or {}, body, content_type, accept)
        if local is not None:
            status, data = local.status, local.body
        else:
            resp, data = await self._exchange(method, path, query=query or {}, body=body, content_type=content_type,
                                              accept=accept)
            status = resp.status
        if status >= 300:
            raise _api_error(status, data, method, path)
        out = orjson.loads(data) if data else {}
        if not isinstance(out, dict):
            raise ConnectionFailed(f"{method} {self.server}{path}: answer is not a JSON object")
        return out

    async def _local(self, method: str, path: str, query: dict[str, str], body: Any,
                     content_type: str | None = None, accept: str = JSON) -> InProcessAnswer | None:
        """The in-process server's answer, if it answers this request (with the bearer token, if any: a client
        certificate authenticates only over TLS)."""
        if self.in_process is None:
            return None
        if self._closed:
            raise ConnectionFailed(f"{self!r} is closed")
        cred = await self.credentials.get()
        if cred.client_cert:
            return None
        return await self.in_process.request(cred.token, method, path, query, _encoded(body),
                                              content_type or (JSON if body is not None else None), self._user_agent,
                                              accept)

    async def _exchange(self, method: str, path: str, *, query: dict[str, str], body: Any = None,
                        content_type: str | None = None, stream: bool = False,
                        timeout: aiohttp.ClientTimeout | None = None, accept: str = JSON
                        ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Sends with retries; returns the final response and its body (unread when `stream`)."""
        data = _encoded(body)
        headers = {"User-Agent": self._user_agent, "Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type or JSON
        idempotent = method in _IDEMPOTENT or (method == "PATCH" and content_type != PATCH_TYPES["json"])
        policy = self.config.retry
        url = self.server + path
        timeout = timeout or aiohttp.ClientTimeout(total=self.config.timeout)
        session = self._get_session()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            cred = await self.credentials.get()
            ssl = self._ssl_for(cred)
            try:
                resp = await session.request(
                    method, url, params=query, data=data, headers={**headers, **self.credentials.headers(cred)},
                    timeout=timeout, ssl=ssl if ssl is not None else True, proxy=self.config.proxy,
                    server_hostname=self.config.tls_server_name,
                )
                payload = b"" if stream and resp.status < 300 else await resp.read()
            except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError) as exc:
                raise ConnectionFailed(f"{method} {url}: {_unreachable(exc)}") from exc
            except aiohttp.ClientConnectorError as exc:  # nothing was sent
                if attempt >= policy.attempts:
                    raise ConnectionFailed(f"{method} {url}: {_unreachable(exc)} (after {attempt} attempts)") from exc
                await self._backoff(policy.delay(attempt), method, url, exc)
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:  # may have been sent and acted on
                if not idempotent or attempt >= policy.attempts:
                    raise ConnectionFailed(f"{method} {url}: {exc!r} (after {attempt} attempts)") from exc
                await self._backoff(policy.delay(attempt), method, url, exc)
                continue
            status = resp.status
            if status == 401 and not renewed and self.credentials.refused(cred):
                resp.release()
                renewed = True
                attempt -= 1
                continue
            retry_after = _retry_after(resp)
            retryable = status == 429 or (status >= 500 and (idempotent or retry_after is not None))
            if retryable and attempt < policy.attempts:
                resp.release()
                await self._backoff(policy.delay(attempt, retry_after), method, url, f"HTTP {status}")
                continue
            return resp, payload

    @staticmethod
    async def _backoff(delay: float, method: str, url: str, why: object) -> None:
        log.info("retrying %s %s in %.2fs: %s", method, url, delay, why)
        await asyncio.sleep(delay)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConnectionFailed(f"{self!r} is closed")
        if self._shared_session is not None:
            return self._shared_session
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0)
            skip = ["Accept-Encoding"] if self.config.disable_compression else []
            self._session = aiohttp.ClientSession(connector=connector, skip_auto_headers=skip)
        return self._session

    def _ssl_for(self, cred: Credential) -> Any:
        if cred.client_cert and cred.client_key:
            if self._exec_ssl is None or self._exec_ssl[0] is not cred:
                self._exec_ssl = (cred, ssl_context(self.config, cred.client_cert, cred.client_key))
            return self._exec_ssl[1]
        if self._static_ssl is None:
            self._static_ssl = _shared_ssl_context(self.config)
        return self._static_ssl


_SSL_CONTEXTS: dict[tuple[Any, ...], Any] = {}


def _shared_ssl_context(config: ClientConfig) -> Any:
    """One TLS context per distinct trust and client-certificate setting: aiohttp pools connections
    per context object, so clients that share a session reuse connections only if they share these."""
    key = (config.server.split(":", 1)[0], config.insecure, config.ca_data, config.ca_file, config.tls_server_name,
           config.client_cert_data, config.client_cert_file, config.client_key_data, config.client_key_file)
    ctx = _SSL_CONTEXTS.get(key)
    if ctx is None:
        ctx = _SSL_CONTEXTS[key] = ssl_context(config)
    return ctx


def _encoded(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return orjson.dumps(body)


async def _local_events(answer: InProcessAnswer, path: str) -> AsyncGenerator[dict[str, Any], None]:
    """The events of an in-process watch, decoded as those of an HTTP stream; the stream is closed at the end."""
    if answer.status >= 300 or answer.stream is None:
        raise _api_error(answer.status, answer.body, "GET", path)
    decoder = WatchDecoder(path)
    async with contextlib.aclosing(answer.stream) as stream:
        async for chunk in stream:
            for event in decoder.feed(chunk):
                yield event
    for event in decoder.close():
        yield event


def _query(**params: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _need_name(meta: dict[str, Any]) -> str:
    name = meta.get("name")
    if not name:
        raise ValueError("the object has no metadata.name")
    return str(name)


def _need_namespace(res: Resource, namespace: str | None, verb: str) -> None:
    if res.namespaced and not namespace:
        raise ValueError(f"{verb} {res}: a namespaced resource needs a namespace")


def _unreachable(exc: aiohttp.ClientConnectorError | aiohttp.ClientConnectorCertificateError) -> str:
    """"cannot connect to 127.0.0.1:16443: Connection refused" (aiohttp's own text shows its SSL context's repr)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = f"TLS: {exc.certificate_error}"
    elif isinstance(exc, aiohttp.ClientSSLError):
        reason = f"TLS: {exc.os_error}"
    else:
        reason = os.strerror(exc.os_error.errno) if exc.os_error.errno else str(exc.os_error)
    return f"cannot connect to {exc.host}:{exc.port}: {reason}"


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _api_error(status: int, data: bytes, method: str, path: str) -> Exception:
    body: dict[str, Any] | None = None
    try:
        decoded = orjson.loads(data) if data else None
        if isinstance(decoded, dict):
            body = decoded
    except orjson.JSONDecodeError:
        pass
    if body is None:
        text = data.decode(errors="replace").strip()
        body = {"message": text} if text else {}
    return error_for(status, body, method=method, path=path)
