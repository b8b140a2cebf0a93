"""Roster upload batches in the database: the batch row, its quarantined rows, its integrity
check against the signed manifest, and the quality trend across batches. Every query filters
``tenant_id`` explicitly; writes take the caller's session so one transaction holds a batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import CryptoError, NotFound, VerificationFailed
from pavilion.ingest.integrity import verify_manifest
from pavilion.ingest.models import QuarantinedRow, RosterBatch
from pavilion.ingest.pipeline import BatchResult
from pavilion.ingest.pipeline import QuarantinedRow as Quarantined
from pavilion.ingest.profile_store import provider_exists
from pavilion.ingest.roster_store import INSERT_CHUNK, RosterStore
from pavilion.parsing import loads_json
from pavilion.store.base import new_id
from pavilion.tenancy.sealing import TenantSealer, record_aad

QUARANTINE_TABLE = "ingest_quarantine"


class BatchRows(TypedDict):
    total: int
    valid: int
    invalid: int
    applied: int


class BatchView(TypedDict):
    """A batch as reported: its outcome, counts, stored reports and signed manifest;
    ``integrity`` where the batch was checked."""

    id: str
    provider_id: str
    status: str
    reason: str | None
    format: str
    profile_version: int | None
    received_at: str
    as_of: str
    rows: BatchRows
    quality: dict[str, Any]
    report: dict[str, Any]
    manifest: dict[str, Any]
    manifest_jws: str
    dp_signature_kid: str | None
    lineage_run_id: str
    audit_index: int | None
    integrity: NotRequired[str]


class QuarantinedRowView(TypedDict):
    row: int
    reasons: list[dict[str, Any]]
    record: dict[str, Any]


class QualityPoint(TypedDict):
    batch_id: str
    at: str
    status: str
    score: float | None
    dimensions: dict[str, float | None]


class QualityTrend(TypedDict):
    """Quality scores oldest first, the latest change and the moving average of five."""

    points: list[QualityPoint]
    latest: float | None
    change: float | None
    moving_average: float | None
    direction: str


def batch_out(row: RosterBatch, *, integrity: str | None = None) -> BatchView:
    out = BatchView(
        id=row.id,
        provider_id=row.provider_id,
        status=row.status,
        reason=row.reason,
        format=row.format,
        profile_version=row.profile_version,
        received_at=row.received_at.isoformat(),
        as_of=row.as_of.isoformat(),
        rows=BatchRows(
            total=row.rows_total,
            valid=row.rows_valid,
            invalid=row.rows_invalid,
            applied=row.rows_applied,
        ),
        quality=row.quality,
        report=row.report,
        manifest=row.manifest,
        manifest_jws=row.manifest_jws,
        dp_signature_kid=row.dp_signature_kid,
        lineage_run_id=row.lineage_run_id,
        audit_index=row.audit_index,
    )
    if integrity is not None:
        out["integrity"] = integrity
    return out


async def load_batch(session: AsyncSession, tenant_id: str, batch_id: str) -> RosterBatch:
    row = (
        await session.execute(
            select(RosterBatch).where(
                RosterBatch.tenant_id == tenant_id, RosterBatch.id == batch_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"batch {batch_id} does not exist")
    return row


async def verify_batch(
    session: AsyncSession,
    tenant_id: str,
    row: RosterBatch,
    jwks: list[dict[str, str]],
    store: RosterStore,
) -> str:
    """Check a batch's signed manifest and, while its records are current, their digest."""
    manifest = verify_manifest(row.manifest_jws, jwks, row.manifest)
    columns = {
        "batch_id": row.id,
        "provider_id": row.provider_id,
        "status": row.status,
        "input_sha256": row.input_sha256,
        "input_bytes": row.input_bytes,
        "output_sha256": row.output_sha256,
        "rows_total": row.rows_total,
        "rows_valid": row.rows_valid,
        "rows_invalid": row.rows_invalid,
        "rows_applied": row.rows_applied,
    }
    changed = sorted(k for k, v in columns.items() if manifest.get(k) != v)
    if changed:
        raise VerificationFailed(
            f"batch {row.id}: the stored batch differs from its signed manifest in "
            f"{', '.join(changed)}",
            extra={"reason": "manifest-mismatch", "fields": changed},
        )
    if row.status != "applied":
        return "verified (manifest; nothing applied)"
    current = (
        await session.execute(
            select(RosterBatch.id)
            .where(
                RosterBatch.tenant_id == tenant_id,
                RosterBatch.provider_id == row.provider_id,
                RosterBatch.status == "applied",
            )
            .order_by(RosterBatch.received_at.desc(), RosterBatch.id.desc())
            .limit(1)
        )
    ).scalar_one()
    if current != row.id:
        return "verified (manifest; records since replaced by a later batch)"
    try:
        count, digest, batch_ids = await store.digest(session, tenant_id, row.provider_id)
    except CryptoError as exc:
        raise VerificationFailed(
            f"batch {row.id}: a stored record does not open under the tenant's key (altered "
            "or moved between rows): it was tampered with",
            extra={"reason": "output-digest", "batch_id": row.id},
        ) from exc
    if batch_ids - {row.id} or count != row.rows_applied or digest != row.output_sha256:
        raise VerificationFailed(
            f"batch {row.id}: the stored roster does not match the signed manifest "
            f"({count} records stored, {row.rows_applied} signed; output digest "
            f"{'matches' if digest == row.output_sha256 else 'differs'}): it was tampered with",
            extra={"reason": "output-digest", "batch_id": row.id},
        )
    return "verified (manifest and stored records)"


