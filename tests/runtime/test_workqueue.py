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


async def test_later_items_wait_for_every_normal_one_and_an_add_moves_them_up() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_later("status-1")
    queue.add("data-1")
    queue.add_later("status-2")
    queue.add("data-2")
    queue.add_later("data-2")  # queued at normal priority by someone else: it keeps its place
    assert len(queue) == 4
    assert [await queue.get() for _ in range(2)] == ["data-1", "data-2"]
    queue.add("status-2")  # an event for it: it moves up, ahead of status-1
    queue.add("data-3")
    assert [await queue.get() for _ in range(3)] == ["status-2", "data-3", "status-1"]
    for item in ("data-1", "data-2", "status-2", "data-3", "status-1"):
        queue.done(item)
    assert queue.pending() == 0 and len(queue) == 0


async def test_a_holder_asking_for_later_takes_the_adds_made_while_it_held_the_item_along() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("import")
    held = await queue.get()
    queue.add("import")  # the event of its own write, while it holds the item
    queue.add_later("import")  # the reconcile's result: look again once the rest is done
    queue.add("other")
    queue.done(held)
    assert len(queue) == 2
    assert [await queue.get() for _ in range(2)] == ["other", "import"]
    queue.done("other")
    # and an add after the holder let go moves it up again
    queue.add_later("import")
    queue.add("next")
    queue.done("import")
    queue.add("import")
    assert [await queue.get() for _ in range(2)] == ["next", "import"]
    queue.done("next")
    queue.done("import")
    assert queue.pending() == 0


async def test_discard_and_shutdown_drop_later_items_too() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add_later(("c1", "a"))
    queue.add_later(("c2", "a"))
    assert queue.discard(lambda item: item[0] == "c1") == 1
    assert len(queue) == 1
    assert await queue.get() == ("c2", "a")
    queue.add_later(("c2", "b"))
    queue.shut_down()
    with pytest.raises(ShutDown):
        await queue.get()
