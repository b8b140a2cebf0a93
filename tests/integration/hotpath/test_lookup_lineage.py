"""Lookup lineage: counted per outcome, written per window, kept when a write fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from pavilion.ingest.lineage.lookups import LookupLineage, LookupShape
from pavilion.ingest.models import LineageEvent
from pavilion.runtime import Runtime


def _shape(tenant_id: str, decision: str) -> LookupShape:
    return LookupShape(
        tenant_id, "provider-1", "student_status", True, True, "succeeded", decision, True
    )


async def _events(rt: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        rows = (await session.execute(select(LineageEvent))).scalars()
        return [json.loads(r.event) for r in rows]


async def test_one_event_per_outcome_carries_its_count(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("lineage")).id
    lineage = runtime.lookup_lineage
    for decision in ("true", "true", "true", "false"):
        lineage.record(_shape(tenant, decision))
    assert lineage.pending == 4
    assert await lineage.flush() == 2
    assert lineage.pending == 0
    facets = sorted(
        (e["run"]["facets"]["pavilion_lookup"] for e in await _events(runtime, tenant)),
        key=lambda f: f["decision"],
    )
    assert [(f["decision"], f["lookups"]) for f in facets] == [("false", 1), ("true", 3)]
    assert await lineage.flush() == 0  # nothing new


async def test_counts_survive_a_failed_write_and_go_out_with_the_next(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("lineage")).id

    class Unavailable:
        @asynccontextmanager
        async def transaction(self, *_: Any, **__: Any) -> AsyncIterator[None]:
            raise ConnectionError("database down")
            yield  # pragma: no cover

    clock = lambda: datetime.now(UTC)  # noqa: E731
    failing = LookupLineage(Unavailable(), runtime.lineage, window_seconds=60, clock=clock)  # type: ignore[arg-type]
    failing.record(_shape(tenant, "true"))
    assert await failing.flush() == 0
    assert failing.pending == 1  # kept for the next window
    failing._db = runtime.db
    assert await failing.flush() == 1
    assert len(await _events(runtime, tenant)) == 1


async def test_the_window_timer_writes_and_closing_writes_the_rest(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("lineage")).id
    lineage = LookupLineage(
        runtime.db, runtime.lineage, window_seconds=0.05, clock=lambda: datetime.now(UTC)
    )
    lineage.start()
    lineage.record(_shape(tenant, "true"))
    for _ in range(100):
        if lineage.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert lineage.pending == 0
    lineage.record(_shape(tenant, "false"))
    await lineage.aclose()
    assert len(await _events(runtime, tenant)) == 2
