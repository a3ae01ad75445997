"""What the server keeps (stored objects' JSON, remembered encodings) takes its own length in memory: orjson's
result holds on to the whole buffer it grew, 4 KiB at least, which for a fleet's many small objects was a third of
its memory per member (BENCHMARKS.md)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import orjson

from clusterset.apiserver.storage.encoding import kept
from clusterset.apiserver.storage.store import Entry


def traced_growth(make: Callable[[], list[bytes]]) -> tuple[int, list[bytes]]:
    """The bytes allocated by `make()` that are still alive after it, and what it made."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        made = make()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")), made


def config_map(i: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": "default"},
            "data": {"key": "value"}}


def test_orjson_alone_keeps_a_buffer_many_times_the_length() -> None:
    """The premise: if orjson ever returns exact-length bytes, `kept` is a needless copy."""
    grown, made = traced_growth(lambda: [orjson.dumps(config_map(i)) for i in range(200)])
    assert grown > 4 * sum(len(raw) for raw in made)


def test_a_stored_objects_json_takes_about_its_length() -> None:
    entries = [Entry(config_map(i)) for i in range(200)]
    grown, made = traced_growth(lambda: [entry.raw for entry in entries])
    assert made[0] == orjson.dumps(config_map(0))
    assert grown < 1.5 * sum(len(raw) + 40 for raw in made)  # a bytes object's header is about 33 bytes


def test_kept_copies_exactly() -> None:
    raw = orjson.dumps({"a": [1, 2, 3], "b": "x" * 5000})
    assert kept(raw) == raw and isinstance(kept(raw), bytes)
