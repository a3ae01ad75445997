"""Per-kind behaviour the generic REST layer calls: defaulting, validation, field selectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.meta.selectors import metadata_fields
from clusterset.apiserver.meta.validation import validate_object_meta

if TYPE_CHECKING:
    from clusterset.apiserver.registry.cluster import Cluster

Obj = dict[str, Any]


class Strategy:
    """Defaults suit a plain object with spec (like most built-ins); kinds override what differs."""

    name_rule = "subdomain"
    has_generation = True
    # DELETE answers with the object instead of a Status (pods, serviceaccounts)
    delete_returns_object = False
    extra_field_selectors: frozenset[str] = frozenset()
    # top-level keys that are not "spec" for generation counting
    non_spec_keys: frozenset[str] = frozenset({"apiVersion", "kind", "metadata", "status"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        return metadata_fields(obj)

    @property
    def field_selectors(self) -> set[str]:
        return {"metadata.name", "metadata.namespace", *self.extra_field_selectors}

    def default(self, cluster: Cluster, obj: Obj) -> None:
        """Fills defaults; runs on create and on every update (like Go's defaulting on decode)."""

    def prepare_create(self, cluster: Cluster, obj: Obj) -> None:
        """Resets what a client may not set on create (status of kinds with a status subresource)."""

    def prepare_update(self, cluster: Cluster, obj: Obj, old: Obj) -> None:
        """Carries over what a PUT may omit (a Service's cluster IPs)."""

    def validate(self, cluster: Cluster, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        return validate_object_meta(obj, namespaced=namespaced, name_rule=self.name_rule)

    def deletion_held(self, obj: Obj) -> bool:
        """Whether something other than metadata.finalizers holds a deletion (namespace spec.finalizers)."""
        return False

    def begin_deletion(self, obj: Obj) -> None:
        """Marks the object as being deleted, beyond deletionTimestamp (a namespace turns Terminating)."""

    def after_delete(self, cluster: Cluster, obj: Obj) -> None:
        """Releases what the object held (a Service's cluster IP)."""

    def spec_of(self, obj: Obj) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in self.non_spec_keys}


class NoGenerationStrategy(Strategy):
    """Kinds without a spec (ConfigMap, Secret, ...): no metadata.generation."""

    has_generation = False
