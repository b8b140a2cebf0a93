"""VC-API issuances are recorded through the audit journal, on both databases.

What an issuance writes (its ``credential_issuances`` row, its status entry bound ``valid`` to
it, the audit leaf that commits to its digest) is one journal entry: it commits with the
entries of concurrent issuances and verifications of the tenant, nothing is answered before
that commit, and an issuance that cannot commit (its status index already bound) fails
alone. Database round trips are counted with SQLAlchemy's event hooks (no timing).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from pavilion.audit.models import AuditLeaf
from pavilion.credentials.issuance import Issued, StatusEmbed
from pavilion.credentials.issuer_models import Issuance
from pavilion.credentials.status.models import StatusListEntry
from pavilion.credentials.templates import CredentialFormat
from pavilion.errors import Conflict
from pavilion.observability import stages
from pavilion.runtime import Runtime

STUDENT_VC = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}
#: Round trips of one issuance alone. PostgreSQL: BEGIN with set_config, one statement (leaf,
#: head, issuance row, status binding), COMMIT. SQLite: BEGIN, head read, leaf, head update,
#: the issuance row, the status binding, COMMIT.
ALONE_BUDGET = {"postgres": 3, "sqlite": 8}
#: Per issuance when twenty run at once: the batch's fixed cost is shared.
CONCURRENT_BUDGET = 2


@contextmanager
def round_trips(rt: Runtime) -> Iterator[Counter[str]]:
    """Statements, BEGINs, COMMITs and ROLLBACKs on the write engine while the block runs,
    and the round trips the journal makes on the driver's own connections (PostgreSQL)."""
    counts: Counter[str] = Counter()
    engine = rt.db.engine.sync_engine
    driver_before = rt.journal.driver_round_trips

    def listener(kind: str) -> Any:
        def count(*_: Any) -> None:
            counts[kind] += 1

        return count

    hooks = [
        (name, listener(kind))
        for name, kind in (
            ("before_cursor_execute", "statement"),
            ("begin", "begin"),
            ("commit", "commit"),
            ("rollback", "rollback"),
        )
    ]
    for name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        yield counts
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)
        if driver := rt.journal.driver_round_trips - driver_before:
            counts["driver"] += driver


async def _issue(rt: Runtime, tenant_id: str, status_lists: Any = None) -> Issued:
    issued = await rt.credentials.issue_vc_api(
        tenant_id,
        STUDENT_VC,
        fmt=CredentialFormat.SD_JWT_VC,
        status_lists=status_lists if status_lists is not None else rt.status_lists,
    )
    assert isinstance(issued, Issued)
    return issued


async def _leaf_events(rt: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        rows = (
            await session.execute(select(AuditLeaf.event).where(AuditLeaf.tenant_id == tenant_id))
        ).scalars()
        return [e if isinstance(e, dict) else json.loads(e) for e in rows]


async def test_concurrent_issuances_share_commits_with_their_rows_and_leaves(
    runtime: Runtime,
) -> None:
    tenant = (await runtime.tenancy.create_tenant("issue-journal")).id
    for _ in range(2):  # warm: the status pool, the issuing key and the audit head in memory
        await _issue(runtime, tenant)
    before = (runtime.journal.transactions, runtime.journal.writes)
    with round_trips(runtime) as trips:
        issued = await asyncio.gather(*(_issue(runtime, tenant) for _ in range(20)))
    transactions = runtime.journal.transactions - before[0]
    assert runtime.journal.writes - before[1] == 20
    assert transactions < 20  # shared commits
    assert sum(trips.values()) / 20 <= CONCURRENT_BUDGET, dict(trips)

    ids = {i.id for i in issued}
    async with runtime.db.transaction(tenant, readonly=True) as session:
        rows = {
            r.id: r
            for r in (await session.execute(select(Issuance).where(Issuance.id.in_(ids)))).scalars()
        }
        entries = {
            e.credential_id: e.state
            for e in (
                await session.execute(
                    select(StatusListEntry).where(StatusListEntry.credential_id.in_(ids))
                )
            ).scalars()
        }
    assert set(rows) == ids
    assert all(rows[i.id].digest == i.digest and rows[i.id].format == "sd_jwt_vc" for i in issued)
    assert entries == dict.fromkeys(ids, "valid")
    # Each leaf commits to its credential's digest: ids and hashes, never the credential.
    leaves = {e["credential_id"]: e for e in await _leaf_events(runtime, tenant)}
    for credential in issued:
        leaf = leaves[credential.id]
        assert leaf["kind"] == "credential_issued"
        assert leaf["credential_sha256"] == credential.digest
        assert credential.token not in json.dumps(leaf)
    report = await runtime.audit.verify(tenant)
    assert report.ok, report.problems
    assert report.size == 22


async def test_an_issuance_alone_stays_within_its_round_trips(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("issue-journal-alone")).id
    for _ in range(2):
        await _issue(runtime, tenant)
    with round_trips(runtime) as trips:
        for _ in range(5):
            await _issue(runtime, tenant)
    budget = ALONE_BUDGET["postgres" if runtime.db.is_postgres else "sqlite"]
    assert sum(trips.values()) / 5 <= budget, dict(trips)


class _ReusedReservation:
    """Status lists that hand out one reservation again and again (it binds only once)."""

    def __init__(self, rt: Runtime, reservation: StatusEmbed) -> None:
        self._rt = rt
        self._reservation = reservation

    async def reserve(self, tenant_id: str, kind: str = "token") -> StatusEmbed:
        return self._reservation

    def binding(self, tenant_id: str, reservation: Any, credential_id: str) -> Any:
        return self._rt.status_lists.binding(tenant_id, reservation, credential_id)

    async def resolve_status(self, list_uri: str, index: int) -> int:
        return await self._rt.status_lists.resolve_status(list_uri, index)


async def test_an_issuance_that_cannot_bind_its_status_fails_alone(runtime: Runtime) -> None:
    tenant = (await runtime.tenancy.create_tenant("issue-journal-conflict")).id
    reused = _ReusedReservation(runtime, await runtime.status_lists.reserve(tenant, "token"))
    first = await _issue(runtime, tenant, reused)  # binds the reservation
    results = await asyncio.gather(
        _issue(runtime, tenant),
        _issue(runtime, tenant, reused),  # the same index again: refused, with its reason
        _issue(runtime, tenant),
        return_exceptions=True,
    )
    assert isinstance(results[0], Issued)
    assert isinstance(results[1], Conflict)
    assert "not reserved" in str(results[1])
    assert isinstance(results[2], Issued)
    # The refused issuance left nothing: no row, no leaf; the others are whole.
    events = await _leaf_events(runtime, tenant)
    recorded = {e["credential_id"] for e in events}
    assert recorded == {first.id, results[0].id, results[2].id}
    async with runtime.db.transaction(tenant, readonly=True) as session:
        count = len((await session.execute(select(Issuance.id))).scalars().all())
    assert count == 3
    with pytest.raises(Conflict):
        await _issue(runtime, tenant, reused)
    assert (await runtime.audit.verify(tenant)).ok


async def test_an_issuance_is_charged_to_its_stages(runtime: Runtime) -> None:
    """With stage timing on, an issuance's CPU goes to admit, issue and persist."""
    tenant = (await runtime.tenancy.create_tenant("issue-journal-stages")).id
    loop = asyncio.get_running_loop()
    stages.enable(loop)
    try:
        before = stages.totals()
        await asyncio.create_task(_issue(runtime, tenant))
        after = stages.totals()
    finally:
        stages.disable(loop)
    for name in ("admit", "issue", "persist"):
        assert after.get(name, 0.0) > before.get(name, 0.0), name
