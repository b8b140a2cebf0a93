"""Group commit: concurrent writes of one tenant share one database transaction.

Recording an issued credential is a small write (a row, a status binding, an audit leaf),
but each write transaction costs far more than its statements: on SQLite writers queue behind
one lock, on PostgreSQL each commit waits for the WAL flush. Under load, requests that arrive
while a transaction is being written join the next one, so the cost of a commit is shared.

Nothing is acknowledged before it is committed: every caller awaits the commit of the batch
that carries its write. When a batch fails, each of its writes is retried alone, so one bad
write (a conflict, say) fails only its own caller. With one caller at a time this is exactly
one transaction per write, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.store.database import Database

Write = Callable[[AsyncSession], Awaitable[None]]

#: At most this many writes share a transaction (a bound on its size and its lock time).
MAX_BATCH = 128


@dataclass
class _Queue:
    items: list[tuple[Write, asyncio.Future[None]]] = field(default_factory=list)
    flushing: bool = False


class GroupCommit:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queues: dict[str, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Transactions committed and writes carried (for tests and metrics).
        self.transactions = 0
        self.writes = 0

    async def write(self, tenant_id: str, work: Write) -> None:
        """Run ``work`` in a transaction of ``tenant_id``; return once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        queue = self._queues.setdefault(tenant_id, _Queue())
        queue.items.append((work, future))
        if not queue.flushing:
            queue.flushing = True
            task = loop.create_task(self._flush(tenant_id, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(future)

    async def _flush(self, tenant_id: str, queue: _Queue) -> None:
        try:
            while queue.items:
                batch = queue.items[: self._max_batch]
                del queue.items[: self._max_batch]
                await self._commit(tenant_id, batch)
        finally:
            queue.flushing = False
            if not queue.items:
                self._queues.pop(tenant_id, None)

    async def _commit(
        self, tenant_id: str, batch: list[tuple[Write, asyncio.Future[None]]]
    ) -> None:
        try:
            async with self._db.transaction(tenant_id) as session:
                for work, _ in batch:
                    await work(session)
        except Exception as exc:  # the batch is rolled back: isolate the write that failed
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item in batch:
                await self._commit(tenant_id, [item])
            return
        self.transactions += 1
        self.writes += len(batch)
        for _, future in batch:
            _settle(future, None)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
