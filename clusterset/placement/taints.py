"""A cluster's taints: a JSON list `[{key, value?, effect, timeAdded}]` in its ClusterProfile's annotation
`clusterset.io/taints` (the profile's spec and status are the standard's). Pure: parsing, `kubectl taint`'s
argument grammar, and editing the list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clusterset.api.labels import key_problem, value_problem
from clusterset.api.placement import NO_SELECT, PREFER_NO_SELECT, TAINTS_ANNOTATION

EFFECTS = (NO_SELECT, PREFER_NO_SELECT)


class TaintError(ValueError):
    """A taint argument or annotation that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""
    time_added: str = ""

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key}
        if self.value:
            out["value"] = self.value
        out["effect"] = self.effect
        if self.time_added:
            out["timeAdded"] = self.time_added
        return out


def _checked(key: str, value: str, effect: str, spec: str) -> None:
    problem = key_problem(key) if key else "a taint needs a key"
    if problem is None and value:
        problem = value_problem(value)
    if problem is None and effect not in EFFECTS:
        problem = f"unsupported taint effect {effect!r} (use {' or '.join(EFFECTS)})"
    if problem is not None:
        raise TaintError(f"invalid taint spec: {spec}, {problem}")


def parse_annotation(text: str | None) -> tuple[Taint, ...]:
    """The taints an annotation holds (none when absent); a malformed one raises TaintError."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise TaintError(f"annotation {TAINTS_ANNOTATION} is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise TaintError(f"annotation {TAINTS_ANNOTATION} must be a JSON list of {{key, value, effect}}")
    taints = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(isinstance(item.get(f, ""), str) for f in ("key", "value", "effect")):
            raise TaintError(f"annotation {TAINTS_ANNOTATION}[{i}] must be an object of strings key, value, effect")
        taint = Taint(item.get("key", ""), item.get("effect", ""), item.get("value", ""),
                      str(item.get("timeAdded", "")))
        try:
            _checked(taint.key, taint.value, taint.effect, json.dumps(item))
        except TaintError as exc:
            raise TaintError(f"annotation {TAINTS_ANNOTATION}[{i}]: {exc}") from None
        taints.append(taint)
    return tuple(taints)


def format_annotation(taints: tuple[Taint, ...]) -> str:
    return json.dumps([t.as_json() for t in taints], separators=(",", ":"))


@dataclass(frozen=True)
class TaintChange:
    """One argument of `clusterset taint`: add (or replace) `KEY[=VALUE]:EFFECT`, remove `KEY:EFFECT-` or `KEY-`."""

    key: str
    effect: str  # "" with remove: every effect of the key
    value: str
    remove: bool


def parse_change(spec: str) -> TaintChange:
    """`kubectl taint`'s grammar."""
    if spec.endswith("-"):
        body = spec[:-1]
        key, _, effect = body.partition(":")
        if not key or "=" in key:
            raise TaintError(f"invalid taint spec: {spec}, a removal is KEY- or KEY:EFFECT-")
        if effect:
            _checked(key, "", effect, spec)
        elif (problem := key_problem(key)) is not None:
            raise TaintError(f"invalid taint spec: {spec}, {problem}")
        return TaintChange(key, effect, "", True)
    if ":" not in spec:
        raise TaintError(f"invalid taint spec: {spec}, it must be KEY[=VALUE]:EFFECT, KEY:EFFECT- or KEY-")
    head, _, effect = spec.rpartition(":")
    key, _, value = head.partition("=")
    _checked(key, value, effect, spec)
    return TaintChange(key, effect, value, False)


def apply_changes(taints: tuple[Taint, ...], changes: list[TaintChange], now: str) -> tuple[Taint, ...]:
    """The taints after `changes`, in order: an addition replaces the taint of the same key and effect; a removal
    that matches nothing raises TaintError (kubectl's `taint "KEY:EFFECT" not found`)."""
    out = list(taints)
    for change in changes:
        if change.remove:
            kept = [t for t in out if not (t.key == change.key and (not change.effect or t.effect == change.effect))]
            if len(kept) == len(out):
                what = f"{change.key}:{change.effect}" if change.effect else change.key
                raise TaintError(f'taint "{what}" not found')
            out = kept
        else:
            new = Taint(change.key, change.effect, change.value, now)
            at = next((i for i, t in enumerate(out) if t.key == change.key and t.effect == change.effect), None)
            if at is None:
                out.append(new)
            else:
                out[at] = new
    return tuple(out)
