"""Label selectors evaluated client-side, so caches filter exactly as the API server would.

Accepts the string grammar of `?labelSelector=` (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and a
`matchLabels`-style mapping. Equality requirements are exposed so a cache can use its label index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(!=|==|=|!|,|\(|\)|[^\s!=,()]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        if self.op in ("!=", "notin"):
            return value is None or value not in self.values
        if self.op == "exists":
            return value is not None
        return value is None  # "!"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def equalities(self) -> list[tuple[str, str]]:
        """(key, value) pairs every match must carry: what a label index can look up."""
        return [(r.key, next(iter(r.values))) for r in self.requirements if r.op == "=" and len(r.values) == 1]

    @property
    def empty(self) -> bool:
        return not self.requirements


EVERYTHING = Selector()


def parse(selector: str | Mapping[str, str] | Selector | None) -> Selector:
    """A Selector from a selector string, a matchLabels mapping, or None (everything).

    Raises ValueError naming the offending part of a malformed string.
    """
    if selector is None:
        return EVERYTHING
    if isinstance(selector, Selector):
        return selector
    if isinstance(selector, Mapping):
        return Selector(tuple(Requirement(k, "=", frozenset([v])) for k, v in sorted(selector.items())))
    tokens = _tokens(selector)
    requirements: list[Requirement] = []
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"label selector {selector!r}: unexpected end")
        pos += 1
        return tokens[pos - 1]

    while pos < len(tokens):
        tok = take()
        if tok == "!":
            requirements.append(Requirement(take(), "!"))
        else:
            key = tok
            nxt = tokens[pos] if pos < len(tokens) else ","
            if nxt == ",":
                requirements.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                pos += 1
                value = tokens[pos] if pos < len(tokens) and tokens[pos] != "," else ""
                if value:
                    pos += 1
                requirements.append(Requirement(key, "!=" if nxt == "!=" else "=", frozenset([value])))
            elif nxt in ("in", "notin"):
                pos += 1
                if take() != "(":
                    raise ValueError(f"label selector {selector!r}: expected '(' after {nxt!r}")
                values: set[str] = set()
                while (tok := take()) != ")":
                    if tok != ",":
                        values.add(tok)
                requirements.append(Requirement(key, nxt, frozenset(values)))
            else:
                raise ValueError(f"label selector {selector!r}: unexpected {nxt!r} after {key!r}")
        if pos < len(tokens) and take() != ",":
            raise ValueError(f"label selector {selector!r}: expected ',' at {tokens[pos - 1]!r}")
    return Selector(tuple(requirements))


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space character
            raise ValueError(f"label selector {text!r}: cannot parse at {text[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def to_string(selector: str | Mapping[str, str] | None) -> str | None:
    """The `?labelSelector=` form of a selector argument (mappings become `k=v,...`)."""
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or None
