"""The journal: audited writes of one tenant, committed together (group commit).

A verification's record (its row, the credential's rows, the status binding, the
idempotency record) and the audit leaf that commits to it are one write. Written one
transaction each, a verification cost its own commit, a head-row lock and a head update,
and on SQLite a turn behind the single writer. Here concurrent writes of a tenant join one
transaction: the audit head is read and written once per batch (``AuditLog.append_many``),
the rows of a table go in as one multi-row insert, and the commit is shared.

The guarantees stay those of one transaction per write:
- nothing is acknowledged before it is committed (each caller awaits its batch's commit);
- a leaf exists exactly when the rows it records do (same transaction);
- when a batch fails, each of its writes is retried alone, so a write that cannot commit
  (an idempotency key a concurrent request took, a status index already bound) fails only
  its own caller, with its own error.
A write runs again when its batch is retried, so it builds its rows afresh on each call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog, AuditReceipt
from pavilion.store.database import Database

T = TypeVar("T")

#: Given the open transaction and its leaf's receipt, add the write's rows; return the answer.
Write = Callable[[AsyncSession, AuditReceipt], Awaitable[T]]


@dataclass
class JournalEntry(Generic[T]):
    """One audited write: the leaf's event (ids, hashes, outcomes; never PII) and the rows."""

    event: dict[str, Any]
    write: Write[T]


@dataclass
class _Pending:
    entry: JournalEntry[Any]
    future: asyncio.Future[Any]


@dataclass
class _Lane:
    items: list[_Pending] = field(default_factory=list)
    flushing: bool = False


class Journal:
    def __init__(self, db: Database, audit: AuditLog, *, max_batch: int = 256) -> None:
        self._db = db
        self._audit = audit
        self._max_batch = max_batch
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Transactions committed and writes they carried (tests, metrics, the benchmark).
        self.transactions = 0
        self.writes = 0

    async def write(self, tenant_id: str, entry: JournalEntry[T]) -> T:
        """Commit ``entry`` (alone or in a batch); return its answer once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        lane = self._lanes.setdefault(tenant_id, _Lane())
        lane.items.append(_Pending(entry, future))
        if not lane.flushing:
            lane.flushing = True
            task = loop.create_task(self._drain(tenant_id, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a caller that goes away (a client disconnect) does not cancel the batch.
        return await asyncio.shield(future)

    async def _drain(self, tenant_id: str, lane: _Lane) -> None:
        try:
            while lane.items:
                batch = lane.items[: self._max_batch]
                del lane.items[: self._max_batch]
                await self._commit(tenant_id, batch)
        finally:
            lane.flushing = False
            if not lane.items:
                self._lanes.pop(tenant_id, None)

    async def _commit(self, tenant_id: str, batch: list[_Pending]) -> None:
        answers: list[Any] = []
        try:
            async with self._db.transaction(tenant_id) as session:
                receipts = await self._audit.append_many(
                    session, tenant_id, [p.entry.event for p in batch]
                )
                for pending, receipt in zip(batch, receipts, strict=True):
                    answers.append(await pending.entry.write(session, receipt))
        except Exception as exc:  # rolled back: retry each write alone to find the one
            if len(batch) == 1:
                _settle(batch[0].future, error=exc)
                return
            for pending in batch:
                await self._commit(tenant_id, [pending])
            return
        self.transactions += 1
        self.writes += len(batch)
        for pending, answer in zip(batch, answers, strict=True):
            _settle(pending.future, answer=answer)

    async def aclose(self) -> None:
        """Wait for the batches in flight (a stopping worker acknowledges what it took)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _settle(
    future: asyncio.Future[Any], *, answer: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(answer)
    else:
        future.set_exception(error)
