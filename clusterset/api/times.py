"""Kubernetes timestamps (RFC 3339, `Time` and `MicroTime`): parsing and formatting shared by every layer."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC when it names no zone); None when absent or unparsable."""
    return _parse(value) if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=1 << 14)
def _parse(text: str) -> datetime | None:
    """Cached: controllers read the same timestamps (pods' transition times) on every sync."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rfc3339(when: datetime) -> str:
    """A `metav1.Time`: UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_now_text: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """Now as a `metav1.Time`; formatted once a second (every write stamps it, several times)."""
    global _now_text
    second = int(time.time())
    if second != _now_text[0]:
        _now_text = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _now_text[1]


def rfc3339_micro(when: datetime | None = None) -> str:
    """A `metav1.MicroTime` (now, by default): UTC, six fractional digits."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
