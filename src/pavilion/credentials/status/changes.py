"""Status changes: revoke, suspend or reinstate a credential (audited), and read its status.

On SQLite with the database's writer thread (the runtime passes the journal's) a change is one
hand-off to it (:mod:`pavilion.credentials.status.change_sqlite`); otherwise (PostgreSQL, an
in-memory database) it is one SQLAlchemy transaction. Both store the same rows and leaf.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy import select, update

from pavilion.audit.log import AuditLog, digest
from pavilion.credentials.status.change_sqlite import (
    cannot_suspend,
    change_in_writer,
    not_listed,
    status_event,
)
from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.queries import group_lists
from pavilion.credentials.status.states import (
    check_action,
    list_value,
    supports_suspension,
    transition,
)
from pavilion.credentials.status.types import (
    CredentialStatus,
    PublishedEntry,
    StatusChange,
    StatusListConfig,
    list_uri,
)
from pavilion.errors import InvalidRequest, NotFound
from pavilion.store.database import Database, raise_driver_error
from pavilion.store.sqlite_batch import SqliteWriter


class StatusChanges:
    """Changes a credential's status in every list that publishes it, and reports it."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        config: StatusListConfig,
        *,
        clock: Callable[[], datetime],
        writer: SqliteWriter | None = None,
    ) -> None:
        self._db = db
        self._writer = writer
        self._audit = audit
        self._clock = clock
        self._base = config.base_url.rstrip("/")

    async def change_status(
        self,
        tenant_id: str,
        credential_id: str,
        action: str,
        *,
        actor: str,
        reason: str | None = None,
    ) -> StatusChange:
        """Revoke, suspend or reinstate a credential; audited in the tenant's log."""
        checked = check_action(action)
        if reason is not None and len(reason) > 500:
            raise InvalidRequest("reason must be at most 500 characters", field="reason")
        now = self._clock()
        reason_sha256 = digest(reason) if reason else None
        if self._writer is not None:
            work = partial(
                change_in_writer,
                tenant_id=tenant_id,
                credential_id=credential_id,
                action=checked,
                actor=actor,
                reason_sha256=reason_sha256,
                now=now,
            )
            try:
                return await self._writer.transaction(work)
            except sqlite3.Error as exc:
                raise_driver_error(exc)
        async with self._db.transaction(tenant_id) as session:
            entries = list(
                (
                    await session.execute(
                        select(StatusListEntry)
                        .where(
                            StatusListEntry.tenant_id == tenant_id,
                            StatusListEntry.credential_id == credential_id,
                        )
                        .with_for_update()
                    )
                ).scalars()
            )
            if not entries:
                raise not_listed(credential_id)
            lists = await group_lists(session, tenant_id, (e.group_id for e in entries))
            previous = entries[0].state
            target = transition(previous, checked)
            if checked == "suspend" and not all(
                supports_suspension(row.kind, row.bits) for row in lists
            ):
                raise cannot_suspend(credential_id)
            if target == previous:
                return StatusChange(credential_id, checked, previous, target, False, None)
            for entry in entries:
                entry.state = target
                entry.updated_at = now
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == tenant_id,
                    StatusList.id.in_([row.id for row in lists]),
                )
                .values(version=StatusList.version + 1, updated_at=now)
            )
            event = status_event(
                credential_id,
                checked,
                previous=previous,
                target=target,
                entries=[(str(e.group_id), int(e.idx)) for e in entries],
                reason_sha256=reason_sha256,
                actor=actor,
                now=now,
            )
            receipt = await self._audit.append(session, tenant_id, event)
        return StatusChange(credential_id, checked, previous, target, True, receipt.index)

    async def credential_status(self, tenant_id: str, credential_id: str) -> CredentialStatus:
        """A credential's state and where it is published."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            entries = list(
                (
                    await session.execute(
                        select(StatusListEntry).where(
                            StatusListEntry.tenant_id == tenant_id,
                            StatusListEntry.credential_id == credential_id,
                        )
                    )
                ).scalars()
            )
            if not entries:
                raise NotFound(f"credential {credential_id} has no status list entry")
            lists = await group_lists(session, tenant_id, (e.group_id for e in entries))
            by_group: dict[str, list[StatusList]] = {}
            for row in lists:
                by_group.setdefault(row.group_id, []).append(row)
        return CredentialStatus(
            credential_id=credential_id,
            state=entries[0].state,
            lists=[
                PublishedEntry(
                    uri=list_uri(self._base, row.kind, row.id),
                    kind=row.kind,
                    purpose=row.purpose,
                    idx=entry.idx,
                    value=list_value(row.kind, row.purpose, entry.state),
                )
                for entry in entries
                for row in sorted(by_group[entry.group_id], key=lambda r: r.purpose)
            ],
        )
