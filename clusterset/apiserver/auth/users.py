"""The users authentication gives: the groups, the admin, the server's own user, a reviewed user.

`UserInfo` itself lives in `meta/users.py`, low enough for every write to carry it.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.meta.users import MASTERS, UserInfo

__all__ = ["ADMIN", "ADMIN_NAME", "AUTHENTICATED", "LOOPBACK", "SERVICE_ACCOUNTS_GROUP", "UNAUTHENTICATED", "UserInfo",
           "user_from_review"]

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
ADMIN_NAME = "clusterset-admin"

ADMIN = UserInfo(ADMIN_NAME, groups=(MASTERS, AUTHENTICATED))
# What the server writes as itself: its bootstrap and its built-in controllers, which upstream are the
# apiserver's loopback clients (`system:apiserver` in system:masters) or kube-controller-manager's
# controllers (whose roles hold what they write, `escalate` and `bind` included)
LOOPBACK = UserInfo("system:apiserver", groups=(MASTERS, AUTHENTICATED))


def user_from_review(spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReview asks about (spec.user, groups, uid, extra), as given (types checked)."""
    return UserInfo(
        spec.get("user") or "",
        spec.get("uid") or "",
        tuple(spec.get("groups") or ()),
        {k: list(v or []) for k, v in (spec.get("extra") or {}).items()},
    )
