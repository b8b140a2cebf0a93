"""Stored responses for ``Idempotency-Key`` replays."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Answer:
    request_hash: str
    status_code: int
    response: dict[str, Any]


class RecentAnswers:
    """The answers this worker recently stored under an ``Idempotency-Key``, in memory.

    A replay that reaches the worker which answered is served from here without a database
    read; one that reaches another worker is found when its write meets the stored record's
    unique key (and is then answered from the record). Bounded by count and by age.
    """

    def __init__(self, *, max_entries: int = 10_000, ttl_seconds: float = 600.0) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._answers: OrderedDict[tuple[str, str, str], tuple[float, Answer]] = OrderedDict()

    def get(self, tenant_id: str, scope: str, key: str, request_hash: str) -> Answer | None:
        found = self._answers.get((tenant_id, scope, key))
        if found is None:
            return None
        stored_at, answer = found
        if time.monotonic() - stored_at > self._ttl:
            del self._answers[(tenant_id, scope, key)]
            return None
        if answer.request_hash != request_hash:
            raise Conflict(
                "Idempotency-Key was already used with a different request body; "
                "use a new key for a new request"
            )
        return answer

    def put(self, tenant_id: str, scope: str, key: str, answer: Answer) -> None:
        self._answers[(tenant_id, scope, key)] = (time.monotonic(), answer)
        if len(self._answers) > self._max:
            self._answers.popitem(last=False)
