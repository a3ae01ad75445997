"""Who a request runs as: kube-apiserver's user.Info, and the groups authentication gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
ADMIN_NAME = "clusterset-admin"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)
    # in system:masters: authorized for everything without consulting RBAC
    master: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "master", MASTERS in self.groups)

    def to_json(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo(ADMIN_NAME, groups=(MASTERS, AUTHENTICATED))


def user_from_review(spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReview asks about (spec.user, groups, uid, extra), as given."""
    extra = spec.get("extra") or {}
    return UserInfo(
        str(spec.get("user") or ""),
        str(spec.get("uid") or ""),
        tuple(str(g) for g in spec.get("groups") or []),
        {str(k): [str(x) for x in v or []] for k, v in extra.items()} if isinstance(extra, dict) else {},
    )
