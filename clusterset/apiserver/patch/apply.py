"""Server-side apply and managedFields bookkeeping, as kube-apiserver's field manager does it.

Pure functions over JSON-shaped dicts (no I/O): `server_side_apply` merges an apply body into
the live object, prunes what the applier dropped and computes ownership and conflicts;
`update_managed_fields` records an Update (POST, PUT, JSON/merge/strategic patch). The rules
are structured-merge-diff's (see shared/specs/patch-and-apply.md §4); field paths and FieldsV1
live in patch/fieldsets.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson

from clusterset.api.times import parse_time, rfc3339
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.patch.fieldsets import (
    MISSING,
    FieldPathError,
    Path,
    PathElement,
    compare_objects,
    fields_to_set,
    index_items,
    item_element,
    json_equal,
    lookup,
    node_kind,
    path_string,
    set_to_fields,
    sorted_paths,
    to_field_set,
)
from clusterset.apiserver.patch.typeinfo import FieldType, FieldTypes
from clusterset.apiserver.storage.encoding import kept

APPLY = "Apply"
UPDATE = "Update"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024

_META = ("f", "metadata")
_NEVER_TRACKED: frozenset[Path] = frozenset({
    (("f", "apiVersion"),),
    (("f", "kind"),),
    (_META,),
    *(
        (_META, ("f", name))
        for name in ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                     "selfLink", "managedFields", "clusterName", "deletionTimestamp",
                     "deletionGracePeriodSeconds")
    ),
})
_STATUS: PathElement = ("f", "status")


# --------------------------------------------------------------------------- managedFields entries


@dataclass
class ManagedEntry:
    """One decoded managedFields entry; `fields` is the set of owned member paths."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str | None
    fields: set[Path]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Apply entries are keyed by (manager, subresource); Update ones also by apiVersion."""
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource or "")

    def identifier(self) -> str:
        """Go's BuildManagerIdentifier JSON; conflicts are grouped and ordered by it."""
        out: dict[str, str] = {}
        if self.manager:
            out["manager"] = self.manager
        out["operation"] = self.operation
        if self.operation != APPLY and self.api_version:
            out["apiVersion"] = self.api_version
        if self.subresource:
            out["subresource"] = self.subresource
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)

    def describe(self) -> str:
        """How conflict messages name the owner: `"m" [with subresource "s"] [using v at t]`."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
            when = _rfc3339(self.time)
            if when:
                text += f" at {when}"
        return text

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = _encoded_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


_ENCODED: dict[frozenset[Path], bytes] = {}  # a field set → its FieldsV1 as JSON
_ENCODED_MAX = 4096
_ENCODED_LARGEST = 512  # paths: a wider set (a big ConfigMap's) is encoded each time rather than kept


def _encoded_fields(fields: set[Path]) -> Any:
    """set_to_fields, remembered: an Update re-encodes every manager's entry, and the entries of a kind's objects
    (a controller's status, a Placement's slices) hold the same few sets again and again."""
    if len(fields) > _ENCODED_LARGEST:
        return set_to_fields(fields)
    key = frozenset(fields)
    encoded = _ENCODED.get(key)
    if encoded is None:
        encoded = kept(orjson.dumps(set_to_fields(fields)))
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[key] = encoded
    return orjson.loads(encoded)


_DECODED: dict[bytes, frozenset[Path]] = {}  # a FieldsV1 as JSON → its field set


def _decoded_fields(fields_v1: Any) -> set[Path]:
    """fields_to_set, remembered: every write decodes the managedFields it finds, and they are the same few tries
    write after write (a heartbeat's report, a controller's status). The JSON is the key: it costs a fraction of
    the walk. Invalid tries are not remembered (they raise, as before)."""
    if not isinstance(fields_v1, dict):
        return fields_to_set(fields_v1)
    key = orjson.dumps(fields_v1)
    found = _DECODED.get(key)
    if found is None:
        found = frozenset(fields_to_set(fields_v1))
        if len(found) > _ENCODED_LARGEST:
            return set(found)
        if len(_DECODED) >= _ENCODED_MAX:
            _DECODED.clear()
        _DECODED[kept(key)] = found
    return set(found)


def _rfc3339(value: str | None) -> str | None:
    parsed = parse_time(value)
    return rfc3339(parsed) if parsed else None


def decode_managed_fields(raw: Any) -> list[ManagedEntry]:
    """Validates and decodes `metadata.managedFields`; ValueError when any entry is invalid.

    Entries with the same identity collapse into the last one, as upstream's map does.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    by_identity: dict[tuple[str, str, str, str], ManagedEntry] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"managed fields entry {i} must be an object")
        operation = item.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = item.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            raise ValueError("apiVersion must not be empty")
        fields_type = item.get("fieldsType")
        if fields_type != "FieldsV1":
            raise ValueError(f"invalid fieldsType {fields_type!r} in managed fields entry {i}")
        manager, time, subresource = item.get("manager", ""), item.get("time"), item.get("subresource")
        if not isinstance(manager, str) or not isinstance(time, str | None) or not isinstance(subresource, str | None):
            raise ValueError(f"invalid managed fields entry {i}")
        entry = ManagedEntry(manager, str(operation), api_version, time, subresource or None,
                             _decoded_fields(item.get("fieldsV1")))
        by_identity[entry.identity] = entry
    return list(by_identity.values())


