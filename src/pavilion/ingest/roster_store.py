"""Where a provider's canonical roster lives: the ``RosterStore`` interface and its SQL
implementation, one sealed record per subject. ``Runtime.rosters`` holds the one a process
uses; a roster upload replaces a provider's records in the upload's transaction.

Records are personal data (names, birth dates, ids): each is sealed with the tenant's data key
(AES-256-GCM, the tenant, table, provider and pseudonym as associated data) and keyed by the
subject's keyed pseudonym (HMAC under the tenant's key of the normalised subject id), never by
the id itself (``tenancy.sealing``). Crypto-shredding the tenant leaves them unreadable.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import polars as pl
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.ingest.canonical import SUBJECT_KEY
from pavilion.ingest.models import RosterRecord
from pavilion.ingest.pipeline import lines_digest
from pavilion.parsing import loads_json
from pavilion.tenancy.sealing import TenantSealer, record_aad
from pavilion.tenancy.service import TenantKeys

#: Rows per INSERT statement when a batch is written (all inside one transaction).
INSERT_CHUNK: Final = 5_000
TABLE: Final = "ingest_roster_records"


def record_id(provider_id: str, subject_ref: str) -> str:
    """The record's identity in its sealed value's associated data."""
    return f"{provider_id}/{subject_ref}"


def seal_records(
    sealer: TenantSealer, provider_id: str, batch_id: str, rows: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """(subject id, canonical JSON) pairs as rows to insert: pseudonym and sealed record."""
    tenant_id = sealer.tenant_id
    out = []
    for key, text in rows:
        ref = sealer.pseudonym(key)
        out.append(
            {
                "tenant_id": tenant_id,
                "provider_id": provider_id,
                "subject_ref": ref,
                "batch_id": batch_id,
                "sealed": sealer.seal(
                    text.encode("utf-8"), record_aad(tenant_id, TABLE, record_id(provider_id, ref))
                ),
            }
        )
    return out


def open_record(sealer: TenantSealer, provider_id: str, subject_ref: str, sealed: bytes) -> str:
    """A sealed record's canonical JSON (CryptoError when it was altered or moved)."""
    aad = record_aad(sealer.tenant_id, TABLE, record_id(provider_id, subject_ref))
    return sealer.open(sealed, aad).decode("utf-8")


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
    """Sealed canonical JSON per subject pseudonym in ``ingest_roster_records`` (RLS)."""

    def __init__(self, keys: TenantKeys) -> None:
        self._keys = keys

    async def replace(
        self,
        session: AsyncSession,
        tenant_id: str,
        provider_id: str,
        batch_id: str,
        records: pl.DataFrame,
    ) -> None:
        sealer = await self._keys.sealer(session, tenant_id)
        await session.execute(
            delete(RosterRecord).where(
                RosterRecord.tenant_id == tenant_id, RosterRecord.provider_id == provider_id
            )
        )
        for start in range(0, records.height, INSERT_CHUNK):
            chunk = list(records.slice(start, INSERT_CHUNK).iter_rows())
            # Sealing a chunk costs a few milliseconds: off the event loop.
            rows = await asyncio.to_thread(seal_records, sealer, provider_id, batch_id, chunk)
            await session.execute(insert(RosterRecord), rows)

    async def digest(
        self, session: AsyncSession, tenant_id: str, provider_id: str
    ) -> tuple[int, str, set[str]]:
        """(records, output digest, batch ids) recomputed from storage, in subject id order
        (every record is opened: pseudonyms do not sort like the ids)."""
        sealer = await self._keys.sealer(session, tenant_id)
        rows = (
            await session.execute(
                select(RosterRecord.subject_ref, RosterRecord.sealed, RosterRecord.batch_id).where(
                    RosterRecord.tenant_id == tenant_id, RosterRecord.provider_id == provider_id
                )
            )
        ).all()
        texts = [open_record(sealer, provider_id, ref, sealed) for ref, sealed, _ in rows]
        ordered = sorted(texts, key=_subject_of)
        return len(ordered), lines_digest(ordered), {r[2] for r in rows}

    async def get(
        self, session: AsyncSession, tenant_id: str, provider_id: str, subject_key: str
    ) -> dict[str, Any] | None:
        """The canonical record of the subject whose id is ``subject_key``, or None."""
        sealer = await self._keys.sealer(session, tenant_id)
        ref = sealer.pseudonym(subject_key)
        sealed = (
            await session.execute(
                select(RosterRecord.sealed).where(
                    RosterRecord.tenant_id == tenant_id,
                    RosterRecord.provider_id == provider_id,
                    RosterRecord.subject_ref == ref,
                )
            )
        ).scalar_one_or_none()
        if sealed is None:
            return None
        return dict(loads_json(open_record(sealer, provider_id, ref, sealed)))


def _subject_of(text: str) -> str:
    return str(loads_json(text)[SUBJECT_KEY])
