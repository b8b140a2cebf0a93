"""A roster upload: a data provider's canonical records, validated, scored, mapped and
applied whole or not at all (``POST /v1/providers/{id}/roster-uploads``).

The DP's profile and keys are read first (an unsigned upload from a DP that signs is refused
before a byte is read), the body is spooled (sealed under a key of its own, ``ingest.spool``)
under the size limit while it is hashed, the DP's detached JWS is checked, then the pure
pipeline runs in a worker thread over the plain text in memory; the spool file goes whatever
the outcome. Whatever it decides,
one transaction then writes the batch row with its signed manifest, its quarantined rows, the
canonical roster (only when applied), the lineage event and an audit leaf: all of it, or none.
A rejected upload is recorded first and reported after.

Profiles, dry runs and reports are the neighbouring use cases (``roster_profiles``,
``roster_dry_run``, ``roster_reports``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pavilion.errors import InvalidRequest, PavilionError, VerificationFailed
from pavilion.ingest import batch_store, metrics, profile_store
from pavilion.ingest.batch_store import BatchView
from pavilion.ingest.canonical import CANONICAL_FIELDS
from pavilion.ingest.errors import (
    MAX_REPORTED_ERRORS,
    BatchRejected,
    MalformedUpload,
    QualityBelowThreshold,
    UndeclaredDataCategory,
    reported_issues,
)
from pavilion.ingest.formats import UploadType, upload_type
from pavilion.ingest.integrity import (
    BatchManifest,
    DetachedJws,
    manifest_digest,
    parse_detached_jws,
    sign_manifest,
    verify_detached,
)
from pavilion.ingest.lineage import store as lineage_store
from pavilion.ingest.lineage.model import BatchLineage
from pavilion.ingest.models import RosterBatch
from pavilion.ingest.pipeline import EMPTY_SHA256, BatchResult, process_file
from pavilion.ingest.schema import Profile
from pavilion.ingest.spool import Spooled, spool
from pavilion.observability.logging import get_logger
from pavilion.store.base import new_id

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)


def spool_dir(rt: Runtime) -> Path:
    """Where uploads are spooled (sealed) while they are read: private, swept at start."""
    return rt.settings.data_dir / "spool"


@dataclass(frozen=True)
class UploadRequest:
    """How an upload was sent: its media type, signature, as-of time and mapping version."""

    content_type: str | None
    filename: str | None = None
    signature: str | None = None
    as_of: datetime | None = None
    mapping_version: int | None = None


async def upload_roster(
    rt: Runtime,
    tenant_id: str,
    provider_id: str,
    body: AsyncIterable[bytes],
    request: UploadRequest,
) -> BatchView:
    """Validate, score, map and (all or nothing) apply one roster upload; returns its report."""
    kind = upload_type(request.content_type, request.filename)
    jws = parse_detached_jws(request.signature) if request.signature else None
    async with rt.db.transaction(tenant_id) as session:
        stored = await profile_store.get_profile(
            session, tenant_id, provider_id, request.mapping_version
        )
        keys = await profile_store.upload_keys(session, tenant_id, provider_id)
    key = _signing_key(keys, jws)
    received_at = rt.clock()
    as_of = request.as_of or received_at
    spooled = await spool(
        body, spool_dir(rt), limit=rt.settings.ingest_max_upload_bytes, signature=jws
    )
    batch = _BatchWriter(
        rt,
        tenant_id=tenant_id,
        provider_id=provider_id,
        stored=stored,
        kind=kind,
        spooled=spooled,
        received_at=received_at,
        as_of=as_of,
        jws=jws,
    )
    try:
        if jws is not None and key is not None and spooled.signing_digest is not None:
            try:
                verify_detached(jws, spooled.signing_digest, key)
            except VerificationFailed as exc:
                await batch.refuse("dp-signature", exc)
                raise
        try:
            result = await asyncio.to_thread(
                _process_spooled, spooled, kind, stored.profile, received_at, as_of
            )
        except (MalformedUpload, UndeclaredDataCategory) as exc:
            await batch.refuse(exc.code, exc)
            raise
        return await batch.record(result)
    finally:
        spooled.remove()


def _process_spooled(
    spooled: Spooled, kind: UploadType, profile: Profile, now: datetime, as_of: datetime
) -> BatchResult:
    """The pipeline over the upload's plain text, which exists only in memory meanwhile."""
    with spooled.open_plaintext(f"upload.{kind.format.value}") as path:
        return process_file(path, kind, profile, now=now, as_of=as_of)


