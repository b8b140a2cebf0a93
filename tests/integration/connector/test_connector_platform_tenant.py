"""Workers start at once: each makes sure the platform tenant exists, and only one inserts it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.runtime import Runtime
from pavilion.tenancy.models import PLATFORM_TENANT_ID, Tenant


async def test_a_worker_that_loses_the_race_to_create_the_platform_tenant_still_starts(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await runtime.tenancy.ensure_platform_tenant()  # the winner's row
    real_get = AsyncSession.get
    looked = 0

    async def not_yet_committed(self: AsyncSession, model: Any, ident: Any, **kw: Any) -> Any:
        nonlocal looked
        if model is Tenant and ident == PLATFORM_TENANT_ID and looked == 0:
            looked += 1
            return None  # the other worker had not committed when this one looked
        return await real_get(self, model, ident, **kw)

    monkeypatch.setattr(AsyncSession, "get", not_yet_committed)
    await runtime.tenancy.ensure_platform_tenant()  # its insert meets the row: no error
    assert looked == 1
    async with runtime.db.transaction(None, readonly=True) as session:
        platform = await session.get(Tenant, PLATFORM_TENANT_ID)
    assert platform is not None
    assert platform.name == "platform"
