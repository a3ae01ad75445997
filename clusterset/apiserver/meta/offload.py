"""CPU-heavy pure work (decoding a large body, patching a large object) off the event loop.

One event loop serves every logical cluster, so seconds of parsing on it would stall all of them. Work run
here goes to a worker thread: the GIL still lets one thread run Python at a time, but the loop thread takes
it back at each switch interval (5 ms), so other requests keep being answered meanwhile. Two workers: more
threads would add memory, not CPU.

While a job runs the cyclic garbage collector pauses: a 3 MiB body decodes into a million containers, and
each full collection their allocation triggers walks every object of every cluster holding the GIL (1.5 s
pauses, 8 s in all, measured on a 3 MiB YAML body). What a job builds is a tree of plain values, which
reference counting frees; cycles made elsewhere meanwhile are collected once the last job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clusterset-cpu")


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` on a worker thread; `fn` must touch no state the loop changes meanwhile."""
    job = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_WORKERS, _collector_paused, job)


class _CollectorPause:
    """Pauses the cyclic GC while any job runs; it resumes only if it was enabled when the first job began."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._jobs == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._jobs += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._jobs -= 1
            if self._jobs == 0 and self._resume:
                gc.enable()


_PAUSE = _CollectorPause()


def collector_paused() -> contextlib.AbstractContextManager[None]:
    """The pause of the jobs here, for other work that builds many long-lived containers at once (a fleet's
    start): it may span awaits, and nests with the jobs' own pauses."""
    return _PAUSE


def _collector_paused(job: Callable[[], T]) -> T:
    with _PAUSE:
        return job()
