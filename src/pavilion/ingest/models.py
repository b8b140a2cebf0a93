"""Tables of the data pipeline; every row belongs to one tenant (row-level security applies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class IngestProfile(TenantOwned, Base):
    """One version of a DP's schema + mapping + policies; versions are never edited."""

    __tablename__ = "ingest_profiles"
    __table_args__ = (UniqueConstraint("tenant_id", "provider_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("providers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class UploadKey(TenantOwned, Base):
    """A DP's public key for signed uploads (detached JWS); once one exists, uploads must be
    signed."""

    __tablename__ = "ingest_upload_keys"
    __table_args__ = (UniqueConstraint("provider_id", "kid"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("providers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kid: Mapped[str] = mapped_column(String(100), nullable=False)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RosterBatch(TenantOwned, Base):
    """One push: what came in, what was decided, its quality and its signed manifest."""

    __tablename__ = "ingest_batches"
    __table_args__ = (Index("ix_ingest_batches_provider_received", "provider_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("providers.id", ondelete="CASCADE"), nullable=False
    )
    profile_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    input_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    input_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False)
    rows_valid: Mapped[int] = mapped_column(Integer, nullable=False)
    rows_invalid: Mapped[int] = mapped_column(Integer, nullable=False)
    rows_applied: Mapped[int] = mapped_column(Integer, nullable=False)
    output_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    quality_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    manifest_jws: Mapped[str] = mapped_column(Text, nullable=False)
    dp_signature_kid: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lineage_run_id: Mapped[str] = mapped_column(String(36), nullable=False)
    audit_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class QuarantinedRow(TenantOwned, Base):
    """An invalid row of a batch, kept aside with its reasons (never silently dropped): both
    sealed together with the tenant's data key (``batch_store.seal_quarantined``)."""

    __tablename__ = "ingest_quarantine"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ingest_batches.id", ondelete="CASCADE"), nullable=False, index=True
    )
    row: Mapped[int] = mapped_column(Integer, nullable=False)
    sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class RosterRecord(TenantOwned, Base):
    """A provider's current canonical record of one subject: keyed by the subject's keyed
    pseudonym, the record sealed with the tenant's data key (``ingest.roster_store``)."""

    __tablename__ = "ingest_roster_records"

    provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    subject_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class LineageEvent(TenantOwned, Base):
    """An OpenLineage run event as emitted (JSON), append-only; it holds no personal data."""

    __tablename__ = "ingest_lineage_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    event_type: Mapped[str] = mapped_column(String(16), nullable=False)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    job_name: Mapped[str] = mapped_column(String(300), nullable=False)
    event: Mapped[str] = mapped_column(Text, nullable=False)


class LineageLink(TenantOwned, Base):
    """Which dataset an event read or wrote: the edges the lineage graph is drawn from."""

    __tablename__ = "ingest_lineage_links"
    __table_args__ = (Index("ix_ingest_lineage_links_dataset", "tenant_id", "dataset"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    job_name: Mapped[str] = mapped_column(String(300), nullable=False)
    dataset: Mapped[str] = mapped_column(String(300), nullable=False)
    role: Mapped[str] = mapped_column(String(8), nullable=False)
