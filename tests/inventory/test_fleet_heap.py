"""A fleet's start pauses the cyclic collector: start-up builds every member's long-lived objects, and each full
collection they trigger walks all of them again (a quarter of a 200-member start)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions


def test_the_collector_pauses_while_a_fleet_starts_and_resumes_after(tmp_path: Path) -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    async def start_and_stop() -> tuple[list[str], bool]:
        fleet = EmbeddedFleet(FleetOptions(tmp_path / "fleet", members=3))
        gc.callbacks.append(count)
        try:
            await fleet.start()
        finally:
            gc.callbacks.remove(count)
        try:
            return list(fleet.member_ids), gc.isenabled()
        finally:
            await fleet.stop()

    assert gc.isenabled()
    members, enabled_after = asyncio.run(start_and_stop())
    assert members == ["member-1", "member-2", "member-3"]
    assert collections == [], f"collections of generations {collections} ran while the fleet started"
    assert enabled_after, "the collector runs again once the fleet has started"