async def list_batches(
    session: AsyncSession, tenant_id: str, provider_id: str, *, limit: int
) -> list[RosterBatch]:
    await provider_exists(session, tenant_id, provider_id)
    return list(
        (
            await session.execute(
                select(RosterBatch)
                .where(RosterBatch.tenant_id == tenant_id, RosterBatch.provider_id == provider_id)
                .order_by(RosterBatch.received_at.desc(), RosterBatch.id)
                .limit(limit)
            )
        ).scalars()
    )


async def quarantine_of(
    session: AsyncSession,
    sealer: TenantSealer,
    batch_id: str,
    *,
    limit: int,
    after_row: int,
) -> list[QuarantinedRowView]:
    """Quarantined rows after ``after_row``, opened with the tenant's data key."""
    tenant_id = sealer.tenant_id
    rows = (
        await session.execute(
            select(QuarantinedRow)
            .where(
                QuarantinedRow.tenant_id == tenant_id,
                QuarantinedRow.batch_id == batch_id,
                QuarantinedRow.row > after_row,
            )
            .order_by(QuarantinedRow.row)
            .limit(limit)
        )
    ).scalars()
    out = []
    for r in rows:
        opened = loads_json(sealer.open(r.sealed, record_aad(tenant_id, QUARANTINE_TABLE, r.id)))
        out.append(
            QuarantinedRowView(row=r.row, reasons=opened["reasons"], record=opened["record"])
        )
    return out


def seal_quarantined(
    sealer: TenantSealer, batch_id: str, rows: Sequence[Quarantined]
) -> list[dict[str, Any]]:
    """Invalid rows as stored: their values and reasons (which may quote values) sealed with
    the tenant's data key, the tenant, table and row id as associated data."""
    tenant_id = sealer.tenant_id
    out = []
    for q in rows:
        row_id = new_id()
        body = json.dumps({"reasons": q.reasons, "record": q.values}, ensure_ascii=False)
        aad = record_aad(tenant_id, QUARANTINE_TABLE, row_id)
        out.append(
            {
                "id": row_id,
                "tenant_id": tenant_id,
                "batch_id": batch_id,
                "row": q.row,
                "sealed": sealer.seal(body.encode("utf-8"), aad),
            }
        )
    return out


async def add_quarantine(
    session: AsyncSession, sealer: TenantSealer, batch_id: str, result: BatchResult
) -> None:
    """The batch's invalid rows with their reasons, sealed, in chunks, in the caller's
    transaction."""
    for start in range(0, len(result.quarantine), INSERT_CHUNK):
        chunk = result.quarantine[start : start + INSERT_CHUNK]
        await session.execute(insert(QuarantinedRow), seal_quarantined(sealer, batch_id, chunk))


# -- quality trend ---------------------------------------------------------------------------


def trend(
    scores: Sequence[tuple[str, datetime, str, float | None, dict[str, Any]]],
) -> QualityTrend:
    """Oldest first; the change of the latest score and a moving average of the last five."""
    points = [
        QualityPoint(
            batch_id=batch_id,
            at=at.isoformat(),
            status=status,
            score=score,
            dimensions=quality.get("dimensions", {}),
        )
        for batch_id, at, status, score, quality in scores
    ]
    known = [p["score"] for p in points if p["score"] is not None]
    latest = known[-1] if known else None
    previous = known[-2] if len(known) > 1 else None
    window = known[-5:]
    return QualityTrend(
        points=points,
        latest=latest,
        change=None if latest is None or previous is None else round(latest - previous, 2),
        moving_average=round(sum(window) / len(window), 2) if window else None,
        direction=(
            "none"
            if latest is None or previous is None
            else "up"
            if latest > previous
            else "down"
            if latest < previous
            else "flat"
        ),
    )


async def quality_trend(
    session: AsyncSession, tenant_id: str, provider_id: str, *, limit: int
) -> list[tuple[str, datetime, str, float | None, dict[str, Any]]]:
    await provider_exists(session, tenant_id, provider_id)
    rows = (
        await session.execute(
            select(
                RosterBatch.id,
                RosterBatch.received_at,
                RosterBatch.status,
                RosterBatch.quality_score,
                RosterBatch.quality,
            )
            .where(RosterBatch.tenant_id == tenant_id, RosterBatch.provider_id == provider_id)
            .order_by(RosterBatch.received_at.desc(), RosterBatch.id)
            .limit(limit)
        )
    ).all()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in reversed(rows)]
