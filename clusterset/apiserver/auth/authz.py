"""Authorization: kube-apiserver's authorizer chain, and the 403.

`authorize` is kube-apiserver's chain: `system:masters` is allowed everything, then RBAC decides
(`rbac.py`). `forbidden` words the 403 exactly as responsewriters.Forbidden and apierrors.NewForbidden.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.auth.attributes import ALLOW, Attributes, Decision
from clusterset.apiserver.auth.rbac import RbacAuthorizer
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.meta.errors import StatusError, qualified
from clusterset.apiserver.registry.cluster import Cluster


def authorize(cluster: Cluster, user: UserInfo, attrs: Attributes) -> Decision:
    """kube-apiserver's authorizer chain: the privileged group, then RBAC."""
    if user.master:
        return ALLOW
    return cluster.part(RbacAuthorizer).authorize(user, attrs)


def forbidden(user: UserInfo, attrs: Attributes, reason: str = "") -> StatusError:
    """The 403 kube-apiserver answers when no authorizer allowed the request."""
    if not attrs.resource_request:
        text = f"User {go_quote(user.name)} cannot {attrs.verb} path {go_quote(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        text = (f"User {go_quote(user.name)} cannot {attrs.verb} resource {go_quote(resource)} in API group "
                f"{go_quote(attrs.group)}")
        text += f" in the namespace {go_quote(attrs.namespace)}" if attrs.namespace else " at the cluster scope"
    text = _sanitize(text)
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return _EmptyDetailsForbidden(403, "Forbidden", f"forbidden: {text}")
    subject = qualified(attrs.resource, attrs.group)
    if attrs.name:
        subject = f"{subject} {go_quote(attrs.name)}"
    details: dict[str, Any] = {"name": attrs.name, "group": attrs.group, "kind": attrs.resource}
    return StatusError(403, "Forbidden", f"{subject} is forbidden: {text}", details)


class _EmptyDetailsForbidden(StatusError):
    """NewForbidden of an empty GroupResource (a path): its details are there, and empty (`"details":{}`)."""

    def status_details(self) -> dict[str, Any] | None:
        return {}


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
        subject = f"{subject} {go_quote(attrs.name)}"
    raise StatusError(403, "Forbidden", f"{subject} is forbidden: {decision.reason}",
                      {"name": attrs.name, "group": attrs.group, "kind": attrs.resource})


def go_quote(text: str) -> str:
    """Go's %q of a string (escapes as strconv.Quote)."""
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


def go_quote_list(texts: list[str] | tuple[str, ...]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(t) for t in texts) + "]"


def _sanitize(text: str) -> str:
    """responsewriters' sanitizer: nothing that looks like HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
