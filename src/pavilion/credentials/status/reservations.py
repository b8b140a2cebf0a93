"""Status-list indices for credentials about to be signed: reserved in batches, then bound.

:meth:`IndexAllocator.reserve` hands out a random, never used index of the tenant's open group.
Indices are drawn by :func:`~pavilion.credentials.status.allocation.allocate_index` over this
process's view of the used ones and inserted as ``reserved`` entries, a batch per transaction
(``reserve_batch`` at first, doubling up to ``reserve_batch_max`` while batches last under a
second: a busy process pays one transaction per few hundred credentials, a quiet one leaves
few unused), with ``ON CONFLICT DO NOTHING``: the
``UNIQUE(group_id, idx)`` constraint, not a lock, settles a race with another process (its
index is skipped, and a process that keeps losing re-reads the used set). The batch is then
handed out from memory, and the next batch is reserved in the background once the pool holds
less than one batch, so under load no caller waits for that transaction (on SQLite it queues
behind the journal's commits for the single write lock: a second and more at 100
verifications in flight, every caller of the tenant waiting). :meth:`IndexAllocator.bind`
marks a reservation ``valid`` for its credential in the transaction that records the
credential. When every index of a group is taken the group is marked ``full`` and a new one
opens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.journal import Transition
from pavilion.credentials.status.allocation import StatusListFull, allocate_index
from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.states import (
    ListKind,
    check_kind,
)
from pavilion.credentials.status.types import (
    ReservedList,
    StatusListConfig,
    StatusReservation,
    list_uri,
    new_list_id,
)
from pavilion.errors import Conflict, InvalidRequest, StorageUnavailable
from pavilion.observability.logging import get_logger
from pavilion.store.base import new_id
from pavilion.store.database import Database

log = get_logger(__name__)

#: Reservation attempts before giving up (each failed one is a race lost to another process).
MAX_RESERVE_ATTEMPTS = 64
#: Random draws before allocate_index scans a nearly full list for its free indices.
DRAWS_BEFORE_SCAN = 1024
#: A batch handed out faster than this (seconds) makes the next one twice as large.
BUSY_REFILL_SECONDS = 1.0


@dataclass
class _Group:
    """A group of lists (one index space) and this process's view of its used indices."""

    tenant_id: str
    kind: ListKind
    group_id: str
    size: int
    lists: tuple[ReservedList, ...]
    used: set[int] = field(default_factory=set)
    #: Indices reserved in the database and not handed out yet (this process only).
    pool: list[tuple[int, str]] = field(default_factory=list)
    conflicts: int = 0
    #: Indices the next refill reserves, and when the last one ran (monotonic seconds).
    batch: int = 0
    refilled_at: float | None = None
    #: A background refill found no free index left (the pool still serves what it holds).
    exhausted: bool = False


