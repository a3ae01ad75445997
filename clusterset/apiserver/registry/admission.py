"""Admission: plugins that say which resources they handle and check writes the strategies cannot judge alone.

As in kube-apiserver, validation by the kind's strategy comes first; a plugin's `validate` runs only on
an object its strategy accepted. Plugins never write: what must happen after a write is a controller's job.
"""

from __future__ import annotations

from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.storage.store import Obj


class AdmissionPlugin:
    """Handles every resource and admits everything; plugins override what they check."""

    def handles(self, rt: ResourceType) -> bool:
        return True

    def validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Field errors of a create (old is None) or an update, reported with the strategy's as a 422."""
        return []

    def admit_create(self, ctx: Ctx, obj: Obj) -> None:
        """Raises a StatusError to refuse a create that is valid in itself (its namespace is going away)."""

    def admit_delete(self, ctx: Ctx, obj: Obj) -> None:
        """Raises a StatusError to refuse a delete."""


class Admission:
    """The plugins in order; each hook asks only those that handle the request's resource."""

    def __init__(self, plugins: list[AdmissionPlugin]) -> None:
        self.plugins = plugins

    def validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> list[FieldError]:
        return [e for p in self.plugins if p.handles(ctx.rt) for e in p.validate(ctx, obj, old)]

    def admit_create(self, ctx: Ctx, obj: Obj) -> None:
        for plugin in self.plugins:
            if plugin.handles(ctx.rt):
                plugin.admit_create(ctx, obj)

    def admit_delete(self, ctx: Ctx, obj: Obj) -> None:
        for plugin in self.plugins:
            if plugin.handles(ctx.rt):
                plugin.admit_delete(ctx, obj)
