"""Who a request runs as: kube-apiserver's user.Info.

It lives this low because every write carries it (`registry.context.Ctx.user`): the RBAC escalation check
judges a role or binding write by what its requester holds. Authentication (`auth/`) makes users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MASTERS = "system:masters"


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
