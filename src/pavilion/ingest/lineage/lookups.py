"""Lookup lineage, counted: one run event per outcome per window, not one per verification.

The lineage graph says which DP datasets feed which decisions; it needs no row per request
(that cost an event and three link rows inside every verification's transaction). Each
worker counts its lookups in memory by shape (tenant, provider, claim type, record found,
schema valid, status, decision, credential issued) and writes one OpenLineage run event per
shape per window, carrying the count (``lookups``) and the window's start. Counts are written
when the window ends and when the worker stops; a worker killed outright loses at most one
window of counts, never a verification (those and their audit leaves are committed first).
Nothing here holds an identifier or a value from a record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from pavilion.ingest.lineage.emitter import LineageEmitter
from pavilion.ingest.lineage.store import store_lineage
from pavilion.observability.logging import get_logger
from pavilion.store.database import Database

log = get_logger(__name__)


class LookupShape(NamedTuple):
    tenant_id: str
    provider_id: str
    claim_type: str
    found: bool
    schema_valid: bool
    status: str
    decision: str | None
    credential_issued: bool


class LookupLineage:
    def __init__(
        self,
        db: Database,
        emitter: LineageEmitter,
        *,
        window_seconds: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._emitter = emitter
        self._window = window_seconds
        self._clock = clock
        self._counts: Counter[LookupShape] = Counter()
        self._window_start: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def record(self, shape: LookupShape) -> None:
        """Count one lookup (no I/O: this runs on the hot path)."""
        if self._window_start is None:
            self._window_start = self._clock()
        self._counts[shape] += 1

    @property
    def pending(self) -> int:
        return sum(self._counts.values())

    async def flush(self) -> int:
        """Write one event per counted shape; return how many events were written."""
        counts, self._counts = self._counts, Counter()
        started, self._window_start = self._window_start, None
        if not counts or started is None:
            return 0
        from pavilion.ingest.lineage.events import lookup_event

        at = self._clock()
        by_tenant: dict[str, list[tuple[LookupShape, int]]] = {}
        for shape, count in counts.items():
            by_tenant.setdefault(shape.tenant_id, []).append((shape, count))
        written = 0
        for tenant_id, shapes in by_tenant.items():
            try:
                async with self._db.transaction(tenant_id) as session:
                    for shape, count in shapes:
                        event = self._emitter.emit(
                            lookup_event(
                                tenant_id=tenant_id,
                                provider_id=shape.provider_id,
                                claim_type=shape.claim_type,
                                at=at,
                                found=shape.found,
                                schema_valid=shape.schema_valid,
                                status=shape.status,
                                decision=shape.decision,
                                credential_issued=shape.credential_issued,
                                lookups=count,
                                window_start=started,
                            )
                        )
                        await store_lineage(session, tenant_id, event)
            except Exception:  # counts are lineage, not records: keep them for the next window
                log.exception("lookup lineage not written; kept for the next window")
                for shape, count in shapes:
                    self._counts[shape] += count
                self._window_start = started
                continue
            written += len(shapes)
        return written

    def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(self._stopping))

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._window)
            await self.flush()

    async def stop(self) -> None:
        """Stop the window timer (never in the middle of a write), in the loop that started it."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def aclose(self) -> None:
        """Stop the timer and write what is counted."""
        await self.stop()
        await self.flush()
