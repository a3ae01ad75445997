"""The server half of strategic merge patch, ported from apimachinery's pkg/util/strategicpatch.

kubectl sends SMP for built-in kinds (apply, edit, set, rollout, patch); a plain merge
patch would wipe containers, env and ports and store the `$...` directives as data. The
merge strategy of each field comes from `FieldTypes` (the Go struct tags).

Where upstream answers 500 (no merge key, bad `$patch` value, mixed list element types)
this answers 400, as the spec asks. Directives and nulls never reach the result.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from clusterset.apiserver.meta.errors import StatusError, bad_request
from clusterset.apiserver.patch.merge import clone, go_format, go_json_type, json_equal, json_key
from clusterset.apiserver.patch.typeinfo import FieldTypes

__all__ = ["apply_strategic_merge_patch"]

_DIRECTIVE = "$patch"
_REPLACE = "replace"
_DELETE = "delete"
_MERGE = "merge"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"

Path = tuple[str, ...]


class _Drop:
    """Marks a stripped value that must not be stored at all (a `$patch` map)."""


_DROP = _Drop()


def apply_strategic_merge_patch(doc: dict[str, Any], patch: Any, types: FieldTypes) -> dict[str, Any]:
    """Merges a decoded SMP body into `doc` and returns the new object; `doc` is not modified.

    Errors: a body that is not a JSON object, malformed directives, list items without
    their merge key → 400; lists of lists → 422. A `null` body is a no-op, as upstream.
    """
    if patch is None:
        unchanged: dict[str, Any] = clone(doc)
        return unchanged
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {go_json_type(patch)} into Go value of type map[string]interface {{}}"
        )
    merged = _merge_map(clone(doc), clone(patch), (), types)
    return {} if merged is None else merged


# --- maps -------------------------------------------------------------------------------


def _merge_map(original: dict[str, Any], patch: dict[str, Any], path: Path, types: FieldTypes) -> dict[str, Any] | None:
    """mergeMap: both arguments are private copies and are consumed. None means "delete me"."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == _REPLACE:
            stripped = _strip(patch)  # keeps a `replace` map's content, minus the marker
            assert isinstance(stripped, dict)
            return stripped
        if directive == _DELETE:
            return None
        raise _bad_patch_type(directive, patch)

    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, path, types)

    for raw_key, value in patch.items():
        key = raw_key
        delete_list = raw_key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            key = _extract_key(raw_key, _DELETE_FROM_PRIMITIVE_LIST, _BAD_PRIMITIVE_LIST)
            if not isinstance(value, list):
                raise bad_request(_BAD_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or _container_kind(original[key]) != _container_kind(value):
            # New keys and type changes take the patch value, minus directives and nulls.
            # A deletion list never creates the list it deletes from.
            if not delete_list:
                _store(original, key, _strip(value))
            continue
        current = original[key]
        child = (*path, key)
        if isinstance(current, dict):
            field = types.lookup(child)
            if field is not None and field.smp == _REPLACE:
                _store(original, key, _strip(value))
                continue
            merged = _merge_map(current, value, child, types)
            if merged is None:
                del original[key]
            else:
                original[key] = merged
        elif isinstance(current, list):
            original[key] = _merge_list_field(current, value, child, types, delete_list)
        else:
            original[key] = value
    return original


def _store(target: dict[str, Any], key: str, value: Any) -> None:
    if value is _DROP:
        target.pop(key, None)
    else:
        target[key] = value


def _container_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: drop every original key not listed; every patch key must be listed."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise bad_request(_BAD_RETAIN_KEYS)
    keep = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise bad_request(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in keep]:
        del original[key]


def _extract_key(key: str, prefix: str, error: str) -> str:
    head, sep, tail = key.partition("/")
    if not sep or head != prefix:
        raise bad_request(error)
    return tail


# --- lists ------------------------------------------------------------------------------


def _merge_list_field(
    original: list[Any], patch: list[Any], path: Path, types: FieldTypes, delete_list: bool
) -> list[Any]:
    """mergeSliceHandler: lists without the merge strategy are replaced whole."""
    field = types.lookup(path)
    if delete_list:
        gone = {json_key(item) for item in patch}
        return [item for item in original if json_key(item) not in gone]
    if field is None or field.smp != _MERGE:
        stripped = _strip(patch)
        assert isinstance(stripped, list)
        return stripped
    return _merge_slice(original, patch, field.merge_key, path, types)


def _merge_slice(
    original: list[Any], patch: list[Any], merge_key: str | None, path: Path, types: FieldTypes
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        merged = _dedupe(original + patch)
        patch_part, server_only = _partition(merged, patch, None)
        return _normalize_order(patch_part, server_only, patch, original, None)
    if merge_key is None:
        raise bad_request(f"cannot merge lists without merge key for {'.'.join(path)}")
    original, patch = _apply_list_directives(original, patch, merge_key)
    merged = list(original)
    positions = _first_positions(merged, merge_key, keyed_only=True)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        index = positions.setdefault(json_key(item[merge_key]), len(merged))
        if index == len(merged):
            merged.append(_strip(item))
        else:
            result = _merge_map(merged[index], item, path, types)
            merged[index] = {} if result is None else result
    patch_part, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patch_part, server_only, patch, original, merge_key)


def _apply_list_directives(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: `$patch` items delete entries or turn the list into a replacement."""
    plain: list[Any] = []
    deleted: set[Hashable] = set()
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == _DELETE:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            deleted.add(json_key(item[merge_key]))
        elif directive == _REPLACE:
            replace = True
        elif directive == _MERGE:
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, item)
    if replace:
        return [_strip(item) for item in plain], []
    if deleted:
        original = [
            o for o in original if not (isinstance(o, dict) and merge_key in o and json_key(o[merge_key]) in deleted)
        ]
    return original, plain


def _merge_ordered_lists(original: dict[str, Any], patch: dict[str, Any], path: Path, types: FieldTypes) -> None:
    """mergePatchIntoOriginal: merges each `$setElementOrder/<f>` list and its field, then orders it.

    Patch items follow the directive's order; server-only items keep their relative places.
    """
    for directive_key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise bad_request(_BAD_SET_ELEMENT_ORDER)
        key = _extract_key(directive_key, _SET_ELEMENT_ORDER, _BAD_SET_ELEMENT_ORDER)
        in_original = original.get(key) is not None
        in_patch = key in patch
        original_list = original.get(key) if in_original else []
        patch_list = patch.get(key) if in_patch else []
        if not isinstance(original_list, list) or not isinstance(patch_list, list):
            raise bad_request(_BAD_SET_ELEMENT_ORDER)
        field = types.lookup((*path, key))
        merge_key = field.merge_key if field is not None else None
        _validate_order(patch_list, order, merge_key)

        if in_original and in_patch:
            merged = _merge_list_field(original_list, patch_list, (*path, key), types, False)
        elif in_patch:
            stripped = _strip(patch_list)
            assert isinstance(stripped, list)
            merged = stripped
        elif in_original:
            merged = original_list
        else:
            continue
        patch.pop(key, None)
        if merged:
            key_for_order = merge_key if _element_kind(original_list, patch_list, merged) == "map" else None
            patch_part, server_only = _partition(merged, order, key_for_order)
            merged = _normalize_order(patch_part, server_only, order, original_list, key_for_order)
        original[key] = merged


def _validate_order(patch_list: list[Any], order: list[Any], merge_key: str | None) -> None:
    """validatePatchWithSetOrderList: patch items must appear in the order list, in that order."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key is not None:
        for item in patch_list:
            if not isinstance(item, dict):
                raise bad_request(_BAD_SET_ELEMENT_ORDER)
        items = [item for item in patch_list if item.get(_DIRECTIVE) != _DELETE]
    i = j = 0
    while i < len(items) and j < len(order):
        item = items[i]
        if isinstance(item, dict) and _DIRECTIVE in item:
            i += 1
            continue
        if _same_entry(item, order[j], merge_key):
            i += 1
        j += 1
    if i < len(items):
        raise bad_request(
            f"the order in patch list:\n{go_format(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{go_format(order)}"
        )


def _same_entry(left: Any, right: Any, merge_key: str | None) -> bool:
    """mergeKeyValueEqual: compares merge-key values, or whole values for scalar lists."""
    if merge_key is None:
        return json_equal(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise bad_request(_BAD_SET_ELEMENT_ORDER)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return json_equal(left[merge_key], right[merge_key])


# --- ordering ---------------------------------------------------------------------------


def _partition(merged: list[Any], present: list[Any], merge_key: str | None) -> tuple[list[Any], list[Any]]:
    """Splits `merged` into items named by `present` and server-only items, keeping order."""
    in_patch: list[Any] = []
    server_only: list[Any] = []
    present_are_maps = all(isinstance(p, dict) for p in present)
    named = _first_positions(present, merge_key, keyed_only=True)
    for item in merged:
        if merge_key is not None:
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item if isinstance(item, dict) else {}, merge_key)
            if not present_are_maps:
                raise bad_request(_BAD_SET_ELEMENT_ORDER)
        (in_patch if _probe(item, merge_key) in named else server_only).append(item)
    return in_patch, server_only


def _normalize_order(
    patch_part: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str | None,
) -> list[Any]:
    """normalizeElementOrder: sort each part by its reference order, then interleave them."""
    patch_part = _sort_by(patch_part, patch_order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    server_positions = _first_positions(server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(patch_part):
        left = server_positions.get(_probe(server_only[i], merge_key), -1)
        right = server_positions.get(_probe(patch_part[j], merge_key), -1)
        if left >= 0 and right >= 0 and left < right:
            out.append(server_only[i])
            i += 1
        else:
            out.append(patch_part[j])
            j += 1
    return out + server_only[i:] + patch_part[j:]


def _sort_by(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    if merge_key is not None:
        for item in (*items, *order):
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item if isinstance(item, dict) else {}, merge_key)
    positions = _first_positions(order, merge_key)
    end = len(order)
    return sorted(items, key=lambda item: positions.get(_probe(item, merge_key), end))


# Lookups go through `json_key` (hashable, equal exactly when `json_equal`), so that merging,
# ordering and deduplicating lists stay linear: a patch of thousands of items is one pass, not
# one pass per item.


def _probe(item: Any, merge_key: str | None) -> Hashable:
    """What identifies a list item: its merge-key value, or the whole value in a scalar list."""
    if merge_key is None:
        return json_key(item)
    return json_key(item.get(merge_key) if isinstance(item, dict) else None)


def _first_positions(items: list[Any], merge_key: str | None, keyed_only: bool = False) -> dict[Hashable, int]:
    """Each identity's first index; `keyed_only` skips map items that lack the merge key."""
    positions: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        if keyed_only and merge_key is not None and not (isinstance(item, dict) and merge_key in item):
            continue
        positions.setdefault(_probe(item, merge_key), index)
    return positions


def _dedupe(items: list[Any]) -> list[Any]:
    seen: set[Hashable] = set()
    out: list[Any] = []
    for item in items:
        key = json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _element_kind(*lists: list[Any]) -> str | None:
    """sliceElementType: all elements share one JSON type, and it is not a list."""
    kind: str | None = None
    for items in lists:
        for item in items:
            current = "map" if isinstance(item, dict) else "list" if isinstance(item, list) else go_json_type(item)
            if kind is None:
                kind = current
                if kind == "list":
                    raise StatusError(
                        422, "Invalid", "the server rejected our request due to an error in our request", {}
                    ) from ValueError("lists of lists are not supported")
            elif kind != current:
                raise bad_request(f"list element types are not identical: {go_format(list(lists))}")
    return kind


# --- directive stripping ------------------------------------------------------------------


def _strip(value: Any, in_list: bool = False) -> Any:
    """removeDirectives plus discardNullValuesFromPatch: the stored form of a patch value.

    Maps carrying `$patch` vanish (in lists always; as a field value unless the directive is
    `replace`, whose content is kept); `$retainKeys`, `$setElementOrder/…`,
    `$deleteFromPrimitiveList/…` keys and null members are dropped at any depth.
    """
    if isinstance(value, dict):
        if _DIRECTIVE in value and (in_list or value[_DIRECTIVE] != _REPLACE):
            return _DROP
        out: dict[str, Any] = {}
        for key, member in value.items():
            if member is None or _is_directive_key(key):
                continue
            stripped = _strip(member)
            if stripped is not _DROP:
                out[key] = stripped
        return out
    if isinstance(value, list):
        return [s for s in (_strip(item, True) for item in value) if s is not _DROP]
    return value


def _is_directive_key(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST))


# --- errors -------------------------------------------------------------------------------


def _no_merge_key(item: dict[str, Any], merge_key: str) -> StatusError:
    return bad_request(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")


def _bad_patch_type(directive: Any, item: dict[str, Any]) -> StatusError:
    return bad_request(f"unknown patch type: {go_format(directive)} in map: {go_format(item)}")
