"""User impersonation (`kubectl --as`, `--as-group`): kube-apiserver's WithImpersonation filter.

`Impersonate-User`, `Impersonate-Group` (repeated), `Impersonate-Uid` and `Impersonate-Extra-<key>`
headers make the request run as another user, if the requester may `impersonate` each of them
(`users`, `groups`, `serviceaccounts`, `uids` and `userextras/<key>` of authentication.k8s.io; a
ServiceAccount user name is checked as its ServiceAccount). The new user is always in
`system:authenticated`; a ServiceAccount impersonated without groups gets its fixed groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from clusterset.apiserver import errors
from clusterset.apiserver.authn import AUTHENTICATED, SERVICE_ACCOUNTS_GROUP, UserInfo
from clusterset.apiserver.authz import Attributes, authorize, forbidden

if TYPE_CHECKING:
    from clusterset.apiserver.cluster import Cluster

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "impersonate-extra-"


def wants_impersonation(headers: CIMultiDictProxy[str]) -> bool:
    return USER in headers or GROUP in headers or UID in headers


def impersonate(cluster: Cluster, requester: UserInfo, headers: CIMultiDictProxy[str]) -> UserInfo:
    """The user to run the request as; 403 unless the requester may impersonate every part of it."""
    name = headers.get(USER, "")
    groups: list[str] = list(headers.getall(GROUP, []))
    uid = headers.get(UID, "")
    extra: dict[str, list[str]] = {}
    for key, value in headers.items():
        if key.lower().startswith(EXTRA):
            extra.setdefault(unquote(key[len(EXTRA):]).lower(), []).append(value)
    if not name:
        raise errors.internal(f"requested {_what(groups, extra, uid)} without impersonating a user")
    checks: list[Attributes] = []
    sa = UserInfo(name).service_account
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
    if name != "system:anonymous" and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, uid, tuple(groups), extra)


def _what(groups: list[str], extra: dict[str, list[str]], uid: str) -> str:
    parts = [f"group {g}" for g in groups] + [f"extra {k}" for k in extra] + ([f"uid {uid}"] if uid else [])
    return ", ".join(parts)
