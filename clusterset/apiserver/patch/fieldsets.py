"""Field paths and path sets over objects: the FieldsV1 format of `metadata.managedFields`.

Mirrors structured-merge-diff (SMD), which kube-apiserver uses for server-side apply: a path
is a tuple of elements, a set is the set of its *member* paths, and FieldsV1 is the trie that
serialises such a set (`f:`, `k:`, `v:`, `i:` keys, `.` for a member that also has children).
Which nodes are leaves, keyed lists, sets or atomic values comes from `FieldTypes`
(patch/typeinfo.py); see shared/specs/patch-and-apply.md §4.2-§4.3.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from clusterset.apiserver.patch.typeinfo import FieldType, FieldTypes, SchemaFieldTypes

# ("f", field name) | ("k", canonical JSON object of the key fields) | ("v", canonical JSON value)
# | ("i", list index).  Keys and values are stored as canonical JSON so elements hash and compare.
PathElement = tuple[str, str | int]
Path = tuple[PathElement, ...]
NodeKind = Literal["map", "atomic", "assoc", "set", "scalar"]

class _Missing:
    """Marks an absent value (distinct from JSON null) in comparisons and merges."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FieldPathError(ValueError):
    """A value that does not fit its schema (e.g. a keyed list item without its key)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path_string(path)}: {message}" if path else message)
        self.path = path
        self.detail = message


# --------------------------------------------------------------------------- elements


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys, as SMD writes `k:`/`v:` elements (integral floats as ints). orjson writes
    what the standard encoder would (both leave non-ASCII alone and sort keys by code point) at C speed, but for
    what only the standard encoder takes (integers beyond 64 bits) or writes its own way (floats' exponents)."""
    value = _normalize_numbers(value)
    if not _has_float(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _normalize_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_numbers(v) for v in value]
    return value


def field_element(name: str) -> PathElement:
    return ("f", name)


def key_element(keys: dict[str, Any]) -> PathElement:
    return ("k", canonical_json(keys))


def value_element(value: Any) -> PathElement:
    return ("v", canonical_json(value))


def index_element(index: int) -> PathElement:
    return ("i", index)


def element_key(pe: PathElement) -> str:
    """The FieldsV1 object key of an element: `f:name`, `k:{...}`, `v:...`, `i:3`."""
    return f"{pe[0]}:{pe[1]}"


def parse_element(key: str) -> PathElement | None:
    """Parses a FieldsV1 key; None for an unknown prefix (SMD ignores those), ValueError if malformed."""
    prefix, sep, rest = key.partition(":")
    if not sep:
        return None
    if prefix == "f":
        return ("f", rest)
    if prefix == "k":
        keys = json.loads(rest)
        if not isinstance(keys, dict) or not keys:
            raise ValueError(f"invalid key element {key!r}")
        return ("k", canonical_json(keys))
    if prefix == "v":
        return ("v", canonical_json(json.loads(rest)))
    if prefix == "i":
        try:
            return ("i", int(rest))
        except ValueError as exc:
            raise ValueError(f"invalid index element {key!r}") from exc
    return None


def go_string(value: Any) -> str:
    """SMD's value.ToString: how keys and values print inside conflict paths."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={go_string(value[k])}" for k in sorted(value))
    return str(value)


def element_string(pe: PathElement) -> str:
    kind, body = pe
    if kind == "f":
        return f".{body}"
    if kind == "k":
        keys = json.loads(str(body))
        return "[" + ",".join(f"{k}={go_string(keys[k])}" for k in sorted(keys)) + "]"
    if kind == "v":
        return f"[={go_string(json.loads(str(body)))}]"
    return f"[{body}]"


def path_string(path: Path) -> str:
    """`.spec.template.spec.containers[name="web"].image`: how kube-apiserver prints a path."""
    return "".join(element_string(pe) for pe in path)


# --------------------------------------------------------------------------- ordering


_VALUE_RANK = {"number": 0, "string": 1, "bool": 2, "list": 3, "map": 4, "null": 5}


def _value_rank(v: Any) -> int:
    if isinstance(v, bool):
        return _VALUE_RANK["bool"]
    if isinstance(v, int | float):
        return _VALUE_RANK["number"]
    if isinstance(v, str):
        return _VALUE_RANK["string"]
    if isinstance(v, list):
        return _VALUE_RANK["list"]
    if isinstance(v, dict):
        return _VALUE_RANK["map"]
    return _VALUE_RANK["null"]


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def compare_values(a: Any, b: Any) -> int:
    """SMD's total order on values: numbers < strings < bools < lists < maps < null."""
    ra, rb = _value_rank(a), _value_rank(b)
    if ra != rb:
        return _cmp(ra, rb)
    if isinstance(a, list):
        for x, y in zip(a, b, strict=False):
            c = compare_values(x, y)
            if c:
                return c
        return _cmp(len(a), len(b))
    if isinstance(a, dict):
        return _compare_field_lists(a, b)
    if a is None:
        return 0
    return _cmp(a, b)


