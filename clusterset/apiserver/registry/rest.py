"""Generic REST semantics for every resource: kube-apiserver's registry/store behaviour.

Transport-free: the HTTP layer parses requests into these calls and renders the results.
Each write goes through one pipeline (`_write`): defaulting, validation, generation,
managedFields, no-op detection, then the store.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError, StatusError, field_forbidden, field_invalid
from clusterset.apiserver.meta.selectors import (
    FieldSelector,
    LabelSelector,
    check_field_selector,
)
from clusterset.apiserver.meta.yamlcodec import load_yaml
from clusterset.apiserver.patch.apply import server_side_apply, update_managed_fields
from clusterset.apiserver.patch.jsonpatch import apply_json_patch
from clusterset.apiserver.patch.merge import apply_merge_patch, require_object_patch
from clusterset.apiserver.patch.strategic import apply_strategic_merge_patch
from clusterset.apiserver.patch.typeinfo import FieldTypes, SchemaFieldTypes, builtin_field_types
from clusterset.apiserver.registry.cluster import Cluster, Served
from clusterset.apiserver.storage.store import Entry, Event, Obj

if TYPE_CHECKING:
    from clusterset.apiserver.registry.lifecycle import Lifecycle

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CR_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
BUILTIN_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH]

_NEVER_SET_BY_CLIENT = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_suffix() -> str:
    return "".join(_GENERATE_ALPHABET[b % len(_GENERATE_ALPHABET)] for b in uuid.uuid4().bytes[:5])


@dataclass
class Ctx:
    """One request's view: which cluster and resource, and the write options."""

    cluster: Cluster
    served: Served
    namespace: str | None
    manager: str = ""
    manager_explicit: bool = False
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    warnings: list[str] = field(default_factory=list)

    @property
    def rt(self) -> Any:
        return self.served.rt


@dataclass
class ListOptions:
    label_selector: LabelSelector
    field_selector: FieldSelector
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


def field_types(served: Served) -> FieldTypes:
    rt = served.rt
    if rt.is_crd:
        return SchemaFieldTypes(rt.schema or {})
    return builtin_field_types(rt.group, rt.kind)


