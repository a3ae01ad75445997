"""A put-load client shared by every HTTP benchmark (our API server and etcd's HTTP gateway).

N workers, each with its own aiohttp ClientSession holding one keep-alive connection, send
requests back to back for a fixed time (or until a fixed count) and record each latency.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

# (url, body, headers) for request number i of worker w
RequestMaker = Callable[[int, int], tuple[str, bytes, dict[str, str]]]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of unsorted `values` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds this (load generator) process used in the timed window
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(self.latencies, q) * 1000


def session(ssl_ctx: ssl.SSLContext | None, limit: int = 1) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, ssl=ssl_ctx if ssl_ctx is not None else False,
                                     force_close=False, enable_cleanup_closed=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))


async def run_load(make: RequestMaker, clients: int, *, seconds: float | None = None, count: int | None = None,
                   ssl_ctx: ssl.SSLContext | None = None, expect: tuple[int, ...] = (200, 201),
                   warmup: int = 20, warm_get: tuple[str, dict[str, str]] | None = None) -> LoadResult:
    """Runs `clients` workers for `seconds` (or `count` requests in all); returns the totals.

    Before the timed window every worker opens its keep-alive connection (TLS handshake included):
    with `warmup` requests made by `make` in all, or with one GET of `warm_get` (url, headers)
    each when those writes must not happen (a fixed count of objects).
    """
    assert seconds is not None or count is not None
    result = LoadResult()
    sessions = [session(ssl_ctx) for _ in range(clients)]
    next_index = [0] * clients
    try:
        per_client = max(1, warmup // clients) if warmup > 0 and warm_get is None else 0

        async def warm(w: int) -> None:
            if warm_get is not None:
                async with sessions[w].get(warm_get[0], headers=warm_get[1]) as resp:
                    await resp.read()
            for _ in range(per_client):
                url, body, headers = make(w, next_index[w])
                next_index[w] += 1
                async with sessions[w].post(url, data=body, headers=headers) as resp:
                    await resp.read()
        await asyncio.gather(*(warm(w) for w in range(clients)))

        remaining = [count if count is not None else -1]
        deadline = time.perf_counter() + seconds if seconds is not None else float("inf")
        lat = result.latencies

        async def worker(w: int) -> None:
            s = sessions[w]
            i = next_index[w]
            while True:
                if remaining[0] == 0 or time.perf_counter() >= deadline:
                    break
                if remaining[0] > 0:
                    remaining[0] -= 1
                url, body, headers = make(w, i)
                i += 1
                t0 = time.perf_counter()
                async with s.post(url, data=body, headers=headers) as resp:
                    payload = await resp.read()
                    status = resp.status
                lat.append(time.perf_counter() - t0)
                if status in expect:
                    result.requests += 1
                else:
                    result.errors += 1
                    if not result.first_error:
                        result.first_error = f"HTTP {status}: {payload[:300]!r}"

        start = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        result.seconds = time.perf_counter() - start
        result.client_cpu = time.process_time() - cpu0
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return result


async def run_count(make: RequestMaker, clients: int, total: int, ssl_ctx: ssl.SSLContext | None = None,
                    expect: tuple[int, ...] = (200, 201), warm_get: tuple[str, dict[str, str]] | None = None,
                    ) -> LoadResult:
    """Exactly `total` requests made by `make` (warm-up, if any, by `warm_get`), e.g. to load a data set."""
    return await run_load(make, clients, count=total, ssl_ctx=ssl_ctx, expect=expect, warmup=0, warm_get=warm_get)
