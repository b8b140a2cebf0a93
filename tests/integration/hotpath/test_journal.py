"""The journal on both databases: batches share a commit, a bad write fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from pavilion.audit.journal import Batch, Journal, JournalEntry, Transition
from pavilion.audit.log import AuditReceipt
from pavilion.audit.models import AuditLeaf
from pavilion.credentials.status.models import StatusListEntry
from pavilion.errors import Conflict
from pavilion.runtime import Runtime
from pavilion.store.idempotency import IdempotencyRecord
from pavilion.store.pg_batch import PgConnections


def _record(tenant_id: str, key: str) -> JournalEntry[int]:
    def write(batch: Batch, receipt: AuditReceipt) -> int:
        batch.insert(
            IdempotencyRecord,
            {
                "tenant_id": tenant_id,
                "scope": "journal-test",
                "key": key,
                "request_hash": "0" * 64,
                "status_code": 201,
                "response": {"index": receipt.index},
            },
        )
        return receipt.index

    return JournalEntry({"kind": "test", "key": key}, write)


async def _count(rt: Runtime, tenant_id: str, model: Any) -> int:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _interleave(first: Journal, second: Journal, tenant: str) -> None:
    """Three rounds of four writes through each journal at once (24 leaves)."""
    for round_ in range(3):
        await asyncio.gather(
            *(first.write(tenant, _record(tenant, f"a{round_}{i}")) for i in range(4)),
            *(second.write(tenant, _record(tenant, f"b{round_}{i}")) for i in range(4)),
        )


async def test_concurrent_writes_share_transactions_and_keep_the_log_whole(
    runtime: Runtime,
) -> None:
    tenant = (await runtime.tenancy.create_tenant("journal")).id
    indices = await asyncio.gather(
        *(runtime.journal.write(tenant, _record(tenant, f"k{i}")) for i in range(30))
    )
    assert sorted(indices) == list(range(30))
    assert runtime.journal.writes == 30
    assert runtime.journal.transactions < 30
    assert (await runtime.audit.verify(tenant)).ok
    assert await _count(runtime, tenant, IdempotencyRecord) == 30


async def test_a_write_that_breaks_a_constraint_fails_alone(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("journal")).id
    await runtime.journal.write(tenant, _record(tenant, "taken"))
    results = await asyncio.gather(
        *(runtime.journal.write(tenant, _record(tenant, k)) for k in ("a", "taken", "b")),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert [r for r in results if isinstance(r, int)] == sorted(
        r for r in results if isinstance(r, int)
    )
    assert await _count(runtime, tenant, IdempotencyRecord) == 3
    # The failed write left no audit leaf: a leaf exists exactly when its rows do.
    assert await _count(runtime, tenant, AuditLeaf) == 3
    assert (await runtime.audit.verify(tenant)).ok


async def test_a_transition_whose_guard_misses_is_a_conflict(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("journal")).id

    def write(batch: Batch, _receipt: AuditReceipt) -> None:
        batch.transition(
            Transition(
                model=StatusListEntry,
                row_id="no-such-entry",
                guard="state",
                expected="reserved",
                values={"state": "valid"},
                conflict="status index 7 is not reserved",
            )
        )

    with pytest.raises(Conflict, match="status index 7 is not reserved"):
        await runtime.journal.write(tenant, JournalEntry({"kind": "test"}, write))
    assert await _count(runtime, tenant, AuditLeaf) == 0


async def test_closing_waits_for_the_batches_in_flight(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("journal")).id
    writes = [
        asyncio.create_task(runtime.journal.write(tenant, _record(tenant, f"c{i}")))
        for i in range(5)
    ]
    await asyncio.sleep(0)
    await runtime.journal.aclose()
    assert all(w.done() for w in writes)
    assert await _count(runtime, tenant, IdempotencyRecord) == 5


async def test_two_workers_appending_to_one_log_keep_it_whole(runtime: Runtime) -> None:
    """A second journal (another worker) makes the first one's head stale: it re-reads it."""
    tenant = (await runtime.tenancy.create_tenant("journal")).id
    pg = PgConnections(runtime.settings.database_url) if runtime.db.is_postgres else None
    other = Journal(runtime.db, runtime.audit, pg=pg)
    try:
        await _interleave(runtime.journal, other, tenant)
    finally:
        await other.aclose()
    report = await runtime.audit.verify(tenant)
    assert report.ok, report.problems
    assert report.size == 24
    assert await _count(runtime, tenant, IdempotencyRecord) == 24


async def test_a_contended_tenant_locks_its_head_instead_of_writing_batches_twice(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers busy on one tenant: once a worker finds its head moved by the other, its
    batches read the head under its row lock first (four round trips, never a retry), and
    none falls back to the SQLAlchemy path."""
    if not runtime.db.is_postgres:
        pytest.skip("the one-statement batch and its head lock are PostgreSQL's")
    tenant = (await runtime.tenancy.create_tenant("journal")).id
    await runtime.journal.write(tenant, _record(tenant, "first"))  # the head exists
    pg = PgConnections(runtime.settings.database_url)
    other = Journal(runtime.db, runtime.audit, pg=pg)
    fallbacks = 0

    def counting(journal: Journal) -> Any:
        real = journal._write_locked

        async def write_locked(tenant_id: str, batch: list[Any]) -> list[Any]:
            nonlocal fallbacks
            fallbacks += 1
            return await real(tenant_id, batch)

        return write_locked

    for journal in (runtime.journal, other):
        monkeypatch.setattr(journal, "_write_locked", counting(journal))
    try:
        await other.write(tenant, _record(tenant, "b-stale"))  # its head was never read: one read
        await runtime.journal.write(tenant, _record(tenant, "a-stale"))  # its head moved
        before = pg.round_trips
        await other.write(tenant, _record(tenant, "b-contended"))  # moved again: now contended
        contended_trips = pg.round_trips - before
        before = pg.round_trips
        await other.write(tenant, _record(tenant, "b-locked"))
        assert pg.round_trips - before == 4  # begin, head FOR UPDATE, the batch, commit
        assert contended_trips == 3 + 4  # the stale attempt, then the locked one
        await _interleave(runtime.journal, other, tenant)
    finally:
        await other.aclose()
    assert fallbacks == 0
    report = await runtime.audit.verify(tenant)
    assert report.ok, report.problems
    assert report.size == 29
    assert await _count(runtime, tenant, IdempotencyRecord) == 29
