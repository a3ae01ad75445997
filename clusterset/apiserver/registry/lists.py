"""Lists and watches: selector matching, pages with continue tokens, the filter a watch applies.

A continue token has kube-apiserver's encoding (`{"v":"meta.k8s.io/v1","rv":…,"start":…}`, base64url), so
clients that inspect or compare them see what they expect.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.selectors import FieldSelector, LabelSelector, check_field_selector
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.storage.encoding import go_json
from clusterset.apiserver.storage.store import Entry, Event, Obj


@dataclass
class ListOptions:
    label_selector: LabelSelector
    field_selector: FieldSelector
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: int | None = None  # of a watch; None or 0: the server's default


def list_entries(ctx: Ctx, opts: ListOptions) -> tuple[list[Entry], dict[str, Any]]:
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
               if matches(ctx.served, e.obj, opts.label_selector, opts.field_selector)]
    if opts.limit and len(entries) > opts.limit:
        entries = entries[: opts.limit]
        meta["continue"] = _encode_continue(list_rv, _entry_key(entries[-1]))
    return entries, meta


def matches(served: Served, obj: Obj, labels: LabelSelector, fields: FieldSelector) -> bool:
    if not labels.empty and not labels.matches((obj.get("metadata") or {}).get("labels")):
        return False
    return fields.empty or fields.matches(served.strategy.field_set(obj))


def watch_filter(ctx: Ctx, opts: ListOptions) -> Callable[[Event], bool]:
    check_field_selector(opts.field_selector, ctx.served.strategy.field_selectors, not ctx.rt.is_crd)
    namespace = ctx.namespace
    served = ctx.served

    def accepts(event: Event) -> bool:
        if namespace is not None and event.namespace != namespace:
            return False
        return matches(served, event.entry.obj, opts.label_selector, opts.field_selector)

    return accepts


def raw_as(entry: Entry, group_version: str) -> bytes:
    """The object's JSON as served in one version of its resource.

    Objects keep the apiVersion they were written in; the versions of a CRD share one storage, and
    with conversion strategy None (all we support) serving another version only rewrites apiVersion.
    """
    if entry.obj.get("apiVersion") == group_version:
        return entry.raw
    return go_json({**entry.obj, "apiVersion": group_version})


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
