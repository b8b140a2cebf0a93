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

A write does no I/O itself: it puts its rows into the ``Batch`` (``insert``) and states the
guarded changes it needs (``transition``: "this row, if still in that state, takes these
values"). The journal then writes each table's rows as one multi-row insert and each kind of
transition as one ``UPDATE ... WHERE id IN (...) AND <guard> RETURNING id``; a guard that
misses fails the batch with the write's own conflict. So a batch costs the same number of
statements whatever its size: the commit, the audit head and one statement per table.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import case, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog, AuditReceipt
from pavilion.audit.merkle import CompactRange
from pavilion.audit.models import AuditLeaf
from pavilion.errors import Conflict
from pavilion.store.database import Database
from pavilion.store.pg_batch import GuardedRows, PgConnections, compose
from pavilion.store.sqlite_batch import SqliteWriter, insert_rows, update_guarded

T = TypeVar("T")


@dataclass(frozen=True)
class Transition:
    """Row ``row_id`` of ``model``, if its ``guard`` column still holds ``expected``, takes
    ``values``; otherwise the write fails with ``Conflict(conflict)``."""

    model: Any  # an ORM model with an ``id`` primary key
    row_id: str
    guard: str
    expected: Any
    values: dict[str, Any]
    conflict: str


@dataclass
class Batch:
    """What the writes of one transaction add: rows per table, guarded transitions."""

    inserts: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    def insert(self, model: Any, row: dict[str, Any]) -> None:
        self.inserts.setdefault(model, []).append(row)

    def transition(self, change: Transition) -> None:
        self.transitions.append(change)


#: Given the batch and its leaf's receipt, add the write's rows; return the answer.
Write = Callable[[Batch, AuditReceipt], T]


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


class StaleHead(Exception):
    """Another writer (another worker) appended since this one last saw the tenant's head."""


_LEAF_INDEX_TAKEN = "uq_audit_leaves_tenant_id_idx"
_HEAD_FOR_UPDATE = "SELECT compact_range FROM audit_heads WHERE tenant_id = $1 FOR UPDATE"
#: Seconds a tenant stays contended after another worker moved its head under this one.
CONTENDED_S = 5.0
_HEAD_CTE = (
    "head AS (UPDATE audit_heads SET size = $1, compact_range = $2 "
    "WHERE tenant_id = $3 AND size = $4 RETURNING 1)"
)


@dataclass(frozen=True)
class _PgPlan:
    """A batch made ready for PostgreSQL over a known head: its answers, the head after it,
    the one statement with its parameters, and the guarded changes by result column."""

    answers: list[Any]
    after: CompactRange
    statement: str
    params: list[Any]
    guarded: list[tuple[str, list[Transition]]]


class Journal:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        *,
        max_batch: int = 256,
        pg: PgConnections | None = None,
        sqlite: SqliteWriter | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._max_batch = max_batch
        # PostgreSQL: a batch in one statement (store/pg_batch.py), the head kept in memory.
        self._pg = pg
        # SQLite: a batch in one hand-off to its own writer thread (store/sqlite_batch.py).
        self._sqlite = sqlite
        self._heads: dict[str, CompactRange] = {}
        #: Tenants whose head another worker moved lately: until when their batches lock it.
        self._contended_until: dict[str, float] = {}
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
        try:
            if self._pg is not None:
                answers = await self._write_pg(tenant_id, batch, self._pg)
            elif self._sqlite is not None:
                answers = await self._write_sqlite(tenant_id, batch, self._sqlite)
            else:
                answers = await self._write_locked(tenant_id, batch)
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

    @property
    def sqlite_writer(self) -> SqliteWriter | None:
        """The SQLite writer thread (None on PostgreSQL or an in-memory database); status
        changes share it, so the process has one writer connection."""
        return self._sqlite

    @property
    def driver_round_trips(self) -> int:
        """Round trips made outside SQLAlchemy: PostgreSQL's (three per batch) and SQLite's
        hand-offs to the writer thread (one per batch)."""
        pg = self._pg.round_trips if self._pg is not None else 0
        return pg + (self._sqlite.hand_offs if self._sqlite is not None else 0)

    async def _write_locked(self, tenant_id: str, batch: list[_Pending]) -> list[Any]:
        """Through SQLAlchemy: the head row locked, one statement per table."""
        answers: list[Any] = []
        async with self._db.transaction(tenant_id) as session:
            receipts = await self._audit.append_many(
                session, tenant_id, [p.entry.event for p in batch]
            )
            rows = Batch()
            for pending, receipt in zip(batch, receipts, strict=True):
                answers.append(pending.entry.write(rows, receipt))
            await _apply(session, rows)
        return answers

    async def _write_pg(
        self, tenant_id: str, batch: list[_Pending], pg: PgConnections
    ) -> list[Any]:
        """One statement: leaves, head (guarded by its size), rows, transitions.

        The head is kept in memory; when another worker has appended meanwhile the guard (or
        the leaf index) misses, the head is read again and the batch written again; a tenant
        without a head yet, or one contended twice in a row, takes the locked path. A tenant
        whose head another worker moved is contended for :data:`CONTENDED_S`: its batches
        then lock the head first (one more round trip, no retries: with two workers busy on
        one tenant nearly every optimistic batch met a stale head and was written twice).
        """
        for _ in range(2):
            if self._contended_until.get(tenant_id, 0.0) > time.monotonic():
                answers = await self._write_pg_head_locked(tenant_id, batch, pg)
                if answers is None:
                    break
                return answers
            head = self._heads.get(tenant_id)
            if head is None:
                head = await self._load_head(tenant_id, pg)
                if head is None:
                    break
            plan = self._plan_pg(tenant_id, head, batch)
            try:
                async with pg.transaction(tenant_id) as connection:
                    await self._run_pg(connection, pg, tenant_id, head, plan)
            except StaleHead:
                self._contend(tenant_id)
                continue
            except asyncpg.UniqueViolationError as exc:
                self._heads.pop(tenant_id, None)
                if exc.constraint_name == _LEAF_INDEX_TAKEN:
                    self._contend(tenant_id)
                    continue  # another worker took these indices first
                raise IntegrityError(plan.statement, None, exc) from exc
            self._heads[tenant_id] = plan.after
            return plan.answers
        self._heads.pop(tenant_id, None)
        return await self._write_locked(tenant_id, batch)

    def _contend(self, tenant_id: str) -> None:
        self._heads.pop(tenant_id, None)
        self._contended_until[tenant_id] = time.monotonic() + CONTENDED_S

    async def _write_pg_head_locked(
        self, tenant_id: str, batch: list[_Pending], pg: PgConnections
    ) -> list[Any] | None:
        """The head read with its row lock, then the batch's statement, in one transaction;
        ``None`` when the tenant has no head yet."""
        async with pg.transaction(tenant_id) as connection:
            row = await pg.fetchrow(connection, _HEAD_FOR_UPDATE, tenant_id)
            if row is None:
                return None
            head = CompactRange.from_json(row["compact_range"])
            plan = self._plan_pg(tenant_id, head, batch)
            await self._run_pg(connection, pg, tenant_id, head, plan)
        self._heads[tenant_id] = plan.after
        return plan.answers

    def _plan_pg(self, tenant_id: str, head: CompactRange, batch: list[_Pending]) -> _PgPlan:
        receipts, leaves, after = self._audit.plan_leaves(
            tenant_id, head, [p.entry.event for p in batch]
        )
        rows = Batch()
        answers = [p.entry.write(rows, r) for p, r in zip(batch, receipts, strict=True)]
        inserts = {AuditLeaf.__table__: leaves} | {
            model.__table__: values for model, values in rows.inserts.items()
        }
        groups = _grouped(rows.transitions)
        statement, params, names = compose(
            inserts,
            [
                GuardedRows(
                    model.__table__,
                    guard,
                    columns,
                    [{"id": c.row_id, "_expected": c.expected, **c.values} for c in changes],
                )
                for (model, guard, _, columns), changes in groups.items()
            ],
            extra_ctes=[_HEAD_CTE],
            extra_selects=["(SELECT count(*) FROM head) AS head"],
            first_param=5,
        )
        return _PgPlan(
            answers, after, statement, params, list(zip(names, groups.values(), strict=True))
        )

    @staticmethod
    async def _run_pg(
        connection: asyncpg.Connection,
        pg: PgConnections,
        tenant_id: str,
        head: CompactRange,
        plan: _PgPlan,
    ) -> None:
        """The batch's statement; StaleHead when the head moved, Conflict when a guard missed."""
        result = await pg.fetchrow(
            connection,
            plan.statement,
            plan.after.size,
            plan.after.to_json(),
            tenant_id,
            head.size,
            *plan.params,
        )
        if result["head"] != 1:
            raise StaleHead
        for name, changes in plan.guarded:
            done = set(result[name] or ())
            missed = next((c for c in changes if c.row_id not in done), None)
            if missed is not None:
                raise Conflict(missed.conflict)

    async def _write_sqlite(
        self, tenant_id: str, batch: list[_Pending], writer: SqliteWriter
    ) -> list[Any]:
        """One hand-off: head (guarded by its size, kept in memory), leaves, rows, transitions."""
        events = [p.entry.event for p in batch]
        for _ in range(2):
            head = self._heads.get(tenant_id)
            if head is None:
                head = await writer.transaction(partial(sqlite_head, tenant_id=tenant_id))
                if head is None:
                    break
            receipts, leaves, after = self._audit.plan_leaves(tenant_id, head, events)
            rows = Batch()
            answers = [p.entry.write(rows, r) for p, r in zip(batch, receipts, strict=True)]
            work = partial(
                sqlite_batch,
                tenant_id=tenant_id,
                before=head,
                after=after,
                leaves=leaves,
                rows=rows,
            )
            try:
                await writer.transaction(work)
            except StaleHead:
                self._heads.pop(tenant_id, None)
                continue
            except sqlite3.IntegrityError as exc:
                self._heads.pop(tenant_id, None)
                if "audit_leaves" in str(exc):
                    continue  # another writer took these indices first
                raise IntegrityError("journal batch", None, exc) from exc
            self._heads[tenant_id] = after
            return answers
        self._heads.pop(tenant_id, None)
        return await self._write_locked(tenant_id, batch)

    async def _load_head(self, tenant_id: str, pg: PgConnections) -> CompactRange | None:
        async with pg.transaction(tenant_id) as connection:
            row = await pg.fetchrow(
                connection,
                "SELECT compact_range FROM audit_heads WHERE tenant_id = $1",
                tenant_id,
            )
        return CompactRange.from_json(row["compact_range"]) if row is not None else None

    async def aclose(self) -> None:
        """Wait for the batches in flight (a stopping worker acknowledges what it took)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._pg is not None:
            await self._pg.aclose()
        if self._sqlite is not None:
            await self._sqlite.aclose()


def sqlite_head(connection: sqlite3.Connection, *, tenant_id: str) -> CompactRange | None:
    """The tenant's audit head, read on the SQLite writer thread (None before its first leaf)."""
    row = connection.execute(
        "SELECT compact_range FROM audit_heads WHERE tenant_id = ?", (tenant_id,)
    ).fetchone()
    return CompactRange.from_json(row[0]) if row is not None else None


def sqlite_batch(
    connection: sqlite3.Connection,
    *,
    tenant_id: str,
    before: CompactRange,
    after: CompactRange,
    leaves: list[dict[str, Any]],
    rows: Batch,
) -> None:
    """On the SQLite writer thread: the head moved from ``before`` to ``after`` (StaleHead if
    another writer moved it first), the leaves, the rows and the guarded changes."""
    moved = connection.execute(
        "UPDATE audit_heads SET size = ?, compact_range = ? WHERE tenant_id = ? AND size = ?",
        (after.size, after.to_json(), tenant_id, before.size),
    )
    if moved.rowcount != 1:
        raise StaleHead
    insert_rows(connection, AuditLeaf.__table__, leaves)  # type: ignore[arg-type]
    for model, values in rows.inserts.items():
        insert_rows(connection, model.__table__, values)
    for change in rows.transitions:
        if not update_guarded(
            connection,
            change.model.__table__,
            row_id=change.row_id,
            guard=change.guard,
            expected=change.expected,
            values=change.values,
        ):
            raise Conflict(change.conflict)


def _grouped(
    transitions: list[Transition],
) -> dict[tuple[Any, str, Any, tuple[str, ...]], list[Transition]]:
    groups: dict[tuple[Any, str, Any, tuple[str, ...]], list[Transition]] = {}
    for change in transitions:
        shape = (change.model, change.guard, change.expected, tuple(sorted(change.values)))
        groups.setdefault(shape, []).append(change)
    return groups


async def _apply(session: AsyncSession, batch: Batch) -> None:
    for model, rows in batch.inserts.items():
        await session.execute(insert(model), rows)  # one multi-row insert per table
    groups = _grouped(batch.transitions)
    for (model, guard, expected, names), changes in groups.items():
        ids = [c.row_id for c in changes]
        values = {
            name: case({c.row_id: c.values[name] for c in changes}, value=model.id)
            for name in names
        }
        done = set(
            (
                await session.execute(
                    update(model)
                    .where(model.id.in_(ids), getattr(model, guard) == expected)
                    .values(values)
                    .returning(model.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
        )
        missed = next((c for c in changes if c.row_id not in done), None)
        if missed is not None:
            raise Conflict(missed.conflict)


def _settle(
    future: asyncio.Future[Any], *, answer: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(answer)
    else:
        future.set_exception(error)
