"""Routing of resource paths and the options of a request (query parameters, DeleteOptions, ListOptions),
validated with kube-apiserver's messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http.codecs import decode, read_raw, truthy
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.offload import off_loop
from clusterset.apiserver.meta.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.lists import ListOptions
from clusterset.apiserver.schema.structural import go_quote

# A URL may carry a megabyte of selectors; parsing one costs about 2 µs a byte, so beyond this many bytes
# (10 ms) it happens on a worker thread (meta/offload.py) instead of stalling every cluster.
_SELECTORS_INLINE_UP_TO = 4 * 1024


@dataclass
class Target:
    """A parsed resource path."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_target(cluster: Cluster, group: str, version: str, parts: list[str]) -> Target:
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


CTX_KEY = web.RequestKey("ctx", Ctx)  # the request's Ctx, for what the handler does once the answer is made (app.py)


def request_ctx(request: web.Request, cluster: Cluster, target: Target, user: UserInfo) -> Ctx:
    """The registry context of a resource request: its user, field manager, validation and dry-run options."""
    ctx = make_ctx(cluster, target, user, request.query, request.headers.get("User-Agent", "unknown"))
    request[CTX_KEY] = ctx
    return ctx


def make_ctx(cluster: Cluster, target: Target, user: UserInfo, q: MultiMapping[str], user_agent: str) -> Ctx:
    """The registry context of a request to `target` with the query `q`, over HTTP or from this process."""
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
        manager = user_agent.split("/")[0]
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
        user=user,
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


async def list_options(request: web.Request, watching: bool = False) -> ListOptions:
    return await query_list_options(request.query, watching)


async def query_list_options(q: Mapping[str, str], watching: bool = False) -> ListOptions:
    """ListOptions from a query (a request's, or one made in this process), validated as kube-apiserver does."""
    limit = query_int64(q, "limit")
    labels, fields = q.get("labelSelector") or "", q.get("fieldSelector") or ""
    if len(labels) + len(fields) <= _SELECTORS_INLINE_UP_TO:
        label_selector, field_selector = _selectors(labels, fields)
    else:
        label_selector, field_selector = await off_loop(_selectors, labels, fields)
    opts = ListOptions(
        label_selector=label_selector,
        field_selector=field_selector,
        limit=max(0, limit or 0),
        continue_token=q.get("continue", ""),
        resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""),
        timeout_seconds=query_int64(q, "timeoutSeconds"),
    )
    match = opts.resource_version_match
    if match and not watching:
        if match not in ("Exact", "NotOlderThan"):
            raise list_options_invalid(
                "resourceVersionMatch", f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"'
            )
        if not opts.resource_version:
            raise list_options_invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        if opts.continue_token:
            raise list_options_invalid(
                "resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden when continue is provided"
            )
        if match == "Exact" and opts.resource_version == "0":
            raise list_options_invalid(
                "resourceVersionMatch",
                'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            )
    return opts


def _selectors(labels: str, fields: str) -> tuple[LabelSelector, FieldSelector]:
    """Both selectors parsed, the label selector's matcher built (pure: runs off the loop for long ones)."""
    return parse_label_selector(labels).prepared(), parse_field_selector(fields)


async def delete_options(request: web.Request, max_body: int) -> dict[str, Any]:
    """DeleteOptions from the body and the query (the query wins, as upstream)."""
    options: dict[str, Any] = {}
    if request.can_read_body:
        raw = await read_raw(request, max_body)
        if raw.strip():
            body = await decode(raw, request.headers.get("Content-Type", ""), max_size=max_body)
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            options.update(body)
    q = request.query
    if "propagationPolicy" in q:
        options["propagationPolicy"] = q["propagationPolicy"]
    if "gracePeriodSeconds" in q:
        options["gracePeriodSeconds"] = query_int64(q, "gracePeriodSeconds")
    if "orphanDependents" in q:
        options["orphanDependents"] = truthy(q["orphanDependents"])
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


_INT64_TEXT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def query_int64(query: Mapping[str, str], name: str) -> int | None:
    """An int64 query parameter (None when absent) as apimachinery converts one (strconv.ParseInt: no spaces,
    `_`, decimals, nan or inf; within int64), its error the 400's message, as kube-apiserver answers."""
    text = query.get(name)
    if text is None:
        return None
    if not _INT64_TEXT.fullmatch(text):
        raise errors.bad_request(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise errors.bad_request(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def parse_rv(text: str) -> int:
    try:
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError as exc:
        raise errors.bad_request(f'invalid resource version "{text}"') from exc


def list_options_invalid(field: str, message: str) -> StatusError:
    reason = "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueNotSupported"
    return errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError(field, reason, message)])
