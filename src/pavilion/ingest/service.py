"""The ingest domain's I/O edge: profiles, upload keys, batches, rosters and lineage in the
database. Every query filters ``tenant_id`` explicitly, and writes take the caller's session
so one transaction holds a whole batch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import polars as pl
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import Conflict, NotFound, VerificationFailed
from pavilion.ingest.integrity import public_key_of, verify_manifest
from pavilion.ingest.lineage import LineageEmitter, LineageGraph, links_of
from pavilion.ingest.models import (
    IngestProfile,
    LineageEvent,
    LineageLink,
    QuarantinedRow,
    RosterBatch,
    RosterRecord,
    UploadKey,
)
from pavilion.ingest.pipeline import lines_digest
from pavilion.ingest.schema import Profile, validate_profile
from pavilion.providers.models import Provider
from pavilion.store.base import new_id

#: Rows per INSERT statement when a batch is written (all inside one transaction).
INSERT_CHUNK: Final = 5_000


# -- storage of canonical rosters ------------------------------------------------------------


class RosterStore(Protocol):
    """Where a provider's canonical roster lives. Raw rows today; the privacy engine will put
    OPRF-encoded sets behind the same interface."""

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


@functools.cache
def lineage_emitter(file: Path | None = None) -> LineageEmitter:
    """One emitter (one OpenLineage client) per process and lineage file."""
    return LineageEmitter(file)


@dataclass(frozen=True)
class StoredProfile:
    version: int
    profile: Profile
    digest: str
    created_at: datetime

    def out(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
            "profile": self.profile.document(),
        }


async def provider_exists(session: AsyncSession, tenant_id: str, provider_id: str) -> None:
    found = (
        await session.execute(
            select(Provider.id).where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"provider {provider_id} does not exist")


# -- profiles --------------------------------------------------------------------------------


async def add_profile(
    session: AsyncSession, tenant_id: str, provider_id: str, profile: Profile, now: datetime
) -> StoredProfile:
    await provider_exists(session, tenant_id, provider_id)
    latest = (
        await session.execute(
            select(func.max(IngestProfile.version)).where(
                IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id
            )
        )
    ).scalar_one_or_none()
    version = (latest or 0) + 1
    session.add(
        IngestProfile(
            tenant_id=tenant_id,
            provider_id=provider_id,
            version=version,
            document=profile.document(),
            digest=profile.digest(),
            created_at=now,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # pragma: no cover - two admins posting at the same instant
        raise Conflict("another mapping version was added at the same time; retry") from exc
    return StoredProfile(version, profile, profile.digest(), now)


async def get_profile(
    session: AsyncSession, tenant_id: str, provider_id: str, version: int | None = None
) -> StoredProfile:
    query = select(IngestProfile).where(
        IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id
    )
    if version is None:
        query = query.order_by(IngestProfile.version.desc()).limit(1)
    else:
        query = query.where(IngestProfile.version == version)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        await provider_exists(session, tenant_id, provider_id)
        if version is None:
            raise NotFound(
                f"provider {provider_id} has no schema and mapping yet; "
                f"POST one to /v1/providers/{provider_id}/mappings first"
            )
        raise NotFound(f"provider {provider_id} has no mapping version {version}")
    return StoredProfile(row.version, validate_profile(row.document), row.digest, row.created_at)


async def list_profiles(
    session: AsyncSession, tenant_id: str, provider_id: str
) -> list[StoredProfile]:
    await provider_exists(session, tenant_id, provider_id)
    rows = (
        await session.execute(
            select(IngestProfile)
            .where(IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id)
            .order_by(IngestProfile.version)
        )
    ).scalars()
    return [
        StoredProfile(r.version, validate_profile(r.document), r.digest, r.created_at) for r in rows
    ]


# -- DP upload keys --------------------------------------------------------------------------


async def add_upload_key(
    session: AsyncSession, tenant_id: str, provider_id: str, jwk: dict[str, Any], now: datetime
) -> dict[str, Any]:
    await provider_exists(session, tenant_id, provider_id)
    kid, _ = public_key_of(jwk)
    public = {k: v for k, v in jwk.items() if k not in ("d",)}
    existing = (
        await session.execute(
            select(UploadKey.id).where(
                UploadKey.tenant_id == tenant_id,
                UploadKey.provider_id == provider_id,
                UploadKey.kid == kid,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"key {kid} is already registered for this provider")
    session.add(
        UploadKey(tenant_id=tenant_id, provider_id=provider_id, kid=kid, jwk=public, created_at=now)
    )
    return {"kid": kid, "kty": public.get("kty"), "created_at": now.isoformat()}


async def upload_keys(
    session: AsyncSession, tenant_id: str, provider_id: str
) -> dict[str, dict[str, Any]]:
    rows = (
        await session.execute(
            select(UploadKey).where(
                UploadKey.tenant_id == tenant_id,
                UploadKey.provider_id == provider_id,
                UploadKey.revoked_at.is_(None),
            )
        )
    ).scalars()
    return {r.kid: dict(r.jwk) for r in rows}


# -- batches ---------------------------------------------------------------------------------


def batch_out(row: RosterBatch, *, integrity: str | None = None) -> dict[str, Any]:
    out = {
        "id": row.id,
        "provider_id": row.provider_id,
        "status": row.status,
        "reason": row.reason,
        "format": row.format,
        "profile_version": row.profile_version,
        "received_at": row.received_at.isoformat(),
        "as_of": row.as_of.isoformat(),
        "rows": {
            "total": row.rows_total,
            "valid": row.rows_valid,
            "invalid": row.rows_invalid,
            "applied": row.rows_applied,
        },
        "quality": row.quality,
        "report": row.report,
        "manifest": row.manifest,
        "manifest_jws": row.manifest_jws,
        "dp_signature_kid": row.dp_signature_kid,
        "lineage_run_id": row.lineage_run_id,
        "audit_index": row.audit_index,
    }
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
    count, digest, batch_ids = await store.digest(session, tenant_id, row.provider_id)
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
    session: AsyncSession, tenant_id: str, batch_id: str, *, limit: int, after_row: int
) -> list[dict[str, Any]]:
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
    return [{"row": r.row, "reasons": r.reasons, "record": r.record} for r in rows]


# -- quality trend ---------------------------------------------------------------------------


def trend(
    scores: Sequence[tuple[str, datetime, str, float | None, dict[str, Any]]],
) -> dict[str, Any]:
    """Oldest first; the change of the latest score and a moving average of the last five."""
    points = [
        {
            "batch_id": batch_id,
            "at": at.isoformat(),
            "status": status,
            "score": score,
            "dimensions": quality.get("dimensions", {}),
        }
        for batch_id, at, status, score, quality in scores
    ]
    known = [p["score"] for p in points if p["score"] is not None]
    latest = known[-1] if known else None
    previous = known[-2] if len(known) > 1 else None
    window = known[-5:]
    return {
        "points": points,
        "latest": latest,
        "change": None if latest is None or previous is None else round(latest - previous, 2),
        "moving_average": round(sum(window) / len(window), 2) if window else None,
        "direction": (
            "none"
            if latest is None or previous is None
            else "up"
            if latest > previous
            else "down"
            if latest < previous
            else "flat"
        ),
    }


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


# -- lineage ---------------------------------------------------------------------------------


async def store_lineage(session: AsyncSession, tenant_id: str, event: dict[str, Any]) -> str:
    """Persist one serialised run event and its dataset links in the caller's transaction."""
    event_id = new_id()
    await session.execute(
        insert(LineageEvent).values(
            id=event_id,
            tenant_id=tenant_id,
            run_id=event["run"]["runId"],
            event_type=str(event.get("eventType") or "OTHER"),
            event_time=datetime.fromisoformat(event["eventTime"]),
            job_name=event["job"]["name"],
            event=json.dumps(event, sort_keys=True, separators=(",", ":")),
        )
    )
    links = links_of(event)
    if links:
        await session.execute(
            insert(LineageLink),
            [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "event_id": event_id,
                    "job_name": job,
                    "dataset": dataset,
                    "role": role,
                }
                for job, dataset, role in links
            ],
        )
    return event_id


