"""Tables of AnonCreds issuance: a credential definition per DP, its revocation registries,
every published status list (the deltas), offers, and issued credentials' registry slots.

Secrets (the credential definition's and each registry's private parts) are sealed under the
tenant's data key. Credentials themselves are never stored: the holder keeps them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class AnoncredsIssuer(TenantOwned, Base):
    __tablename__ = "anoncreds_issuers"
    __table_args__ = (UniqueConstraint("tenant_id", "provider_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False)
    issuer_id: Mapped[str] = mapped_column(String(400), nullable=False)
    schema_id: Mapped[str] = mapped_column(String(500), nullable=False)
    schema_json: Mapped[str] = mapped_column(Text, nullable=False)
    cred_def_id: Mapped[str] = mapped_column(String(500), nullable=False, index=True)
    cred_def_json: Mapped[str] = mapped_column(Text, nullable=False)
    key_proof_json: Mapped[str] = mapped_column(Text, nullable=False)
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AnoncredsRegistry(TenantOwned, Base):
    """One revocation registry; ``seq`` counts rollovers (1, 2, ...) of one issuer."""

    __tablename__ = "anoncreds_registries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rev_reg_def_id"),
        UniqueConstraint("issuer_row_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    issuer_row_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("anoncreds_issuers.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    rev_reg_def_id: Mapped[str] = mapped_column(String(500), nullable=False)
    rev_reg_def_json: Mapped[str] = mapped_column(Text, nullable=False)
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    tails_hash: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    tails: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: Usable slots are 1..capacity (anoncreds-rs reserves index 0).
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    next_index: Mapped[int] = mapped_column(Integer, nullable=False)
    #: active | full
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AnoncredsStatusList(TenantOwned, Base):
    """A published revocation status list and the delta since the one before (append-only)."""

    __tablename__ = "anoncreds_status_lists"
    __table_args__ = (UniqueConstraint("registry_id", "timestamp"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    registry_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("anoncreds_registries.id", ondelete="CASCADE"), nullable=False
    )
    timestamp: Mapped[int] = mapped_column(BigInteger, nullable=False)
    list_json: Mapped[str] = mapped_column(Text, nullable=False)
    revoked: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AnoncredsOffer(TenantOwned, Base):
    __tablename__ = "anoncreds_offers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    issuer_row_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("anoncreds_issuers.id", ondelete="CASCADE"), nullable=False
    )
    offer_json: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AnoncredsCredential(TenantOwned, Base):
    """An issued credential's registry slot (for revocation); never the credential itself."""

    __tablename__ = "anoncreds_credentials"
    __table_args__ = (UniqueConstraint("registry_id", "rev_index"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    registry_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("anoncreds_registries.id", ondelete="CASCADE"), nullable=False
    )
    rev_index: Mapped[int] = mapped_column(Integer, nullable=False)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False)
    #: Keyed pseudonym of the subject (HMAC under the tenant key), so a DP can revoke by subject.
    subject_ref: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    #: one-time (broker-mediated presentation) | holder (issued to an external wallet)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
