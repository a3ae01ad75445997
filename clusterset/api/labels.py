"""Label selectors with kube-apiserver's grammar and error messages, for the server and its clients alike.

The string form of `?labelSelector=` (`a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3`), a metav1.LabelSelector
object (`matchLabels`, `matchExpressions`), or a `matchLabels`-style mapping. A cache filters exactly as the
server lists, and equality requirements are exposed so a cache can use its label index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def key_problem(key: str) -> str | None:
    """Why `key` is not a qualified name, or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )
    return None


def value_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if not has or value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return self._compiled.matches(labels or {})

    def prepared(self) -> Selector:
        """This selector with its matcher built now (milliseconds per thousand terms, so a caller may do it
        off the event loop); returns self."""
        _ = self._compiled
        return self

    @cached_property
    def _compiled(self) -> _Compiled:
        return _Compiled(self.requirements)

    def equalities(self) -> list[tuple[str, str]]:
        """(key, value) pairs every match must carry: what a label index can look up."""
        return [(r.key, r.values[0]) for r in self.requirements if r.op == "=" and len(r.values) == 1]

    @property
    def empty(self) -> bool:
        return not self.requirements


class _KeyRule:
    """Every requirement on one key, merged: what a present label's value must satisfy."""

    __slots__ = ("above", "absent", "allowed", "below", "refused")

    def __init__(self) -> None:
        self.absent = False  # `!k`: any value fails
        self.allowed: set[str] | None = None  # `=`, `in`: the intersection of their values
        self.refused: set[str] = set()  # `!=`, `notin`: the union of theirs
        self.above: int | None = None  # `>`: the largest bound
        self.below: int | None = None  # `<`: the smallest

    def accepts(self, value: str) -> bool:
        if self.absent or (self.allowed is not None and value not in self.allowed) or value in self.refused:
            return False
        if self.above is None and self.below is None:
            return True
        try:
            number = int(value)
        except ValueError:
            return False
        return (self.above is None or number > self.above) and (self.below is None or number < self.below)


class _Compiled:
    """A selector merged per key, so that matching costs O(labels of the object), however long the selector:
    a request may send one of a megabyte (thousands of terms), and a list tests it against every object."""

    __slots__ = ("present", "rules")

    def __init__(self, requirements: tuple[Requirement, ...]) -> None:
        self.rules: dict[str, _KeyRule] = {}
        present: dict[str, None] = {}  # keys that must be there, in order, each once
        for r in requirements:
            rule = self.rules.setdefault(r.key, _KeyRule())
            if r.op in ("=", "in"):
                rule.allowed = set(r.values) if rule.allowed is None else rule.allowed & set(r.values)
            elif r.op in ("!=", "notin"):
                rule.refused.update(r.values)
            elif r.op == "!":
                rule.absent = True
                continue
            elif r.op == "gt":
                bound = int(r.values[0])
                rule.above = bound if rule.above is None else max(rule.above, bound)
            elif r.op == "lt":
                bound = int(r.values[0])
                rule.below = bound if rule.below is None else min(rule.below, bound)
            if r.op not in ("!=", "notin"):
                present[r.key] = None
        self.present = tuple(present)

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Each key found is a distinct label, so this loop runs at most len(labels) + 1 times.
        for key in self.present:
            if key not in labels:
                return False
        rules = self.rules
        for key, value in labels.items():
            rule = rules.get(key)
            if rule is not None and not rule.accepts(value):
                return False
        return True


EVERYTHING = Selector()


_TOKEN = re.compile(r"\s*(!=|==|=|!|,|\(|\)|>|<|[^\s!=,()<>]+)")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)  # every character but trailing spaces belongs to a token


class SelectorError(ValueError):
    """A selector that does not parse, in kube-apiserver's words (the server answers it with a 400)."""


def _parse_error(text: str, why: str) -> SelectorError:
    return SelectorError(f"unable to parse requirement: {why}")


def parse(text: str | None) -> Selector:
    """Parses `a=b,c in (d,e),!f,g>3`; raises SelectorError."""
    if not text or not text.strip():
        return EVERYTHING
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def check_key(key: str) -> None:
        problem = key_problem(key)
        if problem:
            raise _parse_error(text, f'invalid label key "{key}": {problem}')

    def check_value(value: str) -> None:
        problem = value_problem(value)
        if problem:
            raise _parse_error(text, f'invalid label value: "{value}": at key: : {problem}')

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            if i + 1 >= len(toks):
                raise _parse_error(text, "found '', expected: identifier")
            check_key(toks[i + 1])
            reqs.append(Requirement(toks[i + 1], "!"))
            i += 2
        else:
            if tok in ("=", "==", "!=", ",", "(", ")", "<", ">"):
                raise _parse_error(text, f"found '{tok}', expected: !, identifier, or 'end of string'")
            key = tok
            check_key(key)
            nxt = toks[i + 1] if i + 1 < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "==", "!="):
                value = toks[i + 2] if i + 2 < len(toks) and toks[i + 2] not in (",",) else ""
                if value in ("=", "==", "!=", "(", ")", "!", "<", ">"):
                    raise _parse_error(text, f"found '{value}', expected: identifier")
                check_value(value)
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
                i += 3 if value else 2
            elif nxt in ("in", "notin"):
                if i + 2 >= len(toks) or toks[i + 2] != "(":
                    raise _parse_error(text, "found '', expected: '('")
                j = i + 3
                values: list[str] = []
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        check_value(toks[j])
                        values.append(toks[j])
                    j += 1
                if j >= len(toks):
                    raise _parse_error(text, "found '', expected: ')'")
                reqs.append(Requirement(key, nxt, tuple(values)))
                i = j + 1
            elif nxt in (">", "<"):
                value = toks[i + 2] if i + 2 < len(toks) else ""
                if not re.fullmatch(r"-?\d+", value):
                    raise _parse_error(text, f"for 'Gt', 'Lt' operators, the value must be an integer: {value}")
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
                i += 3
            else:
                raise _parse_error(text, f"found '{nxt}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise _parse_error(text, f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
    return Selector(tuple(reqs))


def from_object(selector: Mapping[str, Any]) -> Selector:
    """A metav1.LabelSelector (`matchLabels`, `matchExpressions`); raises SelectorError."""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        values = ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise SelectorError(f"{op!r} is not a valid label selector operator")
    return parse(",".join(parts))


def selector_of(selector: str | Mapping[str, str] | Selector | None) -> Selector:
    """A Selector from a selector string, a matchLabels mapping, a Selector, or None (everything)."""
    if selector is None:
        return EVERYTHING
    if isinstance(selector, Selector):
        return selector
    if isinstance(selector, Mapping):
        return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(selector.items())))
    return parse(selector)


def to_string(selector: str | Mapping[str, str] | None) -> str | None:
    """The `?labelSelector=` form of a selector argument (mappings become `k=v,...`)."""
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or None