class Rest:
    """The REST operations, shared by every logical cluster of a server."""

    def __init__(self) -> None:
        self.lifecycle: Lifecycle | None = None
        self._tasks: dict[str, set[asyncio.Task[Any]]] = {}

    def spawn(self, cluster: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs background work (GC, namespace cleanup) of one cluster."""
        tasks = self._tasks.setdefault(cluster, set())
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def drain(self, cluster: str) -> None:
        """Waits until the cluster's background work is done."""
        tasks = self._tasks.get(cluster)
        while tasks:
            await asyncio.gather(*list(tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        tasks = [t for group in self._tasks.values() for t in group]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -------------------------------------------------------------------- reads
    def get(self, ctx: Ctx, name: str) -> Entry:
        entry = ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", name)
        if entry is None:
            raise errors.not_found(ctx.rt.plural, ctx.rt.group, name)
        return entry

    def list_entries(self, ctx: Ctx, opts: ListOptions) -> tuple[list[Entry], dict[str, Any]]:
        """Matching entries and the list metadata (resourceVersion, continue, remainingItemCount)."""
        strategy = ctx.served.strategy
        check_field_selector(opts.field_selector, strategy.field_selectors, not ctx.rt.is_crd)
        store = ctx.cluster.store
        list_rv = store.rv
        start_after: tuple[str, str] | None = None
        if opts.continue_token:
            list_rv, start_after = _decode_continue(opts.continue_token)
        selective = not (opts.label_selector.empty and opts.field_selector.empty)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if not selective:
            # pages straight from the sorted index: O(log n + limit)
            entries = store.entries(ctx.served.key, ctx.namespace, start_after, opts.limit + 1 if opts.limit else None)
            if opts.limit and len(entries) > opts.limit:
                entries = entries[: opts.limit]
                meta["continue"] = _encode_continue(list_rv, _entry_key(entries[-1]))
                meta["remainingItemCount"] = store.count_after(ctx.served.key, ctx.namespace, _entry_key(entries[-1]))
            return entries, meta
        entries = [e for e in store.entries(ctx.served.key, ctx.namespace, start_after)
                   if self.matches(ctx.served, e.obj, opts.label_selector, opts.field_selector)]
        if opts.limit and len(entries) > opts.limit:
            entries = entries[: opts.limit]
            meta["continue"] = _encode_continue(list_rv, _entry_key(entries[-1]))
        return entries, meta

    @staticmethod
    def matches(served: Served, obj: Obj, labels: LabelSelector, fields: FieldSelector) -> bool:
        if not labels.empty and not labels.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return fields.empty or fields.matches(served.strategy.field_set(obj))

    # -------------------------------------------------------------------- create
    async def create(self, ctx: Ctx, body: Any, managed_fields: list[dict[str, Any]] | None = None) -> Obj:
        obj = self._decode_body(ctx, body)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.internal("resourceVersion should not be set on objects to be created")
        self._check_namespace(ctx, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"])[:58] + generate_suffix()
        for key in _NEVER_SET_BY_CLIENT:
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        strategy = ctx.served.strategy
        if strategy.has_generation:
            meta["generation"] = 1
        if ctx.rt.has_status:
            strategy.prepare_create(ctx.cluster, obj)
            if ctx.rt.is_crd:
                obj.pop("status", None)
        else:
            strategy.prepare_create(ctx.cluster, obj)
        self._default_and_validate(ctx, obj, None)
        name = meta["name"]
        if ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", name) is not None:
            raise errors.already_exists(ctx.rt.plural, ctx.rt.group, name)
        self._check_namespace_active(ctx, name)
        if self.lifecycle:
            self.lifecycle.admit_create(ctx, obj)
        meta["managedFields"] = (
            managed_fields
            if managed_fields is not None
            else update_managed_fields(
                None,
                obj,
                manager=ctx.manager,
                api_version=ctx.rt.group_version,
                now=now_rfc3339(),
                subresource=None,
                types=field_types(ctx.served),
                operation_is_create=True,
            )
        )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if ctx.dry_run:
            return obj
        allocate = getattr(strategy, "allocate", None)
        if allocate is not None:
            problems = allocate(ctx.cluster, obj, None)
            if problems:
                raise errors.invalid(ctx.rt.kind, ctx.rt.group, name, problems)
        entry = self._store(ctx, obj, "ADDED")
        if self.lifecycle:
            self.lifecycle.after_create(ctx, entry.obj)
        await ctx.cluster.store.db.committed()
        return entry.obj

    def _decode_body(self, ctx: Ctx, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {ctx.rt.kind})")
        rt = ctx.rt
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind is not None and kind != rt.kind:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.group_version})"
                if api_version != rt.group_version
                else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: the kind in the data '
                f"({kind}) does not match the expected kind ({rt.kind})"
            )
        if api_version is not None and api_version != rt.group_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.group_version})"
            )
        obj: Obj = orjson.loads(orjson.dumps(body))
        obj["apiVersion"] = rt.group_version
        obj["kind"] = rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: metadata must be an object'
            )
        self._prune(ctx, obj)
        return obj

    def _prune(self, ctx: Ctx, obj: Obj) -> None:
        """Drops unknown fields: Strict → 400, Warn → Warning header, Ignore → silent."""
        schema = self.lifecycle.schema_for(ctx.served) if self.lifecycle else None
        if schema is None:
            return
        unknown = schema.prune(obj)
        if not unknown or ctx.field_validation == "Ignore":
            return
        if ctx.field_validation == "Strict":
            text = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise errors.bad_request(
                f'{ctx.rt.kind} in version "{ctx.rt.version}" cannot be handled as a {ctx.rt.kind}: '
                f"strict decoding error: {text}"
            )
        ctx.warnings.extend(f'unknown field "{p}"' for p in unknown)

    def _check_namespace(self, ctx: Ctx, meta: dict[str, Any]) -> None:
        if ctx.rt.namespaced:
            ns = meta.get("namespace")
            if ns and ns != ctx.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ctx.namespace
        else:
            meta.pop("namespace", None)

    def _check_namespace_active(self, ctx: Ctx, name: str) -> None:
        if not ctx.rt.namespaced:
            return
        ns = ctx.cluster.store.get("/namespaces", "", ctx.namespace or "")
        if ns is None:
            raise errors.not_found("namespaces", "", ctx.namespace or "")
        if (ns.obj.get("status") or {}).get("phase") == "Terminating" or ns.obj["metadata"].get("deletionTimestamp"):
            err = errors.forbidden(
                ctx.rt.plural,
                ctx.rt.group,
                name,
                f"unable to create new content in namespace {ctx.namespace} because it is being terminated",
            )
            err.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {ctx.namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise err

    def _default_and_validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> None:
        strategy = ctx.served.strategy
        strategy.default(ctx.cluster, obj)
        if self.lifecycle:
            self.lifecycle.default(ctx, obj)
        problems = strategy.validate(ctx.cluster, obj, old, ctx.rt.namespaced)
        if self.lifecycle:
            problems += self.lifecycle.validate(ctx, obj, old)
        if problems:
            raise errors.invalid(ctx.rt.kind, ctx.rt.group, obj["metadata"].get("name", ""), problems)

    def _store(self, ctx: Ctx, obj: Obj, event: str) -> Entry:
        store = ctx.cluster.store
        obj["metadata"]["resourceVersion"] = str(store.next_rv())
        return store.put(ctx.served.key, obj, event)

    # -------------------------------------------------------------------- update
    async def update(self, ctx: Ctx, name: str, body: Any, subresource: str | None = None) -> Obj:
        old = self.get(ctx, name)
        new = self._decode_body(ctx, body)
        meta = new["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._check_namespace(ctx, meta)
        rv = meta.get("resourceVersion")
        if rv and rv != old.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(ctx.rt.plural, ctx.rt.group, name)
        return await self._write(ctx, old, new, subresource)

    async def _write(
        self,
        ctx: Ctx,
        old_entry: Entry,
        new: Obj,
        subresource: str | None,
        managed: Callable[[Obj, Obj], list[dict[str, Any]]] | None = None,
    ) -> Obj:
        """The update pipeline shared by PUT, PATCH and the /status and /finalize subresources."""
        old = old_entry.obj
        rt = ctx.rt
        strategy = ctx.served.strategy
        new = self._merge_subresource(ctx, old, new, subresource)
        meta, old_meta = new["metadata"], old["metadata"]
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.invalid(
                rt.kind, rt.group, old_meta["name"], [field_invalid("metadata.uid", meta["uid"], "field is immutable")]
            )
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if subresource is None:
            strategy.prepare_update(ctx.cluster, new, old)
        self._default_and_validate(ctx, new, old)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                found = ", ".join(f'"{f}"' for f in sorted(added))
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    old_meta["name"],
                    [
                        field_forbidden(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers []string{{{found}}}",
                        )
                    ],
                )
        if strategy.has_generation and strategy.spec_of(new) != strategy.spec_of(old):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if managed is not None:
            meta["managedFields"] = managed(old, new)
        else:
            meta["managedFields"] = update_managed_fields(
                old,
                new,
                manager=ctx.manager,
                api_version=rt.group_version,
                now=now_rfc3339(),
                subresource=subresource,
                types=field_types(ctx.served),
                operation_is_create=False,
            )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if new == old:  # a no-op writes nothing: same resourceVersion, no event
            return old
        if ctx.dry_run:
            return new
        released = not meta.get("finalizers") and not _waits_for_grace(rt, new) and not strategy.deletion_held(new)
        if old_meta.get("deletionTimestamp") and released:
            return await self._remove(ctx, new)
        entry = self._store(ctx, new, "MODIFIED")
        if self.lifecycle:
            self.lifecycle.after_update(ctx, entry.obj, old)
        await ctx.cluster.store.db.committed()
        return entry.obj

    def _merge_subresource(self, ctx: Ctx, old: Obj, new: Obj, subresource: str | None) -> Obj:
        """`/status` writes only status; the main resource never writes status (if it has /status)."""
        if subresource in ("status", "finalize"):
            merged: Obj = orjson.loads(orjson.dumps(old))
            if subresource == "finalize":
                merged.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get("finalizers") or []
            elif "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            return merged
        if ctx.rt.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    # -------------------------------------------------------------------- patch
    async def patch(
        self, ctx: Ctx, name: str, content_type: str, raw: bytes, subresource: str | None, force: bool | None
    ) -> tuple[int, Obj]:
        rt = ctx.rt
        allowed = CR_PATCH_TYPES if rt.is_crd else BUILTIN_PATCH_TYPES
        if content_type not in allowed:
            raise errors.unsupported_media_type(allowed)
        if content_type != APPLY_PATCH and force is not None:
            raise _patch_options_invalid("force", "Forbidden: may not be specified for non-apply patch")
        if content_type == APPLY_PATCH:
            if not ctx.manager_explicit:
                raise _patch_options_invalid("fieldManager", "Required value: is required for apply patch")
            return await self._apply(ctx, name, raw, subresource, bool(force))
        patch = _parse_json(raw)
        entry = self.get(ctx, name)
        current = entry.copy()
        current["apiVersion"] = rt.group_version  # patches apply to the object as served in this version
        if content_type == JSON_PATCH:
            patched = apply_json_patch(current, patch)
        elif content_type == MERGE_PATCH:
            patched = apply_merge_patch(current, require_object_patch(patch))
        else:
            patched = apply_strategic_merge_patch(current, patch, field_types(ctx.served))
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
            return 200, await self.write_scale(ctx, name, patched)
        patched.setdefault("metadata", {})["resourceVersion"] = entry.obj["metadata"]["resourceVersion"]
        new = self._decode_body(ctx, patched)
        return 200, await self._write(ctx, entry, new, subresource)

    async def _apply(self, ctx: Ctx, name: str, raw: bytes, subresource: str | None, force: bool) -> tuple[int, Obj]:
        rt = ctx.rt
        try:
            config = load_yaml(raw.decode("utf-8")) if raw else None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from exc
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
        schema = self.lifecycle.schema_for(ctx.served) if self.lifecycle else None
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
                merged = self._merge_subresource(ctx, live, merged, subresource)
            ctx.served.strategy.default(ctx.cluster, merged)
            if self.lifecycle:
                self.lifecycle.default(ctx, merged)
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
            return 201, await self.create(ctx, result, managed_fields=managed_fields)
        managed = result["metadata"].pop("managedFields", None) or []
        new = self._decode_body(ctx, result)
        new["metadata"]["resourceVersion"] = existing.obj["metadata"]["resourceVersion"]
        return 200, await self._write(ctx, existing, new, subresource, managed=lambda _o, _n: managed)

    # -------------------------------------------------------------------- scale
    def scale_of(self, ctx: Ctx, obj: Obj) -> Obj:
        rt = ctx.rt
        paths = rt.scale_paths or {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector" if rt.is_crd else "",
        }
        spec_replicas = _get_path(obj, paths["specReplicasPath"]) or 0
        status_replicas = _get_path(obj, paths["statusReplicasPath"]) or 0
        if rt.is_crd:
            selector = _get_path(obj, paths.get("labelSelectorPath") or "") or ""
        else:
            sel = (obj.get("spec") or {}).get("selector") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items()))
        meta = obj["metadata"]
        scale: Obj = {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
            },
            "spec": {"replicas": spec_replicas},
            "status": {"replicas": status_replicas},
        }
        if selector:
            scale["status"]["selector"] = selector
        return scale

    async def write_scale(self, ctx: Ctx, name: str, scale: Any) -> Obj:
        if not isinstance(scale, dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type Scale)")
        entry = self.get(ctx, name)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != entry.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(ctx.rt.plural, ctx.rt.group, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                name,
                [field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        new = entry.copy()
        path = (ctx.rt.scale_paths or {}).get("specReplicasPath", ".spec.replicas")
        _set_path(new, path, replicas)
        result = await self._write(ctx, entry, new, None)
        return self.scale_of(ctx, result)

    # -------------------------------------------------------------------- delete
    async def delete(self, ctx: Ctx, name: str, options: dict[str, Any]) -> tuple[int, Obj]:
        rt = ctx.rt
        entry = self.get(ctx, name)
        obj = entry.obj
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}",
            )
        if self.lifecycle:
            self.lifecycle.admit_delete(ctx, obj)
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        elif options.get("orphanDependents") is False and policy is None:
            policy = "Foreground"
        new = entry.copy()
        nmeta = new["metadata"]
        finalizers = list(nmeta.get("finalizers") or [])
        extra = self.lifecycle.deletion_finalizers(ctx, new) if self.lifecycle else []
        if policy == "Orphan" and "orphan" not in finalizers:
            extra.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            extra.append("foregroundDeletion")
        if meta.get("deletionTimestamp"):
            # already terminating: a repeat DELETE returns the object (pods may shorten their grace)
            grace = options.get("gracePeriodSeconds")
            if rt.kind == "Pod" and rt.group == "" and grace == 0 and not finalizers:
                return 200, await self._remove(ctx, new)
            return 200, obj
        grace = self._grace_period(ctx, obj, options)
        strategy = ctx.served.strategy
        if finalizers or extra or grace or strategy.deletion_held(obj):
            strategy.begin_deletion(new)
            for f in extra:
                if f not in finalizers:
                    finalizers.append(f)
            nmeta["finalizers"] = finalizers
            ts = datetime.now(UTC).timestamp() + (grace or 0)
            nmeta["deletionTimestamp"] = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            nmeta["deletionGracePeriodSeconds"] = grace or 0
            if ctx.served.strategy.has_generation:
                nmeta["generation"] = int(meta.get("generation", 1)) + 1
            if not nmeta["finalizers"]:
                del nmeta["finalizers"]
            if ctx.dry_run:
                return 200, new
            stored = self._store(ctx, new, "MODIFIED")
            if self.lifecycle:
                self.lifecycle.after_deleting(ctx, stored.obj)
            await ctx.cluster.store.db.committed()
            return 200, stored.obj
        if ctx.dry_run:
            return 200, obj
        removed = await self._remove(ctx, new, policy or "Background")
        if ctx.served.strategy.delete_returns_object:
            return 200, removed
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                k: v for k, v in {"name": name, "group": rt.group, "kind": rt.plural, "uid": meta["uid"]}.items() if v
            },
        }

    def _grace_period(self, ctx: Ctx, obj: Obj, options: dict[str, Any]) -> int:
        """Only pods that are running on a node get a grace period; the others go at once."""
        rt = ctx.rt
        if rt.kind != "Pod" or rt.group != "":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return max(0, int(grace))

    async def _remove(self, ctx: Ctx, obj: Obj, policy: str = "Background") -> Obj:
        store = ctx.cluster.store
        obj["metadata"]["resourceVersion"] = str(store.next_rv())
        entry = store.remove(ctx.served.key, obj)
        ctx.served.strategy.after_delete(ctx.cluster, obj)
        if self.lifecycle:
            self.lifecycle.after_delete(ctx, entry.obj, policy)
        await store.db.committed()
        return entry.obj

    async def delete_collection(self, ctx: Ctx, opts: ListOptions, options: dict[str, Any]) -> Obj:
        entries, _meta = self.list_entries(ctx, opts)
        items = []
        for entry in entries:
            try:
                _, result = await self.delete(ctx, entry.obj["metadata"]["name"], options)
            except StatusError as err:
                if err.code == 404:
                    continue
                raise
            items.append(result if result.get("kind") != "Status" else entry.obj)
        return {
            "kind": ctx.rt.list_kind,
            "apiVersion": ctx.rt.group_version,
            "metadata": {"resourceVersion": str(ctx.cluster.store.rv)},
            "items": items,
        }

    # -------------------------------------------------------------------- watch filter
    def watch_filter(self, ctx: Ctx, opts: ListOptions) -> Callable[[Event], bool]:
        check_field_selector(opts.field_selector, ctx.served.strategy.field_selectors, not ctx.rt.is_crd)
        namespace = ctx.namespace
        served = ctx.served

        def accepts(event: Event) -> bool:
            if namespace is not None and event.namespace != namespace:
                return False
            return self.matches(served, event.entry.obj, opts.label_selector, opts.field_selector)

        return accepts


def raw_as(entry: Entry, group_version: str) -> bytes:
    """The object's JSON as served in one version of its resource.

    Objects keep the apiVersion they were written in; the versions of a CRD share one storage, and
    with conversion strategy None (all we support) serving another version only rewrites apiVersion.
    """
    if entry.obj.get("apiVersion") == group_version:
        return entry.raw
    return orjson.dumps({**entry.obj, "apiVersion": group_version})


def _patch_options_invalid(field_name: str, message: str) -> StatusError:
    reason = "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueRequired"
    return errors.invalid("PatchOptions", "meta.k8s.io", "", [FieldError(field_name, reason, message)])


def _waits_for_grace(rt: Any, obj: Obj) -> bool:
    return bool(rt.kind == "Pod" and rt.group == "" and obj["metadata"].get("deletionGracePeriodSeconds"))


def _entry_key(entry: Entry) -> tuple[str, str]:
    meta = entry.obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    start = f"{key[0]}/{key[1]}" if key[0] else key[1]
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = str(data["start"]).rstrip("\x00")
        ns, _, name = start.rpartition("/")
        return int(data["rv"]), (ns, name)
    except Exception as exc:
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from exc


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from exc


def _get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
