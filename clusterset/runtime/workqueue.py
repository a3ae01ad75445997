"""A controller's work queue: client-go's workqueue semantics on asyncio.

Why these rules: reconcilers are level-based, so an item only says "look at this key again".
- A key added while it is already queued is one entry (a burst of 1,000 updates costs one reconcile).
- A key added while a worker holds it is queued again once the worker calls `done()`, so the
  latest state is always seen and no two workers ever hold the same key.
- Failures are retried with a per-key exponential backoff (capped) combined with an overall token
  bucket, so one broken object backs off alone while a mass failure cannot hammer the API server;
  `forget()` resets a key's backoff after a success.
- A key added with `add_later()` waits until no key added with `add()` is queued (controller-runtime's priority
  queue, with two priorities): work that can wait, such as a status after the data plane, never delays work that
  cannot. `add()` of a key waiting there moves it up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """`get()` on a queue that was shut down and has nothing left to hand out."""


class QueueMetrics(Protocol):
    """What a queue reports; `clusterset.runtime.metrics` implements it with Prometheus series."""

    def added(self) -> None: ...
    def depth(self, value: int) -> None: ...
    def retried(self) -> None: ...
    def waited(self, seconds: float) -> None: ...


@dataclass
class RateLimiter:
    """Per-key exponential backoff (`base_delay * 2**failures`, capped at `max_delay`) combined with an
    overall token bucket (`qps`, `burst`): the delay is the larger of the two, as client-go's
    DefaultControllerRateLimiter."""

    base_delay: float = 0.005
    max_delay: float = 300.0
    qps: float = 10.0
    burst: int = 100
    _failures: dict[Hashable, int] = field(default_factory=dict, repr=False)
    _tokens: float | None = field(default=None, repr=False)
    _last: float = field(default=0.0, repr=False)

    def when(self, item: Hashable) -> float:
        """Seconds to wait before retrying `item`; counts one more failure."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        backoff = min(self.max_delay, self.base_delay * 2.0 ** min(failures, 64))
        return max(backoff, self._bucket_delay())

    def _bucket_delay(self) -> float:
        if self.qps <= 0:
            return 0.0
        now = time.monotonic()
        if self._tokens is None:  # first use: a full bucket
            self._tokens, self._last = float(self.burst), now
        tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        tokens -= 1.0  # reserve a token, possibly in the future (golang.org/x/time/rate Reserve)
        self._tokens = tokens
        return 0.0 if tokens >= 0 else -tokens / self.qps

    def failures(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)


class WorkQueue(Generic[T]):
    """Coalescing, delaying, rate-limited queue of keys; see the module docstring for the rules.

    Must be used from one event loop. `add()` is synchronous so event handlers can call it directly.
    """

    def __init__(self, rate_limiter: RateLimiter | None = None, metrics: QueueMetrics | None = None) -> None:
        self.rate_limiter = rate_limiter or RateLimiter()
        self._metrics = metrics
        self._queue: deque[T] = deque()
        self._later: deque[T] = deque()  # the low lane; an entry counts only while its item is in `_low`
        self._low: set[T] = set()  # queued items whose place is the low lane
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._added_at: dict[T, float] = {}
        self._ready = asyncio.Event()
        self._shutting_down = False
        self._delayed: dict[T, tuple[float, asyncio.TimerHandle]] = {}

    # ------------------------------------------------------------------ adding
    def add(self, item: T) -> None:
        """Marks `item` as needing processing (a no-op if it already is, but for moving it out of the low lane)."""
        if self._shutting_down:
            return
        if item in self._dirty:
            if item in self._low:
                self._low.discard(item)
                if item not in self._processing:
                    self._push(item)
            return
        self._dirty.add(item)
        if self._metrics is not None:
            self._metrics.added()
        if item in self._processing:
            return  # requeued by done()
        self._push(item)

    def add_later(self, item: T) -> None:
        """Marks `item` as needing processing once no item added with `add()` is queued. Called by the holder of
        `item` (a reconcile asking to look again later), it also moves there an add that came while it held it:
        that reconcile has seen those changes (its own writes, most of the time)."""
        if self._shutting_down:
            return
        if item in self._dirty:
            if item in self._processing:
                self._low.add(item)
            return
        self._dirty.add(item)
        self._low.add(item)
        if self._metrics is not None:
            self._metrics.added()
        if item not in self._processing:
            self._push(item)

    def _push(self, item: T) -> None:
        (self._later if item in self._low else self._queue).append(item)
        self._added_at.setdefault(item, time.monotonic())
        self._ready.set()
        if self._metrics is not None:
            self._metrics.depth(len(self))

    def add_after(self, item: T, delay: float) -> None:
        """Adds `item` after `delay` seconds; of several pending delays for one item the earliest wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._delayed.get(item)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        self._delayed[item] = (when, loop.call_at(when, self._fire, item))

    def _fire(self, item: T) -> None:
        self._delayed.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: T) -> None:
        """Adds `item` after its backoff (a retry after a failure)."""
        if self._metrics is not None:
            self._metrics.retried()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Resets `item`'s backoff (call after a successful reconcile)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.failures(item)

    # ------------------------------------------------------------------ taking
    async def get(self) -> T:
        """The next item; the caller owns it until `done(item)`. Raises ShutDown once shut down and empty."""
        while True:
            if self._queue:
                item = self._queue.popleft()
                break
            if self._later:
                item = self._later.popleft()
                if item in self._low and item not in self._processing:
                    self._low.discard(item)
                    break
                continue  # moved up to the first lane since, or held: not this entry's turn
            if self._shutting_down:
                raise ShutDown
            self._ready.clear()
            await self._ready.wait()
        self._processing.add(item)
        self._dirty.discard(item)
        added = self._added_at.pop(item, None)
        if self._metrics is not None:
            self._metrics.depth(len(self))
            if added is not None:
                self._metrics.waited(time.monotonic() - added)
        return item

    def done(self, item: T) -> None:
        """Releases `item`; if it was added meanwhile it goes back in the queue."""
        self._processing.discard(item)
        if item in self._dirty and not self._shutting_down:
            self._push(item)

    # ------------------------------------------------------------------ state
    def shut_down(self) -> None:
        """Stops accepting items, drops what is queued or delayed, and wakes every waiting `get()`."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        self._queue.clear()
        self._later.clear()
        self._low.clear()
        self._dirty.clear()
        self._added_at.clear()
        self._ready.set()
        if self._metrics is not None:
            self._metrics.depth(0)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Items queued (in either lane)."""
        return len(self._queue) + len(self._low) - sum(1 for item in self._processing if item in self._low)

    def pending(self) -> int:
        """Items queued, being processed, or waiting on a delay."""
        return len(self) + len(self._processing) + len(self._delayed)

    def discard(self, predicate: Callable[[T], bool]) -> int:
        """Drops queued and delayed items for which `predicate(item)` is true (e.g. a removed cluster's keys)."""
        dropped = [item for item in self._dirty if predicate(item)]
        if dropped:
            gone = set(dropped)
            self._queue = deque(i for i in self._queue if i not in gone)
            self._later = deque(i for i in self._later if i not in gone)
            self._low -= gone
            self._dirty -= gone
            for item in gone:
                self._added_at.pop(item, None)
        for item in [i for i in self._delayed if predicate(i)]:
            self._delayed.pop(item)[1].cancel()
            dropped.append(item)
        for item in dropped:
            self.rate_limiter.forget(item)
        if self._metrics is not None:
            self._metrics.depth(len(self))
        return len(dropped)
