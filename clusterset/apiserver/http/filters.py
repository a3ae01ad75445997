"""The filter chain of every cluster request, in kube-apiserver's order: authentication, impersonation,
authorization. Authorization reads the raw path (RequestInfo), before any routing, so an unauthorized
request for an unknown resource is a 403, not a 404, as upstream."""

from __future__ import annotations

import secrets

from aiohttp import web

from clusterset.apiserver.auth.attributes import request_attributes
from clusterset.apiserver.auth.authz import authorize, forbidden
from clusterset.apiserver.auth.impersonation import impersonate, wants_impersonation
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.http.services import Services
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.cluster import Cluster


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def authenticate_admin(services: Services, request: web.Request) -> None:
    if not secrets.compare_digest(bearer(request) or "", services.admin_token):
        raise errors.unauthorized()  # constant time: this token can read every cluster's token


def admit(services: Services, request: web.Request, cluster_name: str, path: str) -> tuple[Cluster, UserInfo]:
    """The cluster and the user a request to `/clusters/<cluster_name><path>` runs as, or a 401/403."""
    found = services.authenticator.authenticate(bearer(request), cluster_name)
    if found is None:
        raise errors.unauthorized()
    cluster, user = found
    if wants_impersonation(request.headers):
        user = impersonate(cluster, user, request.headers)
    if not user.master:  # system:masters (the admin token) skips authorization, as upstream
        attrs = request_attributes(request.method, path, request.query)
        decision = authorize(cluster, user, attrs)
        if not decision.allowed:
            raise forbidden(user, attrs, decision.reason)
    return cluster, user
