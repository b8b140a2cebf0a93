"""Status changes: revoke, suspend or reinstate a credential (audited), and read its status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update

from pavilion.audit.log import AuditLog, digest
from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.queries import group_lists
from pavilion.credentials.status.states import (
    StatusConflict,
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
from pavilion.store.database import Database


class StatusChanges:
    """Changes a credential's status in every list that publishes it, and reports it."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        config: StatusListConfig,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
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
                raise NotFound(
                    f"credential {credential_id} has no status list entry (unknown, or issued "
                    "without a status)"
                )
            lists = await group_lists(session, tenant_id, (e.group_id for e in entries))
            previous = entries[0].state
            target = transition(previous, checked)
            if checked == "suspend" and not all(
                supports_suspension(row.kind, row.bits) for row in lists
            ):
                raise StatusConflict(
                    f"credential {credential_id} is listed in a 1-bit token status list, which "
                    "cannot express suspension (use 2-bit lists: PAVILION_STATUS_LIST_BITS=2)"
                )
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
            receipt = await self._audit.append(
                session,
                tenant_id,
                {
                    "kind": "credential-status",
                    "credential_id": credential_id,
                    "action": checked,
                    "from": previous,
                    "to": target,
                    "entries": sorted(
                        [{"group": e.group_id, "idx": e.idx} for e in entries],
                        key=lambda item: (str(item["group"]), int(item["idx"])),
                    ),
                    "reason_sha256": digest(reason) if reason else None,
                    "actor": actor,
                    "at": now.isoformat(),
                },
            )
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