def _compare_field_lists(a: dict[str, Any], b: dict[str, Any]) -> int:
    ka, kb = sorted(a), sorted(b)
    for x, y in zip(ka, kb, strict=False):
        c = _cmp(x, y) or compare_values(a[x], b[y])
        if c:
            return c
    return _cmp(len(ka), len(kb))


_KIND_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def compare_elements(a: PathElement, b: PathElement) -> int:
    """SMD's PathElement order: fields, then keys, then values, then indexes."""
    if a[0] != b[0]:
        return _cmp(_KIND_RANK.get(a[0], 9), _KIND_RANK.get(b[0], 9))
    if a[0] == "k":
        return _compare_field_lists(json.loads(str(a[1])), json.loads(str(b[1])))
    if a[0] == "v":
        return compare_values(json.loads(str(a[1])), json.loads(str(b[1])))
    return _cmp(a[1], b[1])


def compare_paths(a: Path, b: Path) -> int:
    for x, y in zip(a, b, strict=False):
        c = compare_elements(x, y)
        if c:
            return c
    return _cmp(len(a), len(b))


element_sort_key = functools.cmp_to_key(compare_elements)
path_sort_key = functools.cmp_to_key(compare_paths)


def sorted_paths(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=path_sort_key)


# --------------------------------------------------------------------------- FieldsV1


def fields_to_set(fields_v1: Any) -> set[Path]:
    """Decodes a FieldsV1 trie into its member paths; ValueError if it is not valid FieldsV1."""
    if fields_v1 is None:
        return set()
    if not isinstance(fields_v1, dict):
        raise ValueError("fieldsV1 must be an object")
    out: set[Path] = set()
    _read(fields_v1, (), out)
    return out


def _read(node: dict[str, Any], path: Path, out: set[Path]) -> bool:
    """Adds the members under `node`; returns whether `node` itself is a member."""
    member = False
    has_children = False
    for key, child in node.items():
        if key == ".":
            member = True
            continue
        pe = parse_element(key)
        if pe is None:
            continue
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1 value at {key!r} must be an object")
        child_path = (*path, pe)
        if _read(child, child_path, out):
            out.add(child_path)
        has_children = True
    return member or not has_children


@dataclass
class _Trie:
    member: bool = False
    children: dict[PathElement, _Trie] = field(default_factory=dict)


def set_to_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """Encodes member paths as a FieldsV1 trie, children ordered f:, k:, v:, i: like SMD."""
    root = _Trie()
    for path in paths:
        node = root
        for pe in path:
            child = node.children.get(pe)
            if child is None:  # not setdefault: that would build a node for every element of every path
                child = node.children[pe] = _Trie()
            node = child
        if path:
            node.member = True
    return _emit(root, include_self=False)


