"""Stage timers: each task step's thread CPU goes to the stage that task is in."""

from __future__ import annotations

import asyncio
import time

from pavilion.observability import stages
from pavilion.observability.metrics import REGISTRY


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_cpu_is_charged_to_the_stage_a_task_is_in() -> None:
    loop = asyncio.get_running_loop()
    stages.enable(loop)
    try:
        before = stages.totals()

        async def request() -> None:
            stages.enter("http")
            _burn(0.01)
            with stages.stage("issue"):
                _burn(0.03)
                await asyncio.sleep(0.05)  # waiting is charged to nobody
            _burn(0.01)

        await asyncio.create_task(request())
        after = stages.totals()
    finally:
        stages.disable(loop)
    issue = after["issue"] - before["issue"]
    http = after["http"] - before["http"]
    assert 0.03 <= issue < 0.045
    assert 0.02 <= http < 0.035
    assert not stages.enabled(loop)


async def test_a_task_started_inside_a_stage_is_charged_to_it() -> None:
    loop = asyncio.get_running_loop()
    stages.enable(loop)
    try:
        before = stages.totals()["persist"]

        async def flush() -> None:
            _burn(0.02)

        async def request() -> None:
            with stages.stage("persist"):
                await asyncio.create_task(flush())

        await asyncio.create_task(request())
        charged = stages.totals()["persist"] - before
    finally:
        stages.disable(loop)
    assert charged >= 0.02


async def test_disabled_timers_charge_nothing() -> None:
    before = stages.totals()

    async def request() -> None:
        with stages.stage("admit"):
            _burn(0.01)
        stages.enter("fetch")

    await asyncio.create_task(request())
    assert stages.totals() == before


async def test_the_totals_are_exported_to_prometheus() -> None:
    stages.charge("decide", 0.5)
    value = REGISTRY.get_sample_value("pavilion_stage_cpu_seconds_total", {"stage": "decide"})
    assert value is not None
    assert value >= 0.5
