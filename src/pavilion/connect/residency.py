"""Per-tenant adequacy lists: which further jurisdictions may serve the residents of one.

The tenant decides (its DPO, usually): for example, EU residents may also be served from UK
or CH regions under the European Commission's adequacy decisions. Routing reads the lists
for every verification (``pavilion.connect.routing.plan_route``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog
from pavilion.connect.models import ResidencyAdequacy
from pavilion.store.base import utcnow
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database


async def load_adequacy(session: AsyncSession, tenant_id: str) -> dict[str, tuple[str, ...]]:
    rows = (
        await session.execute(
            select(ResidencyAdequacy).where(ResidencyAdequacy.tenant_id == tenant_id)
        )
    ).scalars()
    return {row.residency: tuple(row.jurisdictions) for row in rows}


class ResidencyService:
    def __init__(
        self, db: Database, config: ConfigCache | None = None, audit: AuditLog | None = None
    ) -> None:
        self._db = db
        self._config = config if config is not None else ConfigCache(ttl=0)
        self._audit = audit  # every change of a list is a leaf of the tenant's audit log

    async def cached(self, tenant_id: str) -> dict[str, tuple[str, ...]]:
        """The lists from memory (``ConfigCache``), as the hot path reads them."""

        async def load() -> dict[str, tuple[str, ...]]:
            async with self._db.transaction(tenant_id, readonly=True) as session:
                return await load_adequacy(session, tenant_id)

        return await self._config.get(tenant_id, "adequacy", load)

    async def get(self, tenant_id: str) -> dict[str, tuple[str, ...]]:
        async with self._db.transaction(tenant_id) as session:
            return await load_adequacy(session, tenant_id)

    async def set(
        self, tenant_id: str, residency: str, jurisdictions: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """Replace the list for one residency; an empty list removes it."""
        unique = sorted(frozenset(jurisdictions))
        try:
            async with self._db.transaction(tenant_id) as session:
                await _replace(session, tenant_id, residency, unique)
                if self._audit is not None:
                    await self._audit.append(
                        session,
                        tenant_id,
                        {
                            "kind": "residency_adequacy_set",
                            "residency": residency,
                            "jurisdictions": unique,
                            "at": utcnow().isoformat(),
                        },
                    )
                return await load_adequacy(session, tenant_id)
        finally:
            self._config.invalidate(tenant_id)


async def _replace(
    session: AsyncSession, tenant_id: str, residency: str, jurisdictions: list[str]
) -> None:
    where = (ResidencyAdequacy.tenant_id == tenant_id, ResidencyAdequacy.residency == residency)
    if not jurisdictions:
        await session.execute(delete(ResidencyAdequacy).where(*where))
        return
    row = (await session.execute(select(ResidencyAdequacy).where(*where))).scalar_one_or_none()
    if row is None:
        session.add(
            ResidencyAdequacy(tenant_id=tenant_id, residency=residency, jurisdictions=jurisdictions)
        )
    else:
        row.jurisdictions = jurisdictions
        row.updated_at = utcnow()
    await session.flush()
