"""User impersonation (`kubectl --as`, `--as-group`): kube-apiserver's WithImpersonation filter.

`Impersonate-User`, `Impersonate-Group` (repeated), `Impersonate-Uid` and `Impersonate-Extra-<key>`
headers make the request run as another user, if the requester may `impersonate` each of them
(`users`, `groups`, `serviceaccounts`, `uids` and `userextras/<key>` of authentication.k8s.io; a
ServiceAccount user name is checked as its ServiceAccount). The new user is in `system:authenticated`
unless it is `system:anonymous` (then `system:unauthenticated`) or the groups given name either; a
ServiceAccount impersonated without groups gets its fixed groups.
"""

from __future__ import annotations

from urllib.parse import unquote

from multidict import CIMultiDictProxy

from clusterset.apiserver.auth.attributes import Attributes
from clusterset.apiserver.auth.authz import authorize, forbidden
from clusterset.apiserver.auth.users import AUTHENTICATED, SERVICE_ACCOUNTS_GROUP, UNAUTHENTICATED, UserInfo
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.validation import dns1123_label_problems, dns1123_subdomain_problems
from clusterset.apiserver.registry.cluster import Cluster

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "impersonate-extra-"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"


def wants_impersonation(headers: CIMultiDictProxy[str]) -> bool:
    return USER in headers or GROUP in headers or UID in headers


def impersonate(cluster: Cluster, requester: UserInfo, headers: CIMultiDictProxy[str]) -> UserInfo:
    """The user to run the request as; 403 unless the requester may impersonate every part of it."""
    name = headers.get(USER, "")
    groups: list[str] = list(headers.getall(GROUP, []))
    uid = headers.get(UID, "")
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(EXTRA):  # the key lower-cased, then unescaped (unescapeExtraKey)
            extra.setdefault(unquote(key[len(EXTRA):].lower()), []).append(value)
    if not name:
        if groups or extra or uid:
            raise errors.internal(f"requested {_what(groups, extra, uid)} without impersonating a user")
        return requester  # an empty Impersonate-User alone asks for nothing
    checks: list[Attributes] = []
    sa = _split_service_account(name)
    if sa is not None:
        checks.append(Attributes("impersonate", True, namespace=sa[0], version="v1", resource="serviceaccounts",
                                 name=sa[1]))
        if GROUP not in headers:
            groups = [SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{sa[0]}"]
    else:
        checks.append(Attributes("impersonate", True, version="v1", resource="users", name=name))
    for group in groups if GROUP in headers else []:
        checks.append(Attributes("impersonate", True, version="v1", resource="groups", name=group))
    for key, values in extra.items():
        for value in values:
            checks.append(Attributes("impersonate", True, group="authentication.k8s.io", version="v1",
                                     resource="userextras", subresource=key, name=value))
    if uid:
        checks.append(Attributes("impersonate", True, group="authentication.k8s.io", version="v1",
                                 resource="uids", name=uid))
    for attrs in checks:
        decision = authorize(cluster, requester, attrs)
        if not decision.allowed:
            raise forbidden(requester, attrs, decision.reason)
    if name != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(name, uid, tuple(groups), extra)


def _split_service_account(name: str) -> tuple[str, str] | None:
    """(namespace, name) of a ServiceAccount user name, as serviceaccount.SplitUsername (valid names only:
    anything else is impersonated as a plain user)."""
    if not name.startswith(SA_PREFIX):
        return None
    parts = name[len(SA_PREFIX):].split(":")
    if len(parts) != 2 or dns1123_label_problems(parts[0]) or dns1123_subdomain_problems(parts[1]):
        return None
    return parts[0], parts[1]


def _what(groups: list[str], extra: dict[str, list[str]], uid: str) -> str:
    parts = [f"group {g}" for g in groups] + [f"extra {k}" for k in extra] + ([f"uid {uid}"] if uid else [])
    return ", ".join(parts)
