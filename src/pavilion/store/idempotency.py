"""Stored responses for ``Idempotency-Key`` replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.errors import Conflict
from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class IdempotencyRecord(TenantOwned, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("tenant_id", "scope", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(80), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    #: SHA-256 of the canonical request: the same key with another body is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


async def find_replay(
    session: AsyncSession, tenant_id: str, scope: str, key: str, request_hash: str
) -> IdempotencyRecord | None:
    """The stored outcome for this key, or None; a reused key with another body is refused."""
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == tenant_id,
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
            )
        )
    ).scalar_one_or_none()
    if record is not None and record.request_hash != request_hash:
        raise Conflict(
            "Idempotency-Key was already used with a different request body; "
            "use a new key for a new request"
        )
    return record
