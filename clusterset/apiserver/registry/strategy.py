"""Per-kind behaviour the generic REST pipeline calls: defaulting, validation, field selectors, deletion.

Strategies see their cluster through `ClusterView`, the little they may use of it: its store for
reads, its settings, and per-cluster state of their own (`part`, e.g. a Service's address allocators).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.meta.selectors import metadata_fields
from clusterset.apiserver.meta.validation import validate_object_meta
from clusterset.apiserver.storage.store import ClusterStore, Obj

T = TypeVar("T")


class ClusterView(Protocol):
    """What strategies, admission plugins and per-cluster parts may use of a logical cluster."""

    @property
    def name(self) -> str: ...

    @property
    def store(self) -> ClusterStore: ...

    @property
    def settings(self) -> dict[str, Any]: ...

    def part(self, factory: Callable[[ClusterView], T]) -> T:
        """The cluster's instance of `factory` (made on first use, then kept): state a kind or layer owns."""
        ...


class Strategy:
    """Defaults suit a plain object with spec (like most built-ins); kinds override what differs."""

    name_rule = "subdomain"
    has_generation = True
    # DELETE answers with the object instead of a Status (pods, serviceaccounts)
    delete_returns_object = False
    # a DELETE may wait for a grace period (pods on a node: the kubelet stops them first)
    graceful_deletion = False
    extra_field_selectors: frozenset[str] = frozenset()
    # top-level keys that are not "spec" for generation counting
    non_spec_keys: frozenset[str] = frozenset({"apiVersion", "kind", "metadata", "status"})

    def field_set(self, obj: Obj) -> dict[str, str]:
        return metadata_fields(obj)

    @property
    def field_selectors(self) -> set[str]:
        return {"metadata.name", "metadata.namespace", *self.extra_field_selectors}

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        """Fills defaults; runs on create and on every update (like Go's defaulting on decode)."""

    def prepare_create(self, cluster: ClusterView, obj: Obj) -> None:
        """Resets what a client may not set on create (status of kinds with a status subresource)."""

    def prepare_update(self, cluster: ClusterView, obj: Obj, old: Obj) -> None:
        """Carries over what a PUT may omit (a Service's cluster IPs)."""

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        return validate_object_meta(obj, namespaced=namespaced, name_rule=self.name_rule)

    def allocate(self, cluster: ClusterView, obj: Obj) -> list[FieldError]:
        """Takes what a new object holds exclusively (a Service's cluster IPs) just before it is stored."""
        return []

    def deletion_finalizers(self, obj: Obj) -> list[str]:
        """Finalizers the server adds on DELETE (a CRD waits for its objects to go)."""
        return []

    def grace_period(self, obj: Obj, options: dict[str, Any]) -> int:
        """Seconds a DELETE waits before the object goes (only with `graceful_deletion`)."""
        return 0

    def deletion_held(self, obj: Obj) -> bool:
        """Whether something other than metadata.finalizers holds a deletion (namespace spec.finalizers)."""
        return False

    def begin_deletion(self, obj: Obj) -> None:
        """Marks the object as being deleted, beyond deletionTimestamp (a namespace turns Terminating)."""

    def after_delete(self, cluster: ClusterView, obj: Obj) -> None:
        """Releases what the object held (a Service's cluster IP)."""

    def scale_selector(self, obj: Obj) -> str:
        """The `scale` subresource's status.selector: the pods a scalable kind selects, as a string."""
        return ""

    def spec_of(self, obj: Obj) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in self.non_spec_keys}


class NoGenerationStrategy(Strategy):
    """Kinds without a spec (ConfigMap, Secret, ...): no metadata.generation."""

    has_generation = False
