"""The MCS reconcilers wired to the runtime: what triggers them, in which clusters.

A member's controllers run with the member engaged under its id and its view of the hub under
`<id>@hub` (`view.py`); hub-side events map to the member's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from clusterset.api import objects
from clusterset.api.mcs import (
    CLUSTERSET_ENDPOINTS,
    CLUSTERSET_SERVICES,
    EXPORTED_ENDPOINTS,
    EXPORTED_SERVICES,
    KUBE_SERVICE_NAME_LABEL,
    SERVICE_EXPORTS,
    SERVICE_IMPORTS,
    SERVICE_NAME_LABEL,
    SERVICE_NAMESPACE_LABEL,
    derived_service_name,
)
from clusterset.api.resources import ENDPOINT_SLICES, NAMESPACES, SERVICES
from clusterset.mcs.exports import ExportReconciler
from clusterset.mcs.imports import IMPORTED_SLICES, ImportReconciler, namespace_services
from clusterset.mcs.records import SOURCE_SLICES, is_source_slice
from clusterset.runtime import Controller, Event, Request, Result, Watch
from clusterset.runtime.hubview import NO_VIEW_RETRY, HubViews, member_of, ready_view

Obj = dict[str, Any]
Keys = Iterable[tuple[str, tuple[str, str] | str]]
FAN_OUT = "@"  # a key `@<namespace>`: every merged service of that namespace


def _own(cluster: str, obj: Obj) -> Keys:
    meta = objects.meta(obj)
    return [(cluster, (str(meta.get("namespace") or ""), str(meta.get("name"))))]


def _by_label(label: str) -> Callable[[str, Obj], Keys]:
    def keys(cluster: str, obj: Obj) -> Keys:
        name = objects.labels(obj).get(label)
        return [(cluster, (str(objects.meta(obj).get("namespace") or ""), name))] if name else []
    return keys


def _not_derived(event: Event) -> bool:
    """A derived Service (an import's, made by this agent in every member) is never exported: its events, one or
    two per member and export, concern no ServiceExport."""
    meta = objects.meta(event.obj)
    imported = objects.labels(event.obj).get(SERVICE_NAME_LABEL)
    return imported is None or meta.get("name") != derived_service_name(str(meta.get("namespace") or ""), imported)


def _source_slice(cluster: str, obj: Obj) -> Keys:
    return _by_label(KUBE_SERVICE_NAME_LABEL)(cluster, obj) if is_source_slice(obj) else []


def _to_member(cluster: str, obj: Obj) -> Keys:
    """A hub record (labelled with its service) → that service's key in the member whose view saw it."""
    member, labels = member_of(cluster), objects.labels(obj)
    namespace, name = labels.get(SERVICE_NAMESPACE_LABEL), labels.get(SERVICE_NAME_LABEL)
    return [(member, (namespace, name))] if member and namespace and name else []


def member_controllers(views: HubViews, members: Callable[[str], bool], clusterset: str, own_namespace:
                       Callable[[str], str | None], *, workers: int = 4) -> MemberControllers:
    """The export and import controllers of every member `members(name)` accepts; `views(id)` is a member's hub,
    engaged as `<id>@hub`; `own_namespace(view)` the member's namespace there. The Lease that keeps a member's
    endpoints imported is its agent's (`inventory/agent.py`)."""

    def is_view(name: str) -> bool:
        member = member_of(name)
        return member is not None and members(member)

    exports = ExportReconciler(views)
    export_controller = Controller(
        "mcs-export",
        exports.reconcile,
        [
            Watch(SERVICE_EXPORTS, map_to=_own),
            Watch(SERVICES, map_to=_own, predicate=_not_derived),
            Watch(ENDPOINT_SLICES, label_selector=SOURCE_SLICES, map_to=_source_slice),
            Watch(EXPORTED_SERVICES, namespace=own_namespace, map_to=_to_member, clusters=is_view),
            Watch(EXPORTED_ENDPOINTS, namespace=own_namespace, map_to=_to_member, clusters=is_view),
            Watch(CLUSTERSET_SERVICES, namespace=clusterset, map_to=_to_member, clusters=is_view),
        ],
        clusters=members,
        workers=workers,
    )

    imports = ImportReconciler(views)

    def namespace_key(cluster: str, obj: Obj) -> Keys:
        """A member namespace's merged services, read here when the member's view of the hub has them loaded (a
        member's engage lists every namespace it has, mostly with none); else a fan-out key that waits for them."""
        namespace = str(objects.meta(obj).get("name"))
        view = views(cluster)
        try:
            if view is not None and view.cluster.cache(CLUSTERSET_SERVICES, view.clusterset).synced.is_set():
                return [(cluster, (namespace, name))
                        for name in namespace_services(view.cluster, view.clusterset, namespace)]
        except RuntimeError:  # the view is being disengaged: the fan-out waits for the next one
            pass
        return [(cluster, FAN_OUT + namespace)]

    async def reconcile_import(req: Request) -> Result | None:
        if not req.name.startswith(FAN_OUT):
            return await imports.reconcile(req)
        view = await ready_view(views, req.cluster)
        if view is None:
            return Result(requeue_after=NO_VIEW_RETRY)
        namespace = req.name[len(FAN_OUT):]
        for name in namespace_services(view.cluster, view.clusterset, namespace):
            import_controller.enqueue(req.cluster, (namespace, name))
        return None

    import_controller = Controller(
        "mcs-import",
        reconcile_import,
        [
            Watch(SERVICE_IMPORTS, map_to=_own),
            Watch(SERVICES, label_selector=SERVICE_NAME_LABEL, map_to=_by_label(SERVICE_NAME_LABEL)),
            Watch(ENDPOINT_SLICES, label_selector=IMPORTED_SLICES, map_to=_by_label(SERVICE_NAME_LABEL)),
            Watch(NAMESPACES, map_to=namespace_key),
            Watch(CLUSTERSET_SERVICES, namespace=clusterset, map_to=_to_member, clusters=is_view),
            Watch(CLUSTERSET_ENDPOINTS, namespace=clusterset, map_to=_to_member, clusters=is_view),
        ],
        clusters=members,
        workers=workers,
    )
    return MemberControllers(export_controller, import_controller)


@dataclass(frozen=True)
class MemberControllers:
    exports: Controller
    imports: Controller

    def all(self) -> list[Controller]:
        return [self.exports, self.imports]