def _emit(node: _Trie, include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node.children:
        out["."] = {}
    for pe in _ordered(node.children):
        child = node.children[pe]
        out[element_key(pe)] = _emit(child, include_self=child.member)
    return out


def _ordered(elements: Iterable[PathElement]) -> list[PathElement]:
    """`elements` in compare_elements' order. Fields alone (the common case: a map's keys) order as their
    names do, which a key sorts at C speed; a hundred thousand keys otherwise cost seconds of comparator calls."""
    elements = list(elements)
    if all(pe[0] == "f" for pe in elements):
        return sorted(elements, key=lambda pe: pe[1])
    return sorted(elements, key=element_sort_key)


# --------------------------------------------------------------------------- typed walks


def node_kind(value: Any, ft: FieldType | None) -> NodeKind:
    """How a value merges: granular map/struct, atomic, keyed list, set, or scalar."""
    if isinstance(value, dict):
        return "atomic" if ft is not None and ft.ssa == "atomic" else "map"
    if isinstance(value, list):
        if ft is not None and ft.ssa == "map" and ft.keys:
            return "assoc"
        if ft is not None and ft.ssa == "set":
            return "set"
        return "atomic"
    return "scalar"


def lookup(types: FieldTypes, tpath: tuple[str, ...]) -> FieldType | None:
    return types.lookup(tpath) if tpath else None


def item_element(item: Any, ft: FieldType, index: int, path: Path, strict: bool) -> PathElement:
    """The element naming one item of a keyed list or set (key fields defaulted from the schema).

    Strict (an apply body): errors as SMD reports them. Lenient (stored objects): falls back to
    the index or to the key fields present, so a legacy object never breaks a write.
    """
    if ft.ssa == "set":
        return value_element(item)
    if not isinstance(item, dict):
        if strict:
            raise FieldPathError(path, f"element {index}: expected map, got {go_string(item)}")
        return index_element(index)
    keys: dict[str, Any] = {}
    for name in ft.keys:
        if name in item:
            keys[name] = item[name]
        elif name in ft.key_defaults:
            keys[name] = ft.key_defaults[name]
        elif strict:
            raise FieldPathError(
                path,
                f'element {index}: associative list with keys has an element that omits key field "{name}" '
                "(and doesn't have default value)",
            )
    return key_element(keys) if keys else index_element(index)


def index_items(
    items: list[Any], ft: FieldType, path: Path, strict: bool
) -> tuple[list[PathElement], dict[PathElement, list[Any]]]:
    """Elements of a keyed list or set in order (first occurrence) and the items per element."""
    order: list[PathElement] = []
    by_pe: dict[PathElement, list[Any]] = {}
    for i, item in enumerate(items):
        pe = item_element(item, ft, i, path, strict)
        if pe in by_pe:
            if strict:
                raise FieldPathError(path, f"duplicate entries for key {element_string(pe)}")
            by_pe[pe].append(item)
            continue
        order.append(pe)
        by_pe[pe] = [item]
    return order, by_pe


def to_field_set(obj: dict[str, Any], types: FieldTypes, *, strict: bool = False) -> set[Path]:
    """SMD's ToFieldSet: every leaf, atomic value, list item, map entry and null/empty struct."""
    out: set[Path] = set()
    _collect_map(obj, (), (), types, out, strict)
    return out


def _collect(value: Any, path: Path, tpath: tuple[str, ...], ft: FieldType | None,
             types: FieldTypes, out: set[Path], strict: bool) -> None:
    kind = node_kind(value, ft)
    if kind in ("scalar", "atomic"):
        out.add(path)
    elif kind == "map":
        _collect_map(value, path, tpath, types, out, strict)
    else:
        assert ft is not None
        order, by_pe = index_items(value, ft, path, strict)
        for pe in order:
            item_path = (*path, pe)
            out.add(item_path)
            item = by_pe[pe][0]
            if kind == "assoc" and isinstance(item, dict):
                _collect_map(item, item_path, tpath, types, out, strict)


def _collect_map(value: dict[str, Any], path: Path, tpath: tuple[str, ...], types: FieldTypes,
                 out: set[Path], strict: bool) -> None:
    for key, child in value.items():
        child_path = (*path, field_element(key))
        child_tpath = (*tpath, key)
        _collect(child, child_path, child_tpath, lookup(types, child_tpath), types, out, strict)
        if child is None or child == {} or (isinstance(child, dict) and _is_map_entry(types, tpath, key)):
            out.add(child_path)


def _is_map_entry(types: FieldTypes, parent: tuple[str, ...], key: str) -> bool:
    """True for a key of a map (additionalProperties), False for a declared struct field.

    SMD makes map entries members even when they hold objects (`.` in the trie); struct fields
    are members only as leaves. Only CR schemas tell the two apart; built-in maps hold scalars.
    """
    if not isinstance(types, SchemaFieldTypes) or not parent or parent[0] == "metadata":
        return False
    node = _schema_node(types.schema, parent)
    if node is None:
        return True
    props = node.get("properties")
    return not (isinstance(props, dict) and key in props)


def _unwrap_arrays(node: Any) -> Any:
    while isinstance(node, dict) and node.get("type") == "array":
        node = node.get("items")
    return node


def _schema_node(schema: dict[str, Any], tpath: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = schema
    for name in tpath:
        node = _unwrap_arrays(node)
        if not isinstance(node, dict):
            return None
        props = node.get("properties")
        node = props[name] if isinstance(props, dict) and name in props else node.get("additionalProperties")
    node = _unwrap_arrays(node)
    return node if isinstance(node, dict) else None


@dataclass
class Comparison:
    """Paths added, modified and removed going from one object to another (SMD Compare)."""

    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def changed(self) -> set[Path]:
        return self.added | self.modified

    def filtered(self, keep: Callable[[Path], bool]) -> Comparison:
        return Comparison(
            {p for p in self.added if keep(p)},
            {p for p in self.modified if keep(p)},
            {p for p in self.removed if keep(p)},
        )


def json_equal(a: Any, b: Any) -> bool:
    """Deep JSON equality that, unlike ==, keeps true and 1 apart."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


Trie = dict[PathElement, "Trie"]


def compare_objects(lhs: dict[str, Any], rhs: dict[str, Any], types: FieldTypes,
                    within: Iterable[Path] | None = None) -> Comparison:
    """Leaves added/modified/removed, plus non-leaf nodes (maps, lists, items) created or deleted. `within`: only
    these paths matter to the caller, so only they and their ancestors are walked (what an apply's diff is for,
    the fields other managers own, is often a small part of an object)."""
    result = Comparison()
    _compare(lhs, rhs, (), (), None, types, result, None if within is None else _trie(within))
    return result


def _trie(paths: Iterable[Path]) -> Trie:
    root: Trie = {}
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
    return root


def _is_empty_container(value: Any) -> bool:
    return value is MISSING or value is None or value == {} or value == []


def _same_json(a: Any, b: Any) -> bool:
    """Identical JSON text means JSON-equal (true and 1 stay apart), at C speed; a differing key order only
    costs the walk it would have cost anyway."""
    try:
        return bool(orjson.dumps(a) == orjson.dumps(b))
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits: compare the long way
        return False


def _compare(lhs: Any, rhs: Any, path: Path, tpath: tuple[str, ...], ft: FieldType | None,
             types: FieldTypes, out: Comparison, within: Trie | None = None) -> None:
    lkind = None if lhs is MISSING else node_kind(lhs, ft)
    rkind = None if rhs is MISSING else node_kind(rhs, ft)
    # null against a granular container behaves like an empty one of the same kind (SMD).
    if lhs is None and rkind in ("map", "assoc", "set"):
        lhs, lkind = ({} if rkind == "map" else []), rkind
    if rhs is None and lkind in ("map", "assoc", "set"):
        rhs, rkind = ({} if lkind == "map" else []), lkind
    kind = rkind if lkind is None else lkind
    leaf = (
        kind not in ("map", "assoc", "set")
        or (lkind is not None and rkind is not None and lkind != rkind)
        or (_is_empty_container(lhs) and _is_empty_container(rhs))
    )
    if leaf:
        if lhs is MISSING:
            out.added.add(path)
        elif rhs is MISSING:
            out.removed.add(path)
        elif not json_equal(lhs, rhs):
            out.modified.add(path)
        return
    if lhs is not MISSING and rhs is not MISSING and _same_json(lhs, rhs):
        return  # an unchanged subtree (most of an object, on most writes) has nothing to report
    if kind == "map":
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        for key in [*left, *(k for k in right if k not in left)]:
            pe = field_element(key)
            below = None if within is None else within.get(pe)
            if within is not None and below is None:
                continue
            child_tpath = (*tpath, key)
            _compare(left.get(key, MISSING), right.get(key, MISSING), (*path, pe), child_tpath,
                     lookup(types, child_tpath), types, out, below)
    else:
        assert ft is not None
        lorder, litems = index_items(lhs if isinstance(lhs, list) else [], ft, path, strict=False)
        rorder, ritems = index_items(rhs if isinstance(rhs, list) else [], ft, path, strict=False)
        for pe in [*lorder, *(p for p in rorder if p not in litems)]:
            below = None if within is None else within.get(pe)
            if within is not None and below is None:
                continue
            item_path = (*path, pe)
            lvals, rvals = litems.get(pe), ritems.get(pe)
            if (lvals and len(lvals) > 1) or (rvals and len(rvals) > 1):
                if lvals is None:
                    out.added.add(item_path)
                elif rvals is None:
                    out.removed.add(item_path)
                elif not json_equal(lvals, rvals):
                    out.modified.add(item_path)
                continue
            lval = lvals[0] if lvals else MISSING
            rval = rvals[0] if rvals else MISSING
            if kind == "set":
                _compare(lval, rval, item_path, tpath, None, types, out, below)
            else:
                _compare_item(lval, rval, item_path, tpath, types, out, below)
    if path:
        if lhs is MISSING:
            out.added.add(path)
        elif rhs is MISSING:
            out.removed.add(path)


def _compare_item(lhs: Any, rhs: Any, path: Path, tpath: tuple[str, ...], types: FieldTypes,
                  out: Comparison, within: Trie | None) -> None:
    """A keyed-list item is a granular struct; one that is not a map compares as a leaf."""
    if (lhs is MISSING or isinstance(lhs, dict)) and (rhs is MISSING or isinstance(rhs, dict)):
        _compare(lhs, rhs, path, tpath, None, types, out, within)
        return
    _compare(lhs, rhs, path, (), FieldType(), types, out)