def _signing_key(keys: dict[str, dict[str, Any]], jws: DetachedJws | None) -> dict[str, Any] | None:
    if jws is None:
        if keys:
            raise VerificationFailed(
                "this provider signs its uploads: send the detached JWS in the X-JWS-Signature "
                "header (RFC 7515 Appendix F)",
                extra={"reason": "signature-required"},
            )
        return None
    if not keys:
        raise InvalidRequest(
            "the upload is signed but the provider has no registered upload key; register one "
            "at /v1/providers/{id}/upload-keys",
            field="x-jws-signature",
        )
    if jws.key_id is None:
        if len(keys) == 1:
            return next(iter(keys.values()))
        raise InvalidRequest(
            "the provider has several upload keys: name one with 'kid'", field="x-jws-signature"
        )
    key = keys.get(jws.key_id)
    if key is None:
        raise VerificationFailed(
            f"the upload is signed with key {jws.key_id}, which is not registered for this "
            "provider",
            extra={"reason": "unknown-key"},
        )
    return key


class _BatchWriter:
    """Writes one batch (applied or refused) in one transaction."""

    def __init__(
        self,
        rt: Runtime,
        *,
        tenant_id: str,
        provider_id: str,
        stored: profile_store.StoredProfile,
        kind: UploadType,
        spooled: Spooled,
        received_at: datetime,
        as_of: datetime,
        jws: DetachedJws | None,
    ) -> None:
        self.rt = rt
        self.tenant_id = tenant_id
        self.provider_id = provider_id
        self.stored = stored
        self.kind = kind
        self.spooled = spooled
        self.received_at = received_at
        self.as_of = as_of
        self.jws = jws
        self.id = new_id()
        self.run_id = str(uuid.uuid4())

    @property
    def profile(self) -> Profile:
        return self.stored.profile

    def _manifest(
        self,
        status: str,
        reason: str | None,
        rows: dict[str, int],
        output: str,
        score: float | None,
    ) -> BatchManifest:
        return BatchManifest(
            batch_id=self.id,
            tenant_id=self.tenant_id,
            provider_id=self.provider_id,
            profile_version=self.stored.version,
            profile_sha256=self.stored.digest,
            format=self.kind.format.value,
            status=status,
            reason=reason,
            received_at=self.received_at.isoformat(),
            as_of=self.as_of.isoformat(),
            input_sha256=self.spooled.sha256,
            input_bytes=self.spooled.size,
            rows_total=rows["total"],
            rows_valid=rows["valid"],
            rows_invalid=rows["invalid"],
            rows_applied=rows["applied"],
            output_sha256=output,
            quality_score=score,
            dp_signature_kid=self._kid(),
        )

    def _kid(self) -> str | None:
        if self.jws is None:
            return None
        return self.jws.key_id or "(single registered key)"

    async def refuse(self, reason: str, exc: PavilionError) -> None:
        """Record an upload refused before or while it was read; nothing of it is kept."""
        rows = {"total": 0, "valid": 0, "invalid": 0, "applied": 0}
        report = {
            "status": "rejected",
            "reason": reason,
            "detail": exc.detail,
            "errors": reported_issues(exc)[:MAX_REPORTED_ERRORS],
        }
        await self._write(
            status="rejected",
            reason=reason,
            rows=rows,
            output=EMPTY_SHA256,
            quality={},
            report=dict(report),
            result=None,
            error=exc.detail,
        )
        exc.extra.update({"batch_id": self.id})

    async def record(self, result: BatchResult) -> BatchView:
        summary = result.summary()
        rows = {key: summary["rows"][key] for key in ("total", "valid", "invalid", "applied")}
        body = await self._write(
            status=result.status,
            reason=result.reason,
            rows=rows,
            output=result.output_sha256,
            quality=result.quality,
            report=summary,
            result=result,
            error=None if result.applied else result.detail,
        )
        if result.applied:
            return body
        errors = result.report_errors()
        extra = {
            "batch_id": self.id,
            "reason": result.reason,
            "rows": summary["rows"],
            "error_count": summary["error_count"],
            "quality": {k: result.quality[k] for k in ("score", "threshold", "dimensions")},
        }
        if result.reason == "quality":
            raise QualityBelowThreshold(result.detail, errors=errors, extra=extra)
        raise BatchRejected(result.detail, errors=errors, extra=extra)

    async def _write(
        self,
        *,
        status: str,
        reason: str | None,
        rows: dict[str, int],
        output: str,
        quality: Mapping[str, Any],
        report: Mapping[str, Any],
        result: BatchResult | None,
        error: str | None,
    ) -> BatchView:
        score = quality.get("score") if quality else None
        manifest = self._manifest(status, reason, rows, output, score)
        token = await sign_manifest(manifest, self.rt.keystore.signer("audit-signing"))
        event = self.rt.lineage.emit_batch(
            self._lineage(
                status=status,
                reason=reason,
                rows=rows,
                output=output,
                score=score,
                result=result,
                error=error,
            )
        )
        row = RosterBatch(
            id=self.id,
            tenant_id=self.tenant_id,
            provider_id=self.provider_id,
            profile_version=self.stored.version,
            format=self.kind.format.value,
            status=status,
            reason=reason,
            received_at=self.received_at,
            as_of=self.as_of,
            input_sha256=self.spooled.sha256,
            input_bytes=self.spooled.size,
            rows_total=rows["total"],
            rows_valid=rows["valid"],
            rows_invalid=rows["invalid"],
            rows_applied=rows["applied"],
            output_sha256=output,
            quality_score=score,
            quality=dict(quality),
            report=dict(report),
            manifest=dict(manifest),
            manifest_jws=token,
            dp_signature_kid=self._kid(),
            lineage_run_id=self.run_id,
        )
        async with self.rt.db.transaction(self.tenant_id) as session:
            receipt = await self.rt.audit.append(
                session,
                self.tenant_id,
                {
                    "kind": "roster_upload",
                    "batch_id": self.id,
                    "provider_id": self.provider_id,
                    "status": status,
                    "reason": reason,
                    "rows": rows,
                    "input_sha256": self.spooled.sha256,
                    "output_sha256": output,
                    "manifest_sha256": manifest_digest(manifest),
                    "at": self.received_at.isoformat(),
                },
            )
            row.audit_index = receipt.index
            session.add(row)
            await session.flush()
            if result is not None and result.quarantine:
                sealer = await self.rt.tenant_keys.sealer(session, self.tenant_id)
                await batch_store.add_quarantine(session, sealer, self.id, result)
            if result is not None and result.applied:
                await self.rt.rosters.replace(
                    session, self.tenant_id, self.provider_id, self.id, result.records
                )
            await lineage_store.store_lineage(session, self.tenant_id, event)
        metrics.BATCHES.labels(self.provider_id, status, reason or "none").inc()
        metrics.ROWS.labels(self.provider_id, "applied").inc(rows["applied"])
        metrics.ROWS.labels(self.provider_id, "invalid").inc(rows["invalid"])
        if score is not None:
            metrics.QUALITY.labels(self.provider_id).set(score)
        log.info(
            "roster upload",
            batch_id=self.id,
            provider_id=self.provider_id,
            status=status,
            reason=reason,
            rows_total=rows["total"],
            rows_applied=rows["applied"],
            quality_score=score,
        )
        return batch_store.batch_out(row, integrity="signed")

    def _lineage(
        self,
        *,
        status: str,
        reason: str | None,
        rows: dict[str, int],
        output: str,
        score: float | None,
        result: BatchResult | None,
        error: str | None,
    ) -> BatchLineage:
        schema = self.profile.record_schema
        return BatchLineage(
            tenant_id=self.tenant_id,
            provider_id=self.provider_id,
            batch_id=self.id,
            run_id=self.run_id,
            status=status,
            reason=reason,
            at=self.received_at,
            input_bytes=self.spooled.size,
            rows=rows,
            quality_score=score,
            profile_version=self.stored.version,
            input_sha256=self.spooled.sha256,
            output_sha256=output,
            source_fields=[
                (f.name, f.type.value, "categories: " + ", ".join(c.value for c in f.categories))
                for f in schema.fields
            ],
            column_metrics={
                name: metrics
                for name, metrics in (result.column_metrics if result else {}).items()
                if name in schema.by_name
            },
            assertions=result.assertions if result else [],
            mapping=result.lineage if result else [],
            canonical_types={name: kind.value for name, kind in CANONICAL_FIELDS.items()},
            error=error,
        )
