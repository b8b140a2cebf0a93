"""Group commit on the real databases: shared transactions, nothing acknowledged uncommitted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.group_commit import GroupCommit
from pavilion.credentials.issuer_models import CredentialDefault
from pavilion.errors import Conflict
from pavilion.runtime import Runtime


def _row(tenant_id: str, claim_type: str) -> CredentialDefault:
    return CredentialDefault(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        claim_type=claim_type,
        template_id="x@1",
        format="jwt_vc",
    )


async def _count(rt: Runtime, tenant_id: str) -> int:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        return int(
            (
                await session.execute(
                    select(func.count()).where(CredentialDefault.tenant_id == tenant_id)
                )
            ).scalar_one()
        )


async def test_concurrent_writes_share_transactions_and_all_commit(runtime: Runtime) -> None:
    tenant = await runtime.tenancy.create_tenant("tenant-gc")
    writer = GroupCommit(runtime.db, max_batch=16)

    def write(claim_type: str) -> Awaitable[None]:
        async def work(session: AsyncSession) -> None:
            session.add(_row(tenant.id, claim_type))

        return writer.write(tenant.id, work)

    await asyncio.gather(*(write(f"claim-{i}") for i in range(40)))
    assert await _count(runtime, tenant.id) == 40
    assert writer.writes == 40
    assert 3 <= writer.transactions < 40  # 16 + 16 + 8 at most, shared under load
    await write("alone")
    assert await _count(runtime, tenant.id) == 41


async def test_a_failing_write_fails_alone(runtime: Runtime) -> None:
    tenant = await runtime.tenancy.create_tenant("tenant-gc2")
    writer = GroupCommit(runtime.db)

    async def good(session: AsyncSession, claim_type: str) -> None:
        session.add(_row(tenant.id, claim_type))

    async def bad(session: AsyncSession) -> None:
        raise Conflict("this one conflicts")

    results = await asyncio.gather(
        writer.write(tenant.id, lambda s: good(s, "a")),
        writer.write(tenant.id, bad),
        writer.write(tenant.id, lambda s: good(s, "b")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], Conflict)
    assert results[2] is None
    assert await _count(runtime, tenant.id) == 2
    with pytest.raises(Conflict):
        await writer.write(tenant.id, bad)
