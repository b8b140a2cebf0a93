"""On SQLite a status change runs on the writer thread in one hand-off, and stores exactly what
the SQLAlchemy transaction stores: the entries' state and time, the lists' version, the same
audit leaf (the log still verifies), the same answers and refusals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.credentials.status.states import StatusConflict
from pavilion.errors import NotFound
from pavilion.runtime import Runtime

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
BASE = "https://issuer.example"
NOW = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def service(rt: Runtime, *, writer: bool, bits: int) -> StatusListService:
    return StatusListService(
        rt.db,
        rt.keystore,
        rt.audit,
        StatusListConfig(base_url=BASE, issuer=BASE, token_bits=bits, token_size=64),
        clock=lambda: NOW,
        writer=rt.journal.sqlite_writer if writer else None,
    )


async def bound(svc: StatusListService, rt: Runtime, kind: str) -> str:
    reservation = await svc.reserve(TENANT, kind)
    credential_id = str(uuid.uuid4())
    async with rt.db.transaction(TENANT) as session:
        await svc.bind(session, TENANT, reservation, credential_id)
    return credential_id


async def stored(rt: Runtime, credential_id: str) -> dict[str, Any]:
    """The entries' states and times and their lists' versions, as SQLAlchemy reads them."""
    async with rt.db.transaction(TENANT, readonly=True) as session:
        entries = (
            await session.execute(
                select(StatusListEntry).where(StatusListEntry.credential_id == credential_id)
            )
        ).scalars()
        rows = [(e.group_id, e.state, e.updated_at) for e in entries]
        versions = {
            row.purpose: (row.version, row.updated_at)
            for row in (
                await session.execute(
                    select(StatusList).where(StatusList.group_id.in_({g for g, _, _ in rows}))
                )
            ).scalars()
        }
    return {"entries": [(state, at) for _, state, at in rows], "lists": versions}


async def run(rt: Runtime, *, writer: bool, kind: str, bits: int) -> list[dict[str, Any]]:
    """Suspend, suspend again (no change), reinstate, revoke, then refused changes."""
    svc = service(rt, writer=writer, bits=bits)
    credential = await bound(svc, rt, kind)
    start = {
        purpose: version
        for purpose, (version, _) in (await stored(rt, credential))["lists"].items()
    }
    seen: list[dict[str, Any]] = []
    for action in ("suspend", "suspend", "reinstate", "revoke"):
        change = await svc.change_status(TENANT, credential, action, actor="admin", reason="why")
        leaf = (
            await rt.audit.leaf(TENANT, change.audit_index)
            if change.audit_index is not None
            else None
        )
        event = dict(leaf["event"]) if leaf is not None else None
        if event is not None:
            assert event.pop("credential_id") == credential
            event["entries"] = len(event["entries"])  # each run has its own indices
        now_stored = await stored(rt, credential)
        now_stored["lists"] = {  # versions counted from this run's start (lists are shared)
            purpose: (version - start[purpose], at)
            for purpose, (version, at) in now_stored["lists"].items()
        }
        seen.append(
            {
                "change": (change.action, change.previous, change.state, change.changed),
                "leaf": event,
                "stored": now_stored,
            }
        )
    with pytest.raises(StatusConflict):
        await svc.change_status(TENANT, credential, "reinstate", actor="admin")
    with pytest.raises(NotFound, match="no status list entry"):
        await svc.change_status(TENANT, str(uuid.uuid4()), "revoke", actor="admin")
    return seen


@pytest.mark.parametrize(("kind", "bits"), [("token", 2), ("bitstring", 1)])
async def test_the_writer_path_stores_what_the_sqlalchemy_path_stores(
    runtime: Runtime, kind: str, bits: int
) -> None:
    if runtime.journal.sqlite_writer is None:
        pytest.skip("the writer thread is SQLite's")
    assert runtime.status_lists._changes._writer is runtime.journal.sqlite_writer
    hand_offs = runtime.journal.sqlite_writer.hand_offs
    through_writer = await run(runtime, writer=True, kind=kind, bits=bits)
    assert runtime.journal.sqlite_writer.hand_offs == hand_offs + 6  # one per change
    through_sqlalchemy = await run(runtime, writer=False, kind=kind, bits=bits)
    assert through_writer == through_sqlalchemy
    assert [s["change"] for s in through_writer] == [
        ("suspend", "valid", "suspended", True),
        ("suspend", "suspended", "suspended", False),
        ("reinstate", "suspended", "valid", True),
        ("revoke", "valid", "revoked", True),
    ]
    last = through_writer[-1]
    naive = NOW.replace(tzinfo=None)  # SQLite's DATETIME reads back without the offset
    assert last["stored"]["entries"] == [("revoked", naive)]
    assert {version for version, _ in last["stored"]["lists"].values()} == {3}
    assert {at for _, at in last["stored"]["lists"].values()} == {naive}
    assert last["leaf"]["at"] == NOW.isoformat()
    assert (await runtime.audit.verify(TENANT)).ok


async def test_suspension_in_a_one_bit_list_is_refused_and_changes_nothing(
    runtime: Runtime,
) -> None:
    if runtime.journal.sqlite_writer is None:
        pytest.skip("the writer thread is SQLite's")
    svc = service(runtime, writer=True, bits=1)
    credential = await bound(svc, runtime, "token")
    before = await stored(runtime, credential)
    with pytest.raises(StatusConflict, match="cannot express suspension"):
        await svc.change_status(TENANT, credential, "suspend", actor="admin")
    assert await stored(runtime, credential) == before
    assert (await runtime.audit.verify(TENANT)).ok
