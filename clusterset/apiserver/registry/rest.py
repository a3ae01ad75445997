"""The generic write pipeline of every resource: kube-apiserver's registry store behaviour.

Transport-free: the HTTP layer parses requests into these calls and renders the results; the
built-in controllers write through the same calls. Each write goes through one pipeline: decoding
and pruning, the kind's strategy (defaulting, validation), admission, generation, managedFields,
no-op detection, then the store. Kind-specific behaviour lives in strategies (`kinds/`) and admission
plugins (`admission/`); what happens after a write is the controllers' (`controllers/`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from clusterset.api.times import now_rfc3339, rfc3339
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError, field_forbidden, field_invalid
from clusterset.apiserver.meta.names import generate_suffix, new_uid
from clusterset.apiserver.meta.offload import off_loop
from clusterset.apiserver.patch.apply import created_managed_fields, update_managed_fields
from clusterset.apiserver.registry.admission import Admission
from clusterset.apiserver.registry.context import Ctx, field_types
from clusterset.apiserver.registry.lists import ListOptions, list_entries
from clusterset.apiserver.registry.schemas import compiled_schema
from clusterset.apiserver.storage.store import Entry, Obj

_NEVER_SET_BY_CLIENT = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)


# Objects larger than this (encoded) are pruned and their managedFields computed off the event loop
_INLINE_UP_TO = 64 * 1024


class Rest:
    """The REST operations, shared by every logical cluster of a server."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    # -------------------------------------------------------------------- reads
    def get(self, ctx: Ctx, name: str) -> Entry:
        entry = ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", name)
        if entry is None:
            raise errors.not_found(ctx.rt.plural, ctx.rt.group, name)
        return entry

    # -------------------------------------------------------------------- create
    async def create(self, ctx: Ctx, body: Any, managed_fields: list[dict[str, Any]] | None = None) -> Obj:
        obj = await self.decode_body(ctx, body)
        meta = obj["metadata"]
        if _is_stored_version(meta.pop("resourceVersion", None)):
            # etcd3's store.Create refuses it with a plain error, which kube-apiserver answers as a 500 with no
            # reason; anything else ("", "0", "v1", "-1") is dropped and the object created
            raise errors.StatusError(500, "", "resourceVersion should not be set on objects to be created")
        self._check_namespace(ctx, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"])[:58] + generate_suffix()
        for key in _NEVER_SET_BY_CLIENT:
            meta.pop(key, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        strategy = ctx.served.strategy
        if strategy.has_generation:
            meta["generation"] = 1
        strategy.prepare_create(ctx.cluster, obj)
        self._default_and_validate(ctx, obj, None)
        if managed_fields is None:
            managed_fields = await self._tracked_fields(ctx, None, obj, None, _is_large(obj))
        name = meta["name"]  # checked after the only await, so that nothing changes before the object is stored
        if ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", name) is not None:
            raise errors.already_exists(ctx.rt.plural, ctx.rt.group, name)
        self.admission.admit_create(ctx, obj)
        meta["managedFields"] = managed_fields
        if not meta["managedFields"]:
            del meta["managedFields"]
        if ctx.dry_run:
            return obj
        problems = strategy.allocate(ctx.cluster, obj)
        if problems:
            raise errors.invalid(ctx.rt.kind, ctx.rt.group, name, problems)
        entry = self._store(ctx, obj, "ADDED")
        await ctx.cluster.store.db.committed()
        return entry.obj

    async def decode_body(self, ctx: Ctx, body: Any) -> Obj:
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
        encoded = orjson.dumps(body)
        obj: Obj = orjson.loads(encoded)
        obj["apiVersion"] = rt.group_version
        obj["kind"] = rt.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: metadata must be an object'
            )
        await self._prune(ctx, obj, large=len(encoded) > _INLINE_UP_TO)
        return obj

    async def _prune(self, ctx: Ctx, obj: Obj, large: bool) -> None:
        """Drops unknown fields: Strict → 400, Warn → Warning header, Ignore → silent."""
        schema = compiled_schema(ctx.rt)
        if schema is None:
            return
        unknown = await off_loop(schema.prune, obj, remember=False) if large else schema.prune(obj)
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

    def _default_and_validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> None:
        strategy = ctx.served.strategy
        strategy.default(ctx.cluster, obj)
        problems = strategy.validate(ctx.cluster, obj, old, ctx.rt.namespaced)
        if not problems:
            problems = self.admission.validate(ctx, obj, old)
        if problems:
            raise errors.invalid(ctx.rt.kind, ctx.rt.group, obj["metadata"].get("name", ""), problems)

    def _store(self, ctx: Ctx, obj: Obj, event: str) -> Entry:
        store = ctx.cluster.store
        obj["metadata"]["resourceVersion"] = str(store.next_rv())
        entry = store.put(ctx.served.key, obj, event)
        ctx.stored_at, ctx.stored = store.db.written, entry
        return entry

    # -------------------------------------------------------------------- update
    async def update(self, ctx: Ctx, name: str, body: Any, subresource: str | None = None) -> Obj:
        old = self.get(ctx, name)
        new = await self.decode_body(ctx, body)
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
        return await self.write(ctx, old, new, subresource)

    async def write(
        self,
        ctx: Ctx,
        old_entry: Entry,
        new: Obj,
        subresource: str | None,
        managed: Callable[[Obj, Obj], list[dict[str, Any]]] | None = None,
    ) -> Obj:
        """The update pipeline shared by PUT, PATCH, the subresources and the built-in controllers."""
        old = old_entry.obj
        rt = ctx.rt
        strategy = ctx.served.strategy
        new = self.merge_subresource(ctx, old, new, subresource)
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
            large = _is_large(new)
            meta["managedFields"] = await self._tracked_fields(ctx, old, new, subresource, large)
            if large and ctx.cluster.store.get(ctx.served.key, ctx.namespace or "", old_meta["name"]) is not old_entry:
                raise errors.conflict(rt.plural, rt.group, old_meta["name"])  # it changed while we were off the loop
        if not meta["managedFields"]:
            del meta["managedFields"]
        if new == old:  # a no-op writes nothing: same resourceVersion, no event
            return old
        if ctx.dry_run:
            return new
        waits_for_grace = strategy.graceful_deletion and meta.get("deletionGracePeriodSeconds")
        released = not meta.get("finalizers") and not waits_for_grace and not strategy.deletion_held(new)
        if old_meta.get("deletionTimestamp") and released:
            return await self._remove(ctx, new)
        entry = self._store(ctx, new, "MODIFIED")
        await ctx.cluster.store.db.committed()
        return entry.obj

    async def _tracked_fields(self, ctx: Ctx, live: Obj | None, new: Obj, subresource: str | None, large: bool
                              ) -> list[dict[str, Any]]:
        """managedFields after an Update (a create when `live` is None). Pure, and about 10 µs per field: for a
        large object it runs off the event loop, so that a wide ConfigMap does not stall every cluster."""
        rt = ctx.rt
        if live is None and subresource is None and not large and "managedFields" not in new["metadata"]:
            # a CRD's field types are its schema's, compiled once per distinct schema (every member's CRD alike)
            types_key = (compiled_schema(rt) or rt.extra.setdefault("field types", object())) if rt.is_crd \
                else (rt.group, rt.kind)
            return created_managed_fields(new, manager=ctx.manager, api_version=rt.group_version, now=now_rfc3339(),
                                          types=field_types(ctx.served), types_key=types_key)
        compute = functools.partial(
            update_managed_fields,
            live,
            new,
            manager=ctx.manager,
            api_version=rt.group_version,
            now=now_rfc3339(),
            subresource=subresource,
            types=field_types(ctx.served),
            operation_is_create=live is None,
        )
        return await off_loop(compute) if large else compute()

    def merge_subresource(self, ctx: Ctx, old: Obj, new: Obj, subresource: str | None) -> Obj:
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
        self.admission.admit_delete(ctx, obj)
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        elif options.get("orphanDependents") is False and policy is None:
            policy = "Foreground"
        new = entry.copy()
        nmeta = new["metadata"]
        finalizers = list(nmeta.get("finalizers") or [])
        strategy = ctx.served.strategy
        extra = strategy.deletion_finalizers(new)
        if policy == "Orphan" and "orphan" not in finalizers:
            extra.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            extra.append("foregroundDeletion")
        if meta.get("deletionTimestamp"):
            # already terminating: a repeat DELETE returns the object (pods may shorten their grace)
            grace = options.get("gracePeriodSeconds")
            if strategy.graceful_deletion and grace == 0 and not finalizers:
                return 200, await self._remove(ctx, new)
            return 200, obj
        grace = strategy.grace_period(obj, options) if strategy.graceful_deletion else 0
        if finalizers or extra or grace or strategy.deletion_held(obj):
            strategy.begin_deletion(new)
            for f in extra:
                if f not in finalizers:
                    finalizers.append(f)
            nmeta["finalizers"] = finalizers
            ts = datetime.now(UTC).timestamp() + (grace or 0)
            nmeta["deletionTimestamp"] = rfc3339(datetime.fromtimestamp(ts, UTC))
            nmeta["deletionGracePeriodSeconds"] = grace or 0
            if ctx.served.strategy.has_generation:
                nmeta["generation"] = int(meta.get("generation", 1)) + 1
            if not nmeta["finalizers"]:
                del nmeta["finalizers"]
            if ctx.dry_run:
                return 200, new
            stored = self._store(ctx, new, "MODIFIED")
            await ctx.cluster.store.db.committed()
            return 200, stored.obj
        if ctx.dry_run:
            return 200, obj
        removed = await self._remove(ctx, new)
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

    async def _remove(self, ctx: Ctx, obj: Obj) -> Obj:
        store = ctx.cluster.store
        obj["metadata"]["resourceVersion"] = str(store.next_rv())
        entry = store.remove(ctx.served.key, obj)
        ctx.served.strategy.after_delete(ctx.cluster, obj)
        ctx.stored_at, ctx.stored = store.db.written, entry
        await store.db.committed()
        return entry.obj

    async def delete_collection(self, ctx: Ctx, opts: ListOptions, options: dict[str, Any]) -> Obj:
        entries, _meta = list_entries(ctx, opts)
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


def _is_large(obj: Obj) -> bool:
    return len(orjson.dumps(obj)) > _INLINE_UP_TO


def _is_stored_version(value: Any) -> bool:
    """A resourceVersion the store could have issued: a non-zero uint64, as Go's strconv.ParseUint reads it."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 2**64
