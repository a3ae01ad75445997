"""Answers of only the objects' metadata (`as=PartialObjectMetadata`, `as=PartialObjectMetadataList`), as a
metadata-only informer or a digest check asks for them: an object's `metadata` whole (managedFields included), in
ObjectMeta's field order, under the kind and apiVersion asked for."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.http.codecs import METADATA, METADATA_LIST, AnswerAs
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.context import Ctx

# ObjectMeta's fields in the order Go encodes them (a custom resource's stored metadata is sorted by key)
_OBJECT_META = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
                "ownerReferences", "finalizers", "managedFields")


def partial_object(obj: dict[str, Any], want: AnswerAs) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    out = {key: meta[key] for key in _OBJECT_META if key in meta}
    out.setdefault("creationTimestamp", None)  # not omitempty in ObjectMeta
    return {"kind": METADATA, "apiVersion": want.api_version, "metadata": out}


def partial_list(objs: list[dict[str, Any]], list_meta: dict[str, Any], want: AnswerAs) -> dict[str, Any]:
    """kube-apiserver's PartialObjectMetadataList: `items` is null when there are none (a nil slice in Go)."""
    items = [partial_object(obj, want) for obj in objs]
    return {"kind": METADATA_LIST, "apiVersion": want.api_version, "metadata": list_meta, "items": items or None}


def check_one(want: AnswerAs, ctx: Ctx) -> None:
    """A single object cannot be answered as a list."""
    if want.kind == METADATA_LIST:
        raise errors.not_acceptable(f"you requested {METADATA_LIST}, but the requested object is not a list "
                                    f"({ctx.rt.kind})")


def check_list(want: AnswerAs, ctx: Ctx) -> None:
    """A list cannot be answered as one object."""
    if want.kind == METADATA:
        raise errors.not_acceptable(f"you requested {METADATA}, but the requested object is a list "
                                    f"({ctx.rt.list_kind})")
