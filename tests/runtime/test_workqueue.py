"""The work queue's rules: coalescing, hand-back after processing, delays, backoff, shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

from clusterset.runtime.workqueue import RateLimiter, ShutDown, WorkQueue


async def test_a_key_added_while_queued_is_one_entry() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(1000):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    assert len(queue) == 0


async def test_a_key_added_while_processing_is_processed_once_more_after() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    item = await queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker while the first holds it
    queue.done(item)
    assert len(queue) == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert queue.pending() == 0


async def test_get_waits_for_an_add_and_shutdown_wakes_every_getter() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    waiting = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.shut_down()
    for task in waiting:
        with pytest.raises(ShutDown):
            await asyncio.wait_for(task, 1)
    queue.add("y")  # ignored once shut down
    assert len(queue) == 0


async def test_add_after_keeps_the_earliest_delay() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = time.monotonic()
    queue.add_after("a", 5.0)
    queue.add_after("a", 0.05)
    queue.add_after("a", 3.0)
    assert await asyncio.wait_for(queue.get(), 2) == "a"
    assert 0.04 <= time.monotonic() - start < 1.0
    queue.done("a")
    queue.shut_down()


def test_backoff_grows_per_key_up_to_the_cap_and_forget_resets_it() -> None:
    limiter = RateLimiter(base_delay=0.01, max_delay=0.1, qps=0)
    delays = [limiter.when("a") for _ in range(6)]
    assert delays == [0.01, 0.02, 0.04, 0.08, 0.1, 0.1]
    assert limiter.when("b") == 0.01  # keys back off independently
    limiter.forget("a")
    assert limiter.when("a") == 0.01


def test_the_overall_bucket_limits_retries_of_many_keys() -> None:
    limiter = RateLimiter(base_delay=0.001, max_delay=1.0, qps=10, burst=5)
    delays = [limiter.when(f"k{i}") for i in range(8)]
    assert all(d == 0.001 for d in delays[:5])  # the burst
    assert delays[5] == pytest.approx(0.1, abs=0.02)  # then 10 per second
    assert delays[7] == pytest.approx(0.3, abs=0.02)


async def test_discard_drops_queued_and_delayed_items() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(("c1", "a"))
    queue.add(("c2", "a"))
    queue.add_after(("c1", "b"), 10)
    assert queue.discard(lambda item: item[0] == "c1") == 2
    assert len(queue) == 1
    assert await queue.get() == ("c2", "a")
    assert queue.pending() == 1  # only the one being processed
    queue.shut_down()
