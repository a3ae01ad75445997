"""Field selectors with kube-apiserver's grammar and error messages; label selectors (`clusterset.api.labels`)
as the server answers a malformed one: a 400."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
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
        compiled = self._compiled
        if compiled is None:
            return False
        for name, (wanted, refused) in compiled.items():
            have = fields.get(name, "")
            if (wanted is not None and have != wanted) or have in refused:
                return False
        return True

    @cached_property
    def _compiled(self) -> dict[str, tuple[str | None, frozenset[str]]] | None:
        """Per field: the value it must have (None: any) and the values it may not have; None when nothing can
        match (a field required to equal two values). Matching then costs one lookup per distinct field (a kind
        selects on a few) however many terms the selector has."""
        wanted: dict[str, str] = {}
        refused: dict[str, set[str]] = {}
        for r in self.requirements:
            if r.negate:
                refused.setdefault(r.field, set()).add(r.value)
            elif wanted.setdefault(r.field, r.value) != r.value:
                return None
        return {name: (wanted.get(name), frozenset(refused.get(name, ()))) for name in wanted.keys() | refused.keys()}

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name when the selector pins `metadata.name=x` (watches by kubectl wait/delete)."""
        for r in self.requirements:
            if r.field == "metadata.name" and not r.negate:
                return r.value
        return None


def parse_field_selector(text: str | None) -> FieldSelector:
    """`?fieldSelector=` as apimachinery's fields.ParseSelector reads it: comma-separated terms (`\\,` keeps a
    comma), each split at its first `!=`, `==` or `=` (the field is taken literally), the value unescaped
    (`\\\\`, `\\,`, `\\=`; a bare `,` or `=` is an error). Errors are 400s in its words."""
    if not text:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):  # sorted as upstream, so the same term is reported first
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = split
        reqs.append(FieldRequirement(field, _unescape_value(value), op == "!="))
    return FieldSelector(tuple(reqs))


def _split_terms(text: str) -> list[str]:
    if "\\" not in text:
        return text.split(",")
    terms: list[str] = []
    start = 0
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


_TERM = re.compile(r"(.*?)(!=|==|=)(.*)", re.DOTALL)
_SPECIAL = re.compile(r"[\\,=]")


def _split_term(term: str) -> tuple[str, str, str] | None:
    match = _TERM.match(term)
    return (match[1], match[2], match[3]) if match else None


def _unescape_value(value: str) -> str:
    if not _SPECIAL.search(value):
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # fmt's %v of a rune is its code point: upstream says "61" for "="
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


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
