"""PATCH: JSON patch, merge patch, strategic merge patch and server-side apply, then the update pipeline."""

from __future__ import annotations

import functools
from typing import Any

import orjson

from clusterset.api import boundedyaml
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError, StatusError, field_invalid
from clusterset.apiserver.meta.offload import off_loop
from clusterset.apiserver.meta.yamlcodec import load_yaml
from clusterset.apiserver.patch.apply import server_side_apply
from clusterset.apiserver.patch.jsonpatch import apply_json_patch
from clusterset.apiserver.patch.merge import apply_merge_patch, require_object_patch
from clusterset.apiserver.patch.strategic import apply_strategic_merge_patch
from clusterset.apiserver.patch.typeinfo import FieldTypes
from clusterset.apiserver.registry.context import Ctx, field_types
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.registry.scale import write_scale
from clusterset.apiserver.registry.schemas import compiled_schema
from clusterset.apiserver.storage.store import Entry, Obj

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CR_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
BUILTIN_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]
_PATCH_ATTEMPTS = 5
# A patch and object together larger than this are patched off the event loop (meta/offload.py): patching
# costs microseconds per field in Python, so a 3 MiB patch or object would otherwise stall every cluster.
_INLINE_UP_TO = 64 * 1024


async def patch(
    rest: Rest, ctx: Ctx, name: str, content_type: str, raw: bytes, subresource: str | None, force: bool | None,
    max_size: int,
) -> tuple[int, Obj]:
    """`max_size` bounds what the patch may grow to: an apply's decoded YAML, a JSON patch's copies."""
    rt = ctx.rt
    allowed = CR_PATCH_TYPES if rt.is_crd else BUILTIN_PATCH_TYPES
    if content_type not in allowed:
        raise errors.unsupported_media_type(allowed)
    if content_type != APPLY_PATCH and force is not None:
        raise _patch_options_invalid("force", "Forbidden: may not be specified for non-apply patch")
    if content_type == APPLY_PATCH:
        if not ctx.manager_explicit:
            raise _patch_options_invalid("fieldManager", "Required value: is required for apply patch")
        return await _apply(rest, ctx, name, raw, subresource, bool(force), max_size)
    entry, patched = await _patched(rest, ctx, name, content_type, raw, max_size)
    if not isinstance(patched, dict):
        raise errors.invalid(rt.kind, rt.group, name, [field_invalid("patch", patched, "must be an object")])
    pmeta = patched.get("metadata") or {}
    if pmeta.get("name", name) != name:
        raise errors.bad_request(
            f"the name of the object ({pmeta.get('name')}) does not match the name on the URL ({name})"
        )
    if pmeta.get("resourceVersion") not in (None, "", entry.obj["metadata"]["resourceVersion"]):
        raise errors.conflict(rt.plural, rt.group, name)
    if subresource == "scale":
        return 200, await write_scale(rest, ctx, name, patched)
    patched.setdefault("metadata", {})["resourceVersion"] = entry.obj["metadata"]["resourceVersion"]
    new = await rest.decode_body(ctx, patched)
    return 200, await rest.write(ctx, entry, new, subresource)


async def _patched(rest: Rest, ctx: Ctx, name: str, content_type: str, raw: bytes, max_size: int
                   ) -> tuple[Entry, Any]:
    """The stored entry and the patch applied to it. A large patch or object is patched off the event loop;
    if the object changes meanwhile, the patch is applied again to the new version (as kube-apiserver
    retries a patch on conflict, at most 5 times)."""
    for _ in range(_PATCH_ATTEMPTS):
        entry = rest.get(ctx, name)
        job = functools.partial(_apply_patch, entry, content_type, raw, ctx.rt.group_version,
                                field_types(ctx.served), max_size)
        if len(raw) + len(entry.raw) <= _INLINE_UP_TO:
            return entry, job()
        patched = await off_loop(job)
        if rest.get(ctx, name) is entry:
            return entry, patched
    raise errors.conflict(ctx.rt.plural, ctx.rt.group, name)