def _decode_or_empty(raw: Any) -> list[ManagedEntry]:
    try:
        return decode_managed_fields(raw)
    except (ValueError, TypeError):
        return []


def encode_managed_fields(entries: list[ManagedEntry]) -> list[dict[str, Any]]:
    """Drops empty entries; sorts Apply before Update, then time, manager, apiVersion, subresource."""

    def order(e: ManagedEntry) -> tuple[str, float, str, str, str]:
        when = parse_time(e.time)
        return (e.operation, int(when.timestamp()) if when else 0, e.manager, e.api_version, e.subresource or "")

    return [e.encode() for e in sorted((e for e in entries if e.fields), key=order)]


def _is_reset(raw: Any) -> bool:
    """`managedFields: [{}]` asks for the list to be cleared (an empty list does not)."""
    return isinstance(raw, list) and len(raw) == 1 and raw[0] == {}


def _managed_of(obj: dict[str, Any] | None) -> Any:
    meta = (obj or {}).get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A shallow view without managedFields (compared, never changed: no copy of the whole object)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _tracked(path: Path, subresource: str | None) -> bool:
    """Neither never-tracked metadata nor a reset field (status on the main resource, the rest on /status)."""
    if not path or path in _NEVER_TRACKED:
        return False
    under_status = path[0] == _STATUS
    return under_status if subresource == "status" else not under_status


# --------------------------------------------------------------------------- Update


def update_managed_fields(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str | None,
    types: FieldTypes,
    operation_is_create: bool,
) -> list[dict[str, Any]]:
    """The managedFields to store on `new` after an Update by `manager` (SMD Updater.Update).

    The baseline is the request's own managedFields when it carries a valid non-empty list
    (how kubectl's CSA→SSA migration rewrites ownership), `[]` after a `[{}]` reset, else the
    live list; subresources always use the live list. Other entries lose every changed and
    removed path; the caller's entry gains the changed ones, and its time moves only then.
    """
    requested = _managed_of(new)
    if subresource:
        baseline = _decode_or_empty(_managed_of(live))
    elif _is_reset(requested):
        baseline = []
    else:
        baseline = _decode_or_empty(requested) if isinstance(requested, list) and requested else []
        if not baseline:
            baseline = _decode_or_empty(_managed_of(live))
    if not baseline and not operation_is_create:
        return []  # an object whose managedFields were stripped stays untracked until an apply
    old_obj = {} if operation_is_create or live is None else _without_managed_fields(live)
    diff = compare_objects(old_obj, _without_managed_fields(new), types).filtered(
        lambda p: _tracked(p, subresource)
    )
    changed = diff.changed()
    for entry in baseline:
        entry.fields -= changed
        entry.fields -= diff.removed
    if changed:
        mine = ManagedEntry(manager, UPDATE, api_version, now, subresource, set())
        for entry in baseline:
            if entry.identity == mine.identity:
                mine = entry
                break
        else:
            baseline.append(mine)
        mine.fields |= changed
        mine.time = now
    return encode_managed_fields(baseline)


_CREATED_FIELDS: dict[tuple[Any, ...], bytes] = {}  # (types, apiVersion, shape) → fieldsV1 as JSON ("" when none)
_CREATED_FIELDS_MAX = 4096


