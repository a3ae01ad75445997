"""The member's `work-apply` controller: what triggers a pass over a Work.

A member is engaged under its id and its view of the hub under `<id>@hub` (`runtime/hubview.py`). Keys are
(the member's hub namespace, the Work's name) in the member: from its Works on the hub, from its AppliedWorks
(named after their Works), and from the objects the Works applied (`watches.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from clusterset.api import objects
from clusterset.api.placement import APPLIED_WORKS, WORKS
from clusterset.runtime import Controller, RateLimiter, Watch
from clusterset.runtime.hubview import HubViews, member_of
from clusterset.work.apply import WorkApplier
from clusterset.work.watches import AppliedObjects

Obj = dict[str, Any]
Keys = Iterable[tuple[str, tuple[str, str]]]
RETRY_CAP = 30.0  # seconds: a manifest that cannot be applied yet (its CRD or namespace coming) is tried this often


def _work_to_member(cluster: str, obj: Obj) -> Keys:
    member, meta = member_of(cluster), objects.meta(obj)
    return [(member, (str(meta.get("namespace")), str(meta.get("name"))))] if member else []


def _applied_work(cluster: str, obj: Obj) -> Keys:
    spec = objects.spec(obj)
    namespace, name = spec.get("workNamespace"), spec.get("workName")
    return [(cluster, (str(namespace), str(name)))] if namespace and name else []


def work_controller(views: HubViews, members: Callable[[str], bool],
                    own_namespace: Callable[[str], str | None], *, workers: int = 16) -> Controller:
    """The `work-apply` controller of every member `members(name)` accepts; `views(id)` is a member's hub, engaged
    as `<id>@hub`; `own_namespace(view)` the member's namespace there, where its Works are."""

    def is_view(name: str) -> bool:
        member = member_of(name)
        return member is not None and members(member)

    applied_objects = AppliedObjects()
    controller = Controller(
        "work-apply",
        WorkApplier(views, applied_objects).reconcile,
        [
            Watch(WORKS, namespace=own_namespace, map_to=_work_to_member, clusters=is_view),
            Watch(APPLIED_WORKS, map_to=_applied_work),
        ],
        clusters=members,
        workers=workers,
        rate_limiter=RateLimiter(base_delay=0.25, max_delay=RETRY_CAP),
    )
    applied_objects.enqueue = controller.enqueue
    return controller
