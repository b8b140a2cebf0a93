"""Connection events into each tenant's audit log, off the request path.

``emit`` only queues (bounded; a full queue drops the event and counts it in
``pavilion_connect_audit_events_dropped_total``); a background task appends the events in
batches, one transaction per tenant per batch. Events without a tenant (a client built
without a registry, as in unit tests) are logged only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from pavilion.audit.log import AuditLog
from pavilion.connect.events import ConnectionEvent
from pavilion.connect.metrics import AUDIT_EVENTS_DROPPED
from pavilion.observability.logging import get_logger
from pavilion.store.database import Database

log = get_logger("pavilion.connect")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLogSink:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        *,
        max_queue: int = 10_000,
        batch: int = 200,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._db = db
        self._audit = audit
        self._queue: asyncio.Queue[tuple[str, ConnectionEvent]] | None = None
        self._max_queue = max_queue
        self._batch = batch
        self._clock = clock
        self._worker: asyncio.Task[None] | None = None
        self.written = 0

    def emit(self, event: ConnectionEvent) -> None:
        if not event.tenant_id:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(self._max_queue)
        try:
            self._queue.put_nowait((self._clock().isoformat(), event))
        except asyncio.QueueFull:
            AUDIT_EVENTS_DROPPED.inc()
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="pavilion-connect-audit")

    async def flush(self) -> None:
        """Wait until every queued event is in the audit log."""
        if self._queue is not None:
            await self._queue.join()

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=5)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self._batch and not queue.empty():
                batch.append(queue.get_nowait())
            by_tenant: dict[str, list[tuple[str, ConnectionEvent]]] = {}
            for at, event in batch:
                by_tenant.setdefault(event.tenant_id, []).append((at, event))
            for tenant_id, events in by_tenant.items():
                try:
                    async with self._db.transaction(tenant_id) as session:
                        for at, event in events:
                            await self._audit.append(session, tenant_id, event.as_audit_event(at))
                    self.written += len(events)
                except Exception as exc:  # the writer must outlive a failing database
                    log.error(
                        "connection audit write failed",
                        error=type(exc).__name__,
                        events=len(events),
                    )
            for _ in batch:
                queue.task_done()