def created_managed_fields(new: dict[str, Any], *, manager: str, api_version: str, now: str, types: FieldTypes,
                           types_key: Hashable) -> list[dict[str, Any]]:
    """update_managed_fields for a create that brings no managedFields, remembered by the object's shape. What an
    Update owns depends on its maps' keys and on its lists, never on scalar values, so objects of one shape (every
    Event, the ConfigMaps of a chart) own the same fields; computing them took most of a small create's time.
    `types_key` names `types` and must change when they do (a built-in kind's name; a token of one CRD version's
    schema).

    An object with one owner (a controller's Pods and ReplicaSets, an import's slices in every member) owns a key
    made of its owner's uid (`k:{"uid":...}`): its shape is taken with a placeholder uid, and the owner's put back
    into the fields remembered for it. A set of plain strings (a Node's `podCIDRs`) owns its values (`v:"..."`):
    they are taken out alike, each replaced by a placeholder that sorts as its value among the set's."""
    shaped, uid = _owner_uid_out(new)
    sets: list[list[str]] = []
    key = (types_key, api_version, _shape(shaped, types, sets=sets))
    fields = _CREATED_FIELDS.get(key)
    if fields is None:
        entries = update_managed_fields(None, shaped, manager=manager, api_version=api_version, now=now,
                                        subresource=None, types=types, operation_is_create=True)
        fields = orjson.dumps(entries[0]["fieldsV1"]) if entries else b""
        for j, values in enumerate(sets):  # the fields list a set's values in their order: placeholders by rank
            for rank, value in enumerate(sorted(values)):
                fields = fields.replace(set_value_key(value.encode()), set_value_key(_set_placeholder(j, rank)))
        fields = kept(fields)
        placeholders = [_set_placeholder(j, r) for j, values in enumerate(sets) for r in range(len(values))]
        if (uid is not None and fields.count(_OWNER_UID_PLACEHOLDER) != 1) or any(
                fields.count(p) != 1 for p in placeholders):  # a placeholder is in the object too
            return update_managed_fields(None, new, manager=manager, api_version=api_version, now=now,
                                         subresource=None, types=types, operation_is_create=True)
        if len(_CREATED_FIELDS) >= _CREATED_FIELDS_MAX:
            _CREATED_FIELDS.clear()
        _CREATED_FIELDS[key] = fields
    if not fields:
        return []
    if uid is not None:
        fields = fields.replace(_OWNER_UID_PLACEHOLDER, uid.encode())
    for j, values in enumerate(sets):
        for rank, value in enumerate(sorted(values)):
            fields = fields.replace(_set_placeholder(j, rank), value.encode())
    return [{"manager": manager, "operation": UPDATE, "apiVersion": api_version, "time": now,
             "fieldsType": "FieldsV1", "fieldsV1": orjson.loads(fields)}]


_OWNER_UID_PLACEHOLDER = b"0wner-uid-placeh0lder"
_PLAIN_UID = re.compile(r"[0-9A-Za-z-]{1,128}")  # written into JSON as it is, twice quoted in a FieldsV1 key


