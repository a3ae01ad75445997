"""Ports a DNS server can keep across restarts: below the system's ephemeral range.

A server started on "any free port" got one from the ephemeral range, the range outgoing connections and UDP
clients take their local ports from: by the next start (the port remembered in fleet.json) one of them may hold it,
and the member's DNS address changed. Below that range only a listener binds, and a restart finds its port free.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default, and where the file cannot be read
FLOOR = 20000  # below: the usual ports of well-known and registered services


def ephemeral_low(path: Path = EPHEMERAL_RANGE) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


class LastingPorts:
    """Candidates in [FLOOR, the ephemeral range): from just after the last one handed out, so that one process's
    servers get neighbouring ports, and from a random place the first time, so that two processes started together
    seldom try the same ones. Whether a candidate is free is the binder's to find out."""

    def __init__(self, low: int = FLOOR, high: int | None = None) -> None:
        self.low = low
        self.high = (ephemeral_low() if high is None else high) - 1
        self._next: int | None = None

    def candidates(self, tries: int) -> Iterator[int]:
        if self.high < self.low:  # the ephemeral range starts below the floor: nothing lasts
            return
        for _ in range(tries):
            if self._next is None or not self.low <= self._next <= self.high:
                self._next = random.randint(self.low, self.high)
            port, self._next = self._next, self._next + 1
            yield port
