"""Label and field selectors with kube-apiserver's grammar and error messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterset.apiserver.meta.errors import StatusError, bad_request

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_key_problem(key: str) -> str | None:
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


def label_value_problem(value: str) -> str | None:
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
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_TOKEN = re.compile(r"\s*(!=|==|=|!|,|\(|\)|>|<|[^\s!=,()<>]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            break
        out.append(m.group(1))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return out


def _parse_error(text: str, why: str) -> StatusError:
    return bad_request(f"unable to parse requirement: {why}")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parses `a=b,c in (d,e),!f`; a bad selector is a 400 as kube-apiserver answers it."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def check_key(key: str) -> None:
        problem = label_key_problem(key)
        if problem:
            raise _parse_error(text, f'invalid label key "{key}": {problem}')

    def check_value(value: str) -> None:
        problem = label_value_problem(value)
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
    return LabelSelector(tuple(reqs))


def label_selector_from_object(selector: dict[str, Any]) -> LabelSelector:
    """metav1.LabelSelector → our LabelSelector (for controllers and validation)."""
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
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return parse_label_selector(",".join(parts))


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
