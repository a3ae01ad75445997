"""What a request asks for, as kube-apiserver's RequestInfo reads it, and an authorizer's decision.

`request_attributes` reads a cluster-relative path the way apiserver's RequestInfoFactory does, before
any routing (so an unauthorized request for an unknown resource is 403, not 404, as upstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.selectors import parse_field_selector
from clusterset.apiserver.meta.validation import path_segment_problems

_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True, slots=True)
class Attributes:
    """authorizer.Attributes: a resource request (group/resource/...) or a non-resource path."""

    verb: str
    resource_request: bool = False
    path: str = ""
    namespace: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOW = Decision(True)


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of a request to `path` (relative to `/clusters/<name>`), as RequestInfoFactory."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        rest = []
    if not rest:  # discovery, /openapi, /version, ...: a non-resource request
        return Attributes(verb=method.lower(), path=path or "/")
    verb = _METHOD_VERBS.get(method, "")
    if rest[0] == "watch":  # the deprecated /watch/ prefix
        verb, rest = "watch", rest[1:]
        if not rest:
            return Attributes(verb=method.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if watch_requested(query) else "list"
        selected = _name_from_field_selector(query.get("fieldSelector"))
        if selected and not path_segment_problems(selected):
            name = selected
    elif not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(verb=verb, resource_request=True, path=path, namespace=namespace, group=group,
                      version=version, resource=resource, subresource=subresource, name=name)


def watch_requested(query: Mapping[str, str]) -> bool:
    """ListOptions.watch as kube-apiserver decodes the query (runtime.Convert_Slice_string_To_bool): any
    value but `0` and `false` (any case) is true, even an empty one.

    The handler decides list or watch with this very function: were the two to disagree, a user allowed
    to list could watch.
    """
    value = query.get("watch")
    return value is not None and value != "0" and value.casefold() != "false"


def _name_from_field_selector(selector: str | None) -> str:
    """The name a `metadata.name=<n>` (or `==`) requirement pins, as FieldSelector.RequiresExactMatch.

    Parsed by the same parser that filters the list (escapes included), so the name authorized is the
    name served; a selector that does not parse pins nothing (the request then fails with 400).
    """
    try:
        parsed = parse_field_selector(selector)
    except StatusError:
        return ""
    for requirement in parsed.requirements:
        if requirement.field == "metadata.name" and not requirement.negate:
            return requirement.value
    return ""
