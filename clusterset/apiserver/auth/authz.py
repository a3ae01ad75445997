"""Authorization: what a request asks for (kube-apiserver's RequestInfo), the decision, and the 403.

`request_attributes` reads a cluster-relative path the way apiserver's RequestInfoFactory does, before
any routing (so an unauthorized request for an unknown resource is 403, not 404, as upstream).
`authorize` is kube-apiserver's chain: `system:masters` is allowed everything, then RBAC decides
(`rbac.py`). `forbidden` words the 403 exactly as responsewriters.Forbidden and apierrors.NewForbidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clusterset.apiserver.meta.errors import StatusError, qualified
from clusterset.apiserver.meta.selectors import parse_field_selector
from clusterset.apiserver.meta.validation import path_segment_problems

if TYPE_CHECKING:
    from clusterset.apiserver.auth.authn import UserInfo
    from clusterset.apiserver.registry.cluster import Cluster

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


def authorize(cluster: Cluster, user: UserInfo, attrs: Attributes) -> Decision:
    """kube-apiserver's authorizer chain: the privileged group, then RBAC."""
    if user.master:
        return ALLOW
    return cluster.rbac().authorize(user, attrs)


def forbidden(user: UserInfo, attrs: Attributes, reason: str = "") -> StatusError:
    """The 403 kube-apiserver answers when no authorizer allowed the request."""
    if not attrs.resource_request:
        text = f"User {_q(user.name)} cannot {attrs.verb} path {_q(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        text = f"User {_q(user.name)} cannot {attrs.verb} resource {_q(resource)} in API group {_q(attrs.group)}"
        text += f" in the namespace {_q(attrs.namespace)}" if attrs.namespace else " at the cluster scope"
    text = _sanitize(text)
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return _EmptyDetailsForbidden(403, "Forbidden", f"forbidden: {text}")
    subject = qualified(attrs.resource, attrs.group)
    if attrs.name:
        subject = f"{subject} {_q(attrs.name)}"
    details: dict[str, Any] = {"name": attrs.name, "group": attrs.group, "kind": attrs.resource}
    return StatusError(403, "Forbidden", f"{subject} is forbidden: {text}", details)


class _EmptyDetailsForbidden(StatusError):
    """NewForbidden of an empty GroupResource (a path): its details are there, and empty (`"details":{}`)."""

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        status["details"] = {}
        status["code"] = status.pop("code")  # Status's field order: ..., reason, details, code
        return status


def authorize_create_on_apply(cluster: Cluster, user: UserInfo, attrs: Attributes) -> None:
    """403 unless the user may also create the object a server-side apply is about to create.

    kube-apiserver authorizes the PATCH as `patch`, and when the object does not exist yet also asks for
    `create` of that name (patch.go wraps createValidation in withAuthorization); the refusal is
    apierrors.NewForbidden with the authorizer's reason alone, which RBAC leaves empty.
    (Upstream asks once the object is decoded and validated; here before, so a body is never judged
    for someone who may not create it.)
    """
    if user.master:
        return
    decision = authorize(cluster, user, attrs)
    if decision.allowed:
        return
    subject = qualified(attrs.resource, attrs.group)
    if attrs.name:
        subject = f"{subject} {_q(attrs.name)}"
    raise StatusError(403, "Forbidden", f"{subject} is forbidden: {decision.reason}",
                      {"name": attrs.name, "group": attrs.group, "kind": attrs.resource})


def _q(text: str) -> str:
    """Go's %q for the strings that appear here (printable ASCII mostly; escapes as strconv.Quote)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _sanitize(text: str) -> str:
    """responsewriters' sanitizer: nothing that looks like HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