class IndexAllocator:
    """Reserves and binds status-list indices for the tenants' credentials."""

    def __init__(
        self, db: Database, config: StatusListConfig, *, clock: Callable[[], datetime]
    ) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._groups: dict[tuple[str, str], _Group] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: Background refills in flight, one per group key (a reference keeps each alive).
        self._refilling: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._base = config.base_url.rstrip("/")

    async def reserve(self, tenant_id: str, kind: str = "token") -> StatusReservation:
        """Reserve a random, never used index of the tenant's open list of ``kind``.

        Served from this process's pool of reserved indices; an empty pool is refilled with
        one batch (one transaction) of random free indices.
        """
        checked = check_kind(kind)
        key = (tenant_id, checked)
        for _ in range(MAX_RESERVE_ATTEMPTS):
            group = await self._open_group(tenant_id, checked)
            if group.pool:
                idx, entry_id = group.pool.pop()
                if (
                    len(group.pool) < group.batch
                    and not group.exhausted
                    and key not in self._refilling
                ):
                    self._refill_behind(key, group)
                return StatusReservation(
                    tenant_id, checked, group.group_id, idx, entry_id, group.lists
                )
            async with self._lock(key):
                if self._groups.get(key) is not group or group.pool:
                    continue  # another caller refilled it, or rolled the list over
                if not await self._refill(group):
                    await self._close_group(group)
        raise StorageUnavailable(  # contention that a retry resolves
            f"could not reserve a status list index after {MAX_RESERVE_ATTEMPTS} attempts"
        )

    def _refill_behind(self, key: tuple[str, str], group: _Group) -> None:
        """Reserve the next batch in a task of its own while the pool still serves callers."""

        async def refill() -> None:
            try:
                async with self._lock(key):
                    wanted = self._groups.get(key) is group and len(group.pool) < group.batch
                    if wanted and not await self._refill(group):
                        # Nothing left to reserve: the pool serves what it holds, and the
                        # caller that finds it empty closes the group.
                        group.exhausted = True
            except Exception as exc:  # a caller that finds the pool empty refills it inline
                log.warning("status index refill failed", error=type(exc).__name__, kind=key[1])
            finally:
                self._refilling.pop(key, None)

        self._refilling[key] = asyncio.get_running_loop().create_task(refill())

    async def aclose(self) -> None:
        """Wait for the refills running in the background (before the database closes)."""
        await asyncio.gather(*self._refilling.values(), return_exceptions=True)

    async def _refill(self, group: _Group) -> bool:
        """Reserve a batch of random free indices; ``False`` when the group has none left."""
        now = time.monotonic()
        if group.batch == 0:
            group.batch = self._config.reserve_batch
        elif group.refilled_at is not None and now - group.refilled_at < BUSY_REFILL_SECONDS:
            group.batch = min(group.batch * 2, self._config.reserve_batch_max)
        group.refilled_at = now
        wanted: list[int] = []
        for _ in range(group.batch):
            try:
                idx = allocate_index(group.size, group.used, max_attempts=DRAWS_BEFORE_SCAN)
            except StatusListFull:
                break
            group.used.add(idx)
            wanted.append(idx)
        if not wanted:
            return False
        reserved = await self._insert_reserved(group, wanted)
        group.pool.extend(reserved)
        group.conflicts += len(wanted) - len(reserved)  # taken by another process first
        if group.conflicts >= 16:
            group.conflicts = 0
            await self._resync(group)
        return True

    async def bind(
        self,
        session: AsyncSession,
        tenant_id: str,
        reservation: StatusReservation,
        credential_id: str,
    ) -> None:
        """Mark a reserved index ``valid`` for ``credential_id``, in the caller's transaction."""
        if reservation.tenant_id != tenant_id:
            raise InvalidRequest("the reservation belongs to another tenant", field="tenant_id")
        result = await session.execute(
            update(StatusListEntry)
            .where(
                StatusListEntry.tenant_id == tenant_id,
                StatusListEntry.id == reservation.entry_id,
                StatusListEntry.state == "reserved",
            )
            .values(credential_id=credential_id, state="valid", updated_at=self._clock())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"status index {reservation.idx} of group {reservation.group_id} is not reserved "
                "(already bound to a credential)"
            )

    def binding(
        self, tenant_id: str, reservation: StatusReservation, credential_id: str
    ) -> Transition:
        """``bind`` as a guarded change that the journal applies with its batch."""
        if reservation.tenant_id != tenant_id:
            raise InvalidRequest("the reservation belongs to another tenant", field="tenant_id")
        return Transition(
            model=StatusListEntry,
            row_id=reservation.entry_id,
            guard="state",
            expected="reserved",
            values={"credential_id": credential_id, "state": "valid", "updated_at": self._clock()},
            conflict=f"status index {reservation.idx} of group {reservation.group_id} is not "
            "reserved (already bound to a credential)",
        )

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _open_group(self, tenant_id: str, kind: ListKind) -> _Group:
        key = (tenant_id, kind)
        group = self._groups.get(key)
        if group is not None:
            return group
        async with self._lock(key):
            group = self._groups.get(key)
            if group is None:
                group = await self._load_open_group(tenant_id, kind) or await self._create_group(
                    tenant_id, kind
                )
                self._groups[key] = group
            return group

    async def _load_open_group(self, tenant_id: str, kind: ListKind) -> _Group | None:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            newest = (
                await session.execute(
                    select(StatusList.group_id)
                    .where(
                        StatusList.tenant_id == tenant_id,
                        StatusList.kind == kind,
                        StatusList.state == "open",
                    )
                    .order_by(StatusList.created_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newest is None:
                return None
            rows = await self._group_lists(session, tenant_id, newest)
            used = await self._used(session, tenant_id, newest)
        return self._group_of(tenant_id, kind, rows, used)

    async def _group_lists(
        self, session: AsyncSession, tenant_id: str, group_id: str
    ) -> list[StatusList]:
        rows = (
            await session.execute(
                select(StatusList).where(
                    StatusList.tenant_id == tenant_id, StatusList.group_id == group_id
                )
            )
        ).scalars()
        order = {"status": 0, "revocation": 0, "suspension": 1}
        return sorted(rows, key=lambda r: order[r.purpose])

    async def _used(self, session: AsyncSession, tenant_id: str, group_id: str) -> set[int]:
        rows = await session.execute(
            select(StatusListEntry.idx).where(
                StatusListEntry.tenant_id == tenant_id, StatusListEntry.group_id == group_id
            )
        )
        return set(rows.scalars())

    def _group_of(
        self, tenant_id: str, kind: ListKind, rows: list[StatusList], used: set[int]
    ) -> _Group:
        lists = tuple(ReservedList(r.id, r.purpose, list_uri(self._base, kind, r.id)) for r in rows)
        return _Group(tenant_id, kind, rows[0].group_id, rows[0].size, lists, used)

    async def _create_group(self, tenant_id: str, kind: ListKind) -> _Group:
        now = self._clock()
        specs: list[tuple[str, int, int]]
        if kind == "token":
            specs = [("status", self._config.token_bits, self._config.token_size)]
        else:
            size = self._config.bitstring_size
            specs = [("revocation", 1, size), ("suspension", 1, size)]
        ids = [new_list_id(tenant_id) for _ in specs]
        rows = [
            StatusList(
                id=list_id,
                tenant_id=tenant_id,
                group_id=ids[0],
                kind=kind,
                purpose=purpose,
                bits=bits,
                size=size,
                state="open",
                version=0,
                created_at=now,
                updated_at=now,
            )
            for list_id, (purpose, bits, size) in zip(ids, specs, strict=True)
        ]
        async with self._db.transaction(tenant_id) as session:
            session.add_all(rows)
        return self._group_of(tenant_id, kind, rows, set())

    async def _close_group(self, group: _Group) -> None:
        """Mark a group full and forget it (the caller holds the group's lock)."""
        async with self._db.transaction(group.tenant_id) as session:
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == group.tenant_id,
                    StatusList.group_id == group.group_id,
                )
                .values(state="full", updated_at=self._clock())
            )
        key = (group.tenant_id, group.kind)
        if self._groups.get(key) is group:
            del self._groups[key]

    async def _resync(self, group: _Group) -> None:
        async with self._db.transaction(group.tenant_id, readonly=True) as session:
            group.used |= await self._used(session, group.tenant_id, group.group_id)

    async def _insert_reserved(self, group: _Group, indices: list[int]) -> list[tuple[int, str]]:
        """Insert ``reserved`` entries; the ones another process took already are skipped.

        One prepared insert run over the batch (``executemany``, compiled once per process),
        then the rows that went in, found by their new ids, in the same transaction.
        """
        now = self._clock()
        rows = [
            {
                "id": new_id(),
                "tenant_id": group.tenant_id,
                "group_id": group.group_id,
                "idx": idx,
                "state": "reserved",
                "created_at": now,
                "updated_at": now,
            }
            for idx in indices
        ]
        statement = _insert_or_skip(self._db.is_postgres)
        async with self._db.transaction(group.tenant_id) as session:
            await session.execute(statement, rows)
            inserted = (
                await session.execute(
                    _INSERTED, {"tenant_id": group.tenant_id, "ids": [row["id"] for row in rows]}
                )
            ).all()
        order = {idx: position for position, idx in enumerate(indices)}
        return sorted(((row[0], row[1]) for row in inserted), key=lambda item: order[item[0]])


#: The entries of a batch that went in (an index another process took keeps its own id).
_INSERTED = select(StatusListEntry.idx, StatusListEntry.id).where(
    StatusListEntry.tenant_id == bindparam("tenant_id"),
    StatusListEntry.id.in_(bindparam("ids", expanding=True)),
)


def _insert_or_skip(postgres: bool) -> Any:
    """``INSERT ... ON CONFLICT (group_id, idx) DO NOTHING`` in the database's dialect."""
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    return dialect_insert(StatusListEntry).on_conflict_do_nothing(
        index_elements=["group_id", "idx"]
    )