def _owner_uid_out(new: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """`new` with its one owner's uid replaced by the placeholder, and that uid (None: `new` itself, unchanged)."""
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return new, None
    refs = meta.get("ownerReferences")
    if not isinstance(refs, list) or len(refs) != 1 or not isinstance(refs[0], dict):
        return new, None
    uid = refs[0].get("uid")
    if not isinstance(uid, str) or not _PLAIN_UID.fullmatch(uid):
        return new, None
    ref = {**refs[0], "uid": _OWNER_UID_PLACEHOLDER.decode()}
    return {**new, "metadata": {**meta, "ownerReferences": [ref]}}, uid


def _shape(value: Any, types: FieldTypes, tpath: tuple[str, ...] = (), sets: list[list[str]] | None = None) -> Any:
    """What of a value decides the fields it holds: maps' keys (nested), null apart from scalars, and lists whole,
    but for an atomic list only that it is one (it is owned whole, whatever it holds: a PlacementDecision's
    decisions, most custom resources' lists). Given `sets`, a set of distinct plain strings counts by its length,
    its values appended to `sets` (in the order of the walk)."""
    if isinstance(value, dict):
        return tuple((key, _shape(child, types, (*tpath, key), sets) if isinstance(child, dict | list) else
                      None if child is None else 0) for key, child in value.items())
    if isinstance(value, list):
        ft = lookup(types, tpath)
        kind = node_kind(value, ft)
        if kind == "atomic":
            return _ATOMIC_LIST
        if kind == "assoc" and ft is not None:
            # a keyed list's items are named by their keys alone: the rest of an item counts by its shape (the
            # conditions of a Node, a Pod's containers: their times and images own no field of their own)
            return (_ASSOC_LIST, tuple((item_element(item, ft, i, (), strict=False), _shape(item, types, tpath, sets))
                                       for i, item in enumerate(value)))
        if kind == "set" and sets is not None and _plain_set(value):
            sets.append(value)
            return (_SET_LIST, len(value))
        return kept(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return None if value is None else 0


def _plain_set(value: list[Any]) -> bool:
    return all(isinstance(v, str) and _PLAIN_VALUE.fullmatch(v) for v in value) and len(set(value)) == len(value)


def set_value_key(value: bytes) -> bytes:
    """A set member's FieldsV1 key (`v:"<value>"`) as it reads in JSON, for a value that needs no escaping."""
    return b'v:\\"' + value + b'\\"'


def _set_placeholder(number: int, rank: int) -> bytes:
    """The `rank`th value of the `number`th set: placeholders of one set sort as their ranks do."""
    return b"5et-value-placeh0lder-%04d-%04d" % (number, rank)


_ATOMIC_LIST = "atomic list"
_ASSOC_LIST = "keyed list"
_SET_LIST = "set"
_PLAIN_VALUE = re.compile(r"[0-9A-Za-z.:/_-]{1,253}")  # written into JSON as it is, twice quoted in a FieldsV1 key


# --------------------------------------------------------------------------- Apply


def server_side_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    types: FieldTypes,
    api_version: str,
    now: str,
    subresource: str | None,
    finalize: Callable[[dict[str, Any]], dict[str, Any]],
    resource: str,
    group: str,
) -> dict[str, Any]:
    """Applies `config` for `manager` (SMD Updater.Apply plus kube-apiserver's wrappers).

    Returns the new object with managedFields set, or a deep copy of `live` when neither the
    object nor its ownership changed (the caller skips the write). Raises StatusError: 400 for
    a malformed body, 409 for a stale resourceVersion or for conflicts without `force`.
    """
    config = _normalize(config)
    meta = _validate_body(config, api_version, live)
    live_meta = (live or {}).get("metadata") or {}
    name = str(meta.get("name") or live_meta.get("name") or "")
    namespace = str(meta.get("namespace") or live_meta.get("namespace") or "")
    precondition = meta.get("resourceVersion")
    if precondition and (live is None or precondition != live_meta.get("resourceVersion")):
        raise errors.conflict(resource, group, name)

    live_obj = _without_managed_fields(live) if live is not None else {}
    live_entries = _decode_or_empty(_managed_of(live))
    entries = [dataclasses.replace(e, fields=set(e.fields)) for e in live_entries]
    try:
        applied = {p for p in to_field_set(config, types, strict=True) if _tracked(p, subresource)}
    except FieldPathError as exc:
        raise errors.bad_request(
            f"failed to create typed patch object ({namespace}/{name}; {_gvk(api_version, str(config['kind']))}): {exc}"
        ) from exc

    merged = _merge(live_obj, config, (), None, types)
    mine = ManagedEntry(manager, APPLY, api_version, now, subresource, applied)
    previous = next((e for e in entries if e.identity == mine.identity), None)
    others = [e for e in entries if e.identity != mine.identity]
    if previous is not None and not previous.fields <= applied:  # else nothing it owned is left out: no pruning
        owned = set(applied)
        for entry in others:
            owned |= entry.fields
        _Pruner(previous.fields, owned, types).prune_map(merged, (), (), frozenset())

    final = _without_managed_fields(finalize(merged))
    if others:  # what changed matters only to the other managers (a create, a lone manager's apply: none)
        others_own = set().union(*(e.fields for e in others))
        diff = compare_objects(live_obj, final, types, within=others_own).filtered(lambda p: _tracked(p, subresource))
        changed = diff.changed()
        conflicts = [(e, e.fields & changed) for e in others if e.fields & changed]
        if conflicts and not force:
            raise _conflict_error(conflicts)
        for entry in others:
            entry.fields -= changed
            entry.fields -= diff.removed
    object_changed = live is None or not json_equal(live_obj, final)
    if not object_changed and previous is not None:
        mine.time = previous.time
    encoded = encode_managed_fields([mine, *others])

    if manager == "kubectl" and subresource is None:
        _rewrite_last_applied(final, config)
    if live is not None and json_equal(final, live_obj) and encoded == encode_managed_fields(live_entries):
        return copy.deepcopy(live)
    final_meta = final.setdefault("metadata", {})
    if encoded:
        final_meta["managedFields"] = encoded
    return final


def _normalize(config: dict[str, Any]) -> dict[str, Any]:
    """A JSON-only copy of the body (YAML may yield dates or non-string keys)."""
    try:
        out = orjson.loads(orjson.dumps(config, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
    if not isinstance(out, dict):
        raise errors.bad_request("error decoding YAML: the apply patch must be an object")
    return out


def _gvk(api_version: str, kind: str) -> str:
    """Go's GroupVersionKind.String(): `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`."""
    grp, _, version = api_version.rpartition("/")
    return f"{grp}/{version}, Kind={kind}"


def _validate_body(config: dict[str, Any], api_version: str, live: dict[str, Any] | None) -> dict[str, Any]:
    version = config.get("apiVersion")
    if version != api_version:
        shown = version if isinstance(version, str) else ("" if version is None else json.dumps(version))
        raise errors.bad_request(
            f"Incorrect version specified in apply patch. Specified patch version: {shown}, expected: {api_version}"
        )
    kind = config.get("kind")
    live_kind = (live or {}).get("kind")
    if not isinstance(kind, str) or not kind or (live_kind and kind != live_kind):
        raise errors.bad_request(f"invalid object type: {_gvk(api_version, kind if isinstance(kind, str) else '')}")
    meta = config.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise errors.bad_request("error decoding YAML: metadata must be an object")
    if meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    return meta


def _conflict_error(conflicts: list[tuple[ManagedEntry, set[Path]]]) -> StatusError:
    """409 exactly as kube-apiserver words it: one cause per (manager, field), grouped message."""
    ordered = sorted(conflicts, key=lambda c: c[0].identifier())
    pairs = [(entry, path) for entry, paths in ordered for path in sorted_paths(paths)]
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {entry.describe()}", "field": path_string(path)}
        for entry, path in pairs
    ]
    if len(pairs) == 1:
        entry, path = pairs[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_string(path)}"
    else:
        lines: list[str] = []
        for entry, paths in ordered:
            lines.append(f"conflicts with {entry.describe()}:")
            lines.extend(f"- {path_string(p)}" for p in sorted_paths(paths))
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


# --------------------------------------------------------------------------- merge


def _strip_nulls(value: Any) -> Any:
    """A copy without null map entries: null in an apply body means "unset" once decoded."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _merge(lhs: Any, rhs: Any, tpath: tuple[str, ...], ft: FieldType | None, types: FieldTypes) -> Any:
    """live (lhs) merged with config (rhs), config winning; MISSING means "leave the key out"."""
    lkind = None if lhs is MISSING else node_kind(lhs, ft)
    if rhs is None:
        # A null granular map or keyed list in the body leaves the live content alone (SMD).
        if lkind in ("map", "assoc", "set") and lhs:
            return copy.deepcopy(lhs)
        return MISSING
    rkind = node_kind(rhs, ft)
    if lkind == rkind == "map" and (lhs or rhs):
        out: dict[str, Any] = {}
        for key, value in lhs.items():
            out[key] = copy.deepcopy(value) if key not in rhs else _merge_child(lhs, rhs, key, tpath, types)
            if out[key] is MISSING:
                del out[key]
        for key in rhs:
            if key not in lhs:
                child = _merge_child(lhs, rhs, key, tpath, types)
                if child is not MISSING:
                    out[key] = child
        return out
    if lkind == rkind and rkind in ("assoc", "set") and (lhs or rhs):
        assert ft is not None
        return _merge_list(lhs, rhs, tpath, ft, rkind, types)
    return _strip_nulls(rhs)


def _merge_child(lhs: dict[str, Any], rhs: dict[str, Any], key: str, tpath: tuple[str, ...],
                 types: FieldTypes) -> Any:
    child_tpath = (*tpath, key)
    return _merge(lhs.get(key, MISSING), rhs[key], child_tpath, lookup(types, child_tpath), types)


def _merge_list(lhs: list[Any], rhs: list[Any], tpath: tuple[str, ...], ft: FieldType, kind: str,
                types: FieldTypes) -> list[Any]:
    """SMD's associative merge: config items in config order, live-only items keep their places."""
    rorder, ritems = index_items(rhs, ft, (), strict=False)
    lpes = [item_element(item, ft, i, (), strict=False) for i, item in enumerate(lhs)]
    lseen: dict[PathElement, list[Any]] = {}
    for pe, item in zip(lpes, lhs, strict=True):
        lseen.setdefault(pe, []).append(item)

    def merge_item(pe: PathElement) -> Any:
        lvals = lseen.get(pe)
        lchild = lvals[0] if lvals and len(lvals) == 1 else MISSING
        rchild = ritems[pe][0]
        if kind == "assoc" and isinstance(rchild, dict) and (lchild is MISSING or isinstance(lchild, dict)):
            return _merge(lchild, rchild, tpath, None, types)
        return _strip_nulls(rchild) if rchild is not None else MISSING

    shared = [pe for pe in rorder if pe in lseen]
    shared_at = 0
    next_shared = shared[0] if shared else None
    merged_rhs: set[PathElement] = set()
    out: list[Any] = []

    def emit(value: Any) -> None:
        if value is not MISSING:
            out.append(value)

    li = ri = 0
    while li < len(lpes) or ri < len(rorder):
        if li < len(lpes) and ri < len(rorder):
            pe = lpes[li]
            if pe == rorder[ri]:
                merged_rhs.add(pe)
                emit(merge_item(pe))
                li += 1
                ri += 1
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
                continue
            if pe in ritems and next_shared is not None and next_shared != pe:
                li += 1  # shared item, but not the one due in this round
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in ritems:
                emit(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < len(rorder):
            pe = rorder[ri]
            merged_rhs.add(pe)
            emit(merge_item(pe))
            ri += 1
            if next_shared is not None and next_shared == pe:
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
    return out


# --------------------------------------------------------------------------- prune


class _Pruner:
    """Removes what the applier owned last time, left out now, and nobody else owns.

    A list item or map entry stays while anyone (the applier's new set included) owns it or
    anything under it; key fields of a kept item are never removed; a container emptied by
    pruning goes too unless someone owns it.
    """

    def __init__(self, previous: set[Path], owned: set[Path], types: FieldTypes) -> None:
        self.previous = previous
        self.owned = owned
        self.types = types
        self.previous_prefixes = {p[:i] for p in previous for i in range(1, len(p))}
        self.owned_prefixes = {p[:i] for p in owned for i in range(1, len(p))}

    def removable(self, path: Path) -> bool:
        return path in self.previous and path not in self.owned and path not in self.owned_prefixes

    def prune_map(self, value: dict[str, Any], path: Path, tpath: tuple[str, ...], protected: frozenset[str]) -> None:
        for key in list(value):
            if key in protected:
                continue
            child_path = (*path, ("f", key))
            if self.removable(child_path):
                del value[key]
                continue
            if child_path not in self.previous_prefixes:
                continue
            child = value[key]
            child_tpath = (*tpath, key)
            ft = lookup(self.types, child_tpath)
            kind = node_kind(child, ft)
            had_content = bool(child)
            if kind == "map":
                self.prune_map(child, child_path, child_tpath, frozenset())
            elif kind in ("assoc", "set"):
                assert ft is not None
                self.prune_list(child, child_path, child_tpath, ft, kind)
            if had_content and not child and child_path not in self.owned:
                del value[key]

    def prune_list(self, items: list[Any], path: Path, tpath: tuple[str, ...], ft: FieldType, kind: str) -> None:
        kept: list[Any] = []
        for i, item in enumerate(items):
            item_path = (*path, item_element(item, ft, i, path, strict=False))
            if self.removable(item_path):
                continue
            if kind == "assoc" and isinstance(item, dict) and item_path in self.previous_prefixes:
                self.prune_map(item, item_path, tpath, frozenset(ft.keys))
            kept.append(item)
        items[:] = kept


# --------------------------------------------------------------------------- last-applied


def _go_json(value: Any) -> str:
    """encoding/json output: sorted keys, compact, HTML-escaped, as kubectl's annotation is."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _rewrite_last_applied(obj: dict[str, Any], config: dict[str, Any]) -> None:
    """After a `kubectl` apply, an existing CSA annotation is set to the applied body (§4.8).

    That keeps a later client-side apply's three-way merge correct. Like upstream, the
    annotation is dropped if it would push the annotations past their 256 KiB limit.
    """
    annotations = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return
    body = copy.deepcopy(config)
    body_meta = body.get("metadata")
    if isinstance(body_meta, dict) and isinstance(body_meta.get("annotations"), dict):
        body_meta["annotations"].pop(LAST_APPLIED, None)
        if not body_meta["annotations"]:
            del body_meta["annotations"]
    annotations[LAST_APPLIED] = _go_json(body) + "\n"
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > _ANNOTATIONS_SIZE_LIMIT:
        del annotations[LAST_APPLIED]
        if not annotations:
            del obj["metadata"]["annotations"]
