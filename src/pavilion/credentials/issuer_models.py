"""Tables of the issuer side: trust chains, accreditations, template defaults, issuances.

Every row belongs to one tenant (row-level security on PostgreSQL). Nothing here holds PII:
keys are references (a wrapped blob or an HSM label), certificates and accreditations are
public documents, issuances are ids, digests and times.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class IssuerKey(TenantOwned, Base):
    """A tenant's issuer root (``role`` root) or a DP's certified issuing key (provider)."""

    __tablename__ = "credential_issuer_keys"
    __table_args__ = (
        Index("ix_credential_issuer_keys_lookup", "tenant_id", "role", "provider_id"),
        # One active root per tenant and one active key per provider, whatever the race.
        Index(
            "uq_credential_issuer_keys_active",
            "tenant_id",
            "role",
            text("coalesce(provider_id, '')"),
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
            sqlite_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    #: RFC 7638 thumbprint of the public key (the JWS ``kid``).
    key_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    backend: Mapped[str] = mapped_column(String(16), nullable=False)
    #: How the key store finds the private key: a wrapped blob or an HSM label (JSON).
    key_ref: Mapped[str] = mapped_column(Text, nullable=False)
    #: The X.509 certificate, PEM (self-signed for a root, root-signed for a provider).
    certificate: Mapped[str] = mapped_column(Text, nullable=False)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Accreditation(TenantOwned, Base):
    """The broker's accreditation credential for one DP issuing key (a vc+jwt by the root)."""

    __tablename__ = "credential_accreditations"
    __table_args__ = (
        Index(
            "uq_credential_accreditations_active",
            "tenant_id",
            "provider_id",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
            sqlite_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    issuer_key_row: Mapped[str] = mapped_column(String(36), nullable=False)
    #: Thumbprint of the accredited DP key: how a verifier finds the accreditation.
    key_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    claim_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CredentialDefault(TenantOwned, Base):
    """A tenant's default template and format for one claim type."""

    __tablename__ = "credential_defaults"
    __table_args__ = (UniqueConstraint("tenant_id", "claim_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    claim_type: Mapped[str] = mapped_column(String(40), nullable=False)
    template_id: Mapped[str] = mapped_column(String(60), nullable=False)
    format: Mapped[str] = mapped_column(String(20), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Issuance(TenantOwned, Base):
    """One issued credential, any path (verification flow, refresh, VC-API); append-only."""

    __tablename__ = "credential_issuances"

    #: The credential's id (the UUID in its ``urn:uuid:`` id / ``jti``).
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    verification_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: The verification this one re-verified (``POST /v1/verifications/{id}/refresh``).
    refreshes: Mapped[str | None] = mapped_column(String(36), nullable=True)
    format: Mapped[str] = mapped_column(String(20), nullable=False)
    template_id: Mapped[str | None] = mapped_column(String(60), nullable=True)
    claim_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    #: When the data provider last vouched for the data (freshness).
    vouched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
