"""Field selectors with kube-apiserver's grammar and error messages; label selectors (`clusterset.api.labels`)
as the server answers a malformed one: a 400."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterset.api.labels import Selector as LabelSelector
from clusterset.api.labels import SelectorError
from clusterset.api.labels import from_object as _from_object
from clusterset.api.labels import parse as _parse
from clusterset.apiserver.meta.errors import bad_request

__all__ = ["LabelSelector", "label_selector_from_object", "parse_label_selector"]


def parse_label_selector(text: str | None) -> LabelSelector:
    """`?labelSelector=`; a bad selector is a 400 as kube-apiserver answers it."""
    try:
        return _parse(text)
    except SelectorError as exc:
        raise bad_request(str(exc)) from exc


def label_selector_from_object(selector: Mapping[str, Any]) -> LabelSelector:
    """A metav1.LabelSelector (a workload's, an aggregation rule's); raises SelectorError (a ValueError)."""
    return _from_object(selector)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            have = fields.get(r.field, "")
            if (have == r.value) == r.negate:
                return False
        return True

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name when the selector pins `metadata.name=x` (watches by kubectl wait/delete)."""
        for r in self.requirements:
            if r.field == "metadata.name" and not r.negate:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            cur.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    it = iter(text)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            if nxt not in ("\\", ",", "="):
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{nxt}")
            out.append(nxt)
        else:
            out.append(ch)
    return "".join(out)


def parse_field_selector(text: str | None) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        if not part:
            continue
        for op, negate in (("!=", True), ("==", False), ("=", False)):
            idx = _find_unescaped(part, op)
            if idx >= 0:
                reqs.append(FieldRequirement(_unescape(part[:idx]).strip(), _unescape(part[idx + len(op):]), negate))
                break
        else:
            raise bad_request(f"invalid field selector: '{part}' is not a valid field selector")
    return FieldSelector(tuple(reqs))


def _find_unescaped(text: str, op: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(op, i):
            return i
        i += 1
    return -1


FieldExtractor = Callable[[dict[str, Any]], dict[str, str]]


def metadata_fields(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}


def check_field_selector(selector: FieldSelector, supported: set[str], builtin: bool) -> None:
    """Unknown fields get the message each kind of resource gives (CR vs built-in wording)."""
    for r in selector.requirements:
        if r.field in supported:
            continue
        if builtin:
            raise bad_request(f"field label not supported: {r.field}")
        raise bad_request(
            f'"{r.field}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )
