"""A status change on SQLite as one transaction on the database's writer thread.

Through SQLAlchemy and aiosqlite a revocation was nine statements (the entries, their lists,
the entries' update, the lists' version, the audit head, leaf and head update, BEGIN and
COMMIT), each two or three hand-offs between the event loop and the driver's thread: about
30 hand-offs and 7 ms of CPU per revocation. Here the whole change runs in one function on
the writer thread (:class:`~pavilion.store.sqlite_batch.SqliteWriter`, the one the journal
uses): ``BEGIN IMMEDIATE``, the same reads and writes, the audit leaf, ``COMMIT`` (or
``ROLLBACK`` on any error). The writer holds SQLite's write lock for the whole transaction,
so the state read is the state changed (what ``FOR UPDATE`` does on PostgreSQL) and the
audit head read is the head extended. What is stored is what the SQLAlchemy path stores:
the same rows, the same values through the columns' own bind processors, the same leaf.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from sqlalchemy import Table

from pavilion.audit.journal import Batch, sqlite_batch, sqlite_head
from pavilion.audit.log import AuditLog
from pavilion.audit.merkle import CompactRange
from pavilion.credentials.status.models import StatusList
from pavilion.credentials.status.states import (
    Action,
    StatusConflict,
    supports_suspension,
    transition,
)
from pavilion.credentials.status.types import StatusChange
from pavilion.errors import NotFound
from pavilion.store.base import new_id
from pavilion.store.sqlite_batch import bound_values


def not_listed(credential_id: str) -> NotFound:
    return NotFound(
        f"credential {credential_id} has no status list entry (unknown, or issued without a status)"
    )


def cannot_suspend(credential_id: str) -> StatusConflict:
    return StatusConflict(
        f"credential {credential_id} is listed in a 1-bit token status list, which "
        "cannot express suspension (use 2-bit lists: PAVILION_STATUS_LIST_BITS=2)"
    )


def status_event(
    credential_id: str,
    action: Action,
    *,
    previous: str,
    target: str,
    entries: list[tuple[str, int]],
    reason_sha256: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """The audit event of a status change (``entries``: (group, idx) of each entry)."""
    return {
        "kind": "credential-status",
        "credential_id": credential_id,
        "action": action,
        "from": previous,
        "to": target,
        "entries": [{"group": group, "idx": idx} for group, idx in sorted(entries)],
        "reason_sha256": reason_sha256,
        "actor": actor,
        "at": now.isoformat(),
    }


def change_in_writer(
    connection: sqlite3.Connection,
    *,
    tenant_id: str,
    credential_id: str,
    action: Action,
    actor: str,
    reason_sha256: str | None,
    now: datetime,
) -> StatusChange:
    """Runs on the writer thread inside its transaction (raising rolls it back)."""
    entries = connection.execute(
        "SELECT group_id, idx, state FROM status_list_entries "
        "WHERE tenant_id = ? AND credential_id = ?",
        (tenant_id, credential_id),
    ).fetchall()
    if not entries:
        raise not_listed(credential_id)
    groups = sorted({str(group) for group, _, _ in entries})
    marks = ", ".join("?" for _ in groups)
    lists = connection.execute(
        f"SELECT id, kind, bits FROM status_lists WHERE tenant_id = ? AND group_id IN ({marks})",  # noqa: S608 - placeholders only
        (tenant_id, *groups),
    ).fetchall()
    previous = str(entries[0][2])
    target = transition(previous, action)
    if action == "suspend" and not all(supports_suspension(kind, bits) for _, kind, bits in lists):
        raise cannot_suspend(credential_id)
    if target == previous:
        return StatusChange(credential_id, action, previous, target, False, None)
    table: Table = StatusList.__table__  # type: ignore[assignment]
    (stamp,) = bound_values(table, {"updated_at": now})
    connection.execute(
        "UPDATE status_list_entries SET state = ?, updated_at = ? "
        "WHERE tenant_id = ? AND credential_id = ?",
        (target, stamp, tenant_id, credential_id),
    )
    if lists:
        ids = [str(row[0]) for row in lists]
        connection.execute(
            "UPDATE status_lists SET version = version + 1, updated_at = ? "  # noqa: S608 - placeholders only
            f"WHERE tenant_id = ? AND id IN ({', '.join('?' for _ in ids)})",
            (stamp, tenant_id, *ids),
        )
    event = status_event(
        credential_id,
        action,
        previous=previous,
        target=target,
        entries=[(str(group), int(idx)) for group, idx, _ in entries],
        reason_sha256=reason_sha256,
        actor=actor,
        now=now,
    )
    index = _append_leaf(connection, tenant_id, event)
    return StatusChange(credential_id, action, previous, target, True, index)


def _append_leaf(connection: sqlite3.Connection, tenant_id: str, event: dict[str, Any]) -> int:
    """The audit leaf, written as the journal writes a batch (head created on first use)."""
    connection.execute(
        "INSERT INTO audit_heads (id, tenant_id, size, compact_range) VALUES (?, ?, 0, ?) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        (new_id(), tenant_id, CompactRange().to_json()),
    )
    head = sqlite_head(connection, tenant_id=tenant_id)
    assert head is not None  # created above, and the writer holds the write lock
    receipts, leaves, after = AuditLog.plan_leaves(tenant_id, head, [event])
    sqlite_batch(
        connection, tenant_id=tenant_id, before=head, after=after, leaves=leaves, rows=Batch()
    )
    return receipts[0].index