async def lineage_graph(session: AsyncSession, tenant_id: str, dataset: str) -> LineageGraph:
    edges = {
        (r[0], r[1], r[2])
        for r in (
            await session.execute(
                select(LineageLink.job_name, LineageLink.dataset, LineageLink.role)
                .where(LineageLink.tenant_id == tenant_id)
                .distinct()
            )
        ).all()
    }
    graph = LineageGraph(edges)
    if dataset not in graph.datasets:
        raise NotFound(f"no lineage recorded for dataset {dataset!r}")
    graph = graph.around(dataset)
    graph.columns = await _columns(session, tenant_id, graph)
    return graph


async def _columns(
    session: AsyncSession, tenant_id: str, graph: LineageGraph
) -> dict[str, list[str]]:
    """Column names of each dataset, from the schema facet of its latest batch event."""
    columns: dict[str, list[str]] = {}
    jobs = [j for j in graph.jobs if j.startswith("ingest.")]
    if not jobs:
        return columns
    latest = (
        await session.execute(
            select(LineageEvent.job_name, LineageEvent.event)
            .where(LineageEvent.tenant_id == tenant_id, LineageEvent.job_name.in_(jobs))
            .order_by(LineageEvent.event_time.desc())
        )
    ).all()
    for _, text in latest:
        event = json.loads(text)
        for dataset in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
            fields = (dataset.get("facets") or {}).get("schema", {}).get("fields", [])
            if dataset["name"] not in columns and fields:
                columns[dataset["name"]] = [f["name"] for f in fields]
    return columns


async def lineage_events(
    session: AsyncSession, tenant_id: str, dataset: str, *, limit: int
) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(LineageEvent.event)
            .join(LineageLink, LineageLink.event_id == LineageEvent.id)
            .where(
                LineageEvent.tenant_id == tenant_id,
                LineageLink.tenant_id == tenant_id,
                LineageLink.dataset == dataset,
            )
            .order_by(LineageEvent.event_time.desc())
            .limit(limit)
        )
    ).scalars()
    return [json.loads(text) for text in rows]


async def record_lookup(
    session: AsyncSession,
    tenant_id: str,
    *,
    emitter: LineageEmitter,
    provider_id: str,
    claim_type: str,
    at: datetime,
    found: bool,
    schema_valid: bool,
    status: str,
    decision: str | None,
    credential_issued: bool,
    run_id: str | None = None,
) -> str:
    """One lookup's lineage event, stored in the verification's own transaction (no PII)."""
    event = emitter.emit_lookup(
        tenant_id=tenant_id,
        provider_id=provider_id,
        claim_type=claim_type,
        at=at,
        found=found,
        schema_valid=schema_valid,
        status=status,
        decision=decision,
        credential_issued=credential_issued,
        run_id=run_id,
    )
    return await store_lineage(session, tenant_id, event)