def _apply_patch(entry: Entry, content_type: str, raw: bytes, group_version: str, types: FieldTypes,
                 max_size: int) -> Any:
    """The patched object (pure: runs on a worker thread for large inputs)."""
    patch = _parse_json(raw)
    current = entry.copy()
    current["apiVersion"] = group_version  # patches apply to the object as served in this version
    if content_type == JSON_PATCH:
        return apply_json_patch(current, patch, max_copy_bytes=max_size)
    if content_type == MERGE_PATCH:
        return apply_merge_patch(current, require_object_patch(patch))
    return apply_strategic_merge_patch(current, patch, types)


async def _apply(rest: Rest, ctx: Ctx, name: str, raw: bytes, subresource: str | None, force: bool,
                 max_size: int) -> tuple[int, Obj]:
    rt = ctx.rt
    config = (_apply_config(raw, max_size) if len(raw) <= _INLINE_UP_TO
              else await off_loop(_apply_config, raw, max_size))
    if not isinstance(config, dict):
        raise errors.bad_request("error decoding YAML: the apply patch must be an object")
    cmeta = config.get("metadata") or {}
    if cmeta.get("name") not in (None, name):
        raise errors.bad_request(
            f"the name of the object ({cmeta.get('name')}) does not match the name on the URL ({name})"
        )
    if rt.namespaced and cmeta.get("namespace") not in (None, ctx.namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    probe = orjson.loads(orjson.dumps(config))
    probe.setdefault("apiVersion", rt.group_version)
    probe.setdefault("kind", rt.kind)
    schema = compiled_schema(rt)
    if schema is not None:
        unknown = schema.prune(probe)
        if unknown:
            raise errors.bad_request(
                f"failed to create typed patch object ({ctx.namespace or ''}/{name}; {rt.group_version}, "
                f"Kind={rt.kind}): " + ", ".join(f".{p}: field not declared in schema" for p in unknown)
            )
    existing = ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", name)
    live = existing.copy() if existing else None

    def finalize(merged: Obj) -> Obj:
        merged.setdefault("metadata", {})["name"] = name
        if rt.namespaced:
            merged["metadata"]["namespace"] = ctx.namespace
        if live is not None:
            merged = rest.merge_subresource(ctx, live, merged, subresource)
        ctx.served.strategy.default(ctx.cluster, merged)
        return merged

    result = server_side_apply(
        live,
        config,
        manager=ctx.manager,
        force=force,
        types=field_types(ctx.served),
        api_version=rt.group_version,
        now=now_rfc3339(),
        subresource=subresource,
        finalize=finalize,
        resource=rt.plural,
        group=rt.group,
    )
    if existing is None:
        if subresource:
            raise errors.not_found(rt.plural, rt.group, name)
        managed_fields = result["metadata"].pop("managedFields", None) or []
        return 201, await rest.create(ctx, result, managed_fields=managed_fields)
    managed = result["metadata"].pop("managedFields", None) or []
    new = await rest.decode_body(ctx, result)
    if rest.get(ctx, name) is not existing:  # a large body is decoded off the loop: it may have changed meanwhile
        raise errors.conflict(rt.plural, rt.group, name)
    new["metadata"]["resourceVersion"] = existing.obj["metadata"]["resourceVersion"]
    return 200, await rest.write(ctx, existing, new, subresource, managed=lambda _o, _n: managed)


def _apply_config(raw: bytes, max_size: int) -> Any:
    """The apply patch decoded as kube-apiserver does (sigs.k8s.io/yaml), with its words for what fails."""
    if not raw:
        return None
    try:
        return load_yaml(raw.decode("utf-8"), max_size)
    except boundedyaml.TooLarge as exc:
        raise errors.too_large(exc.limit) from exc
    except boundedyaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: error converting YAML to JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc


def _patch_options_invalid(field_name: str, message: str) -> StatusError:
    reason = "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueRequired"
    return errors.invalid("PatchOptions", "meta.k8s.io", "", [FieldError(field_name, reason, message)])


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from exc
