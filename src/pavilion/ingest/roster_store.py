"""Where a provider's canonical roster lives: the ``RosterStore`` interface and its SQL
implementation, one row of canonical JSON per subject. ``Runtime.rosters`` holds the one a
process uses; a roster upload replaces a provider's records in the upload's transaction.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

import polars as pl
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.ingest.models import RosterRecord
from pavilion.ingest.pipeline import lines_digest

#: Rows per INSERT statement when a batch is written (all inside one transaction).
INSERT_CHUNK: Final = 5_000


# -- storage of canonical rosters ------------------------------------------------------------


class RosterStore(Protocol):
    """Where a provider's canonical roster lives (records keyed by subject)."""

    async def replace(
        self,
        session: AsyncSession,
        tenant_id: str,
        provider_id: str,
        batch_id: str,
        records: pl.DataFrame,
    ) -> None: ...

    async def digest(
        self, session: AsyncSession, tenant_id: str, provider_id: str
    ) -> tuple[int, str, set[str]]: ...

    async def get(
        self, session: AsyncSession, tenant_id: str, provider_id: str, subject_key: str
    ) -> dict[str, Any] | None: ...


class SqlRosterStore:
    """Canonical JSON per subject in ``ingest_roster_records`` (tenant-owned, RLS)."""

    async def replace(
        self,
        session: AsyncSession,
        tenant_id: str,
        provider_id: str,
        batch_id: str,
        records: pl.DataFrame,
    ) -> None:
        await session.execute(
            delete(RosterRecord).where(
                RosterRecord.tenant_id == tenant_id, RosterRecord.provider_id == provider_id
            )
        )
        for start in range(0, records.height, INSERT_CHUNK):
            chunk = records.slice(start, INSERT_CHUNK)
            await session.execute(
                insert(RosterRecord),
                [
                    {
                        "tenant_id": tenant_id,
                        "provider_id": provider_id,
                        "subject_key": key,
                        "batch_id": batch_id,
                        "record": text,
                    }
                    for key, text in chunk.iter_rows()
                ],
            )

    async def digest(
        self, session: AsyncSession, tenant_id: str, provider_id: str
    ) -> tuple[int, str, set[str]]:
        """(records, output digest, batch ids) recomputed from storage, in key order."""
        rows = (
            await session.execute(
                select(RosterRecord.subject_key, RosterRecord.record, RosterRecord.batch_id).where(
                    RosterRecord.tenant_id == tenant_id, RosterRecord.provider_id == provider_id
                )
            )
        ).all()
        ordered = sorted(rows, key=lambda r: r[0])
        return len(ordered), lines_digest(r[1] for r in ordered), {r[2] for r in ordered}

    async def get(
        self, session: AsyncSession, tenant_id: str, provider_id: str, subject_key: str
    ) -> dict[str, Any] | None:
        text = (
            await session.execute(
                select(RosterRecord.record).where(
                    RosterRecord.tenant_id == tenant_id,
                    RosterRecord.provider_id == provider_id,
                    RosterRecord.subject_key == subject_key,
                )
            )
        ).scalar_one_or_none()
        return None if text is None else dict(json.loads(text))
