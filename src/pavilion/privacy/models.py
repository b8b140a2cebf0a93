"""Tables of the privacy engine: pushed PSI tag sets, the privacy-budget ledger, receipts.

Nothing here holds personal data: tag sets are truncated PRF outputs under a key only the DP
has, budgets are numbers, receipts hold ids and hashes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow

#: Budgets are integers in these units, so sums never drift: nano-epsilon, femto-delta.
EPSILON_UNITS = 10**9
DELTA_UNITS = 10**15


class TagSetSigningKey(TenantOwned, Base):
    """The DP's tag-set signing public key, registered by a DP administrator."""

    __tablename__ = "psi_roster_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "provider_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False)
    kid: Mapped[str] = mapped_column(String(100), nullable=False)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class TagSet(TenantOwned, Base):
    """One pushed version of one set: its signed manifest and, once committed, its tags."""

    __tablename__ = "psi_rosters"
    __table_args__ = (UniqueConstraint("tenant_id", "provider_id", "set_name", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    set_name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: receiving | active | superseded
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    public_key: Mapped[str] = mapped_column(String(64), nullable=False)
    tag_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fpr: Mapped[float] = mapped_column(Float, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The DP's compact JWS over the manifest, kept as evidence.
    manifest: Mapped[str] = mapped_column(Text, nullable=False)
    chunks: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TagSetChunk(TenantOwned, Base):
    __tablename__ = "psi_roster_chunks"
    # The table and column keep their first names (psi_roster_*, roster_id): no migration.
    __table_args__ = (UniqueConstraint("roster_id", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tag_set_id: Mapped[str] = mapped_column(
        "roster_id",
        String(36),
        ForeignKey("psi_rosters.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class PrivacyBudget(TenantOwned, Base):
    """The running total of one tenant's dataset budget; the row every charge locks."""

    __tablename__ = "privacy_budgets"
    __table_args__ = (UniqueConstraint("tenant_id", "dataset"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    dataset: Mapped[str] = mapped_column(String(64), nullable=False)
    #: day | week | month | never: when the spent totals reset.
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    epsilon_limit: Mapped[int] = mapped_column(BigInteger, nullable=False)
    delta_limit: Mapped[int] = mapped_column(BigInteger, nullable=False)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    spent_epsilon: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    spent_delta: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PrivacyLedgerEntry(TenantOwned, Base):
    """One charge against a budget (append-only): what was released and what it cost."""

    __tablename__ = "privacy_budget_ledger"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    dataset: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    release_id: Mapped[str] = mapped_column(String(36), nullable=False)
    statistic: Mapped[str] = mapped_column(String(16), nullable=False)
    mechanism: Mapped[str] = mapped_column(String(16), nullable=False)
    epsilon: Mapped[int] = mapped_column(BigInteger, nullable=False)
    delta: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: zCDP (zero-concentrated differential privacy) cost of a Gaussian release, before
    #: conversion to (epsilon, delta).
    rho: Mapped[float | None] = mapped_column(Float, nullable=True)
    query_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    receipt_id: Mapped[str] = mapped_column(String(36), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PrivacyReceipt(TenantOwned, Base):
    """A signed privacy receipt (append-only); its hash is committed to by an audit leaf."""

    __tablename__ = "privacy_receipts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    jws: Mapped[str] = mapped_column(Text, nullable=False)
    receipt_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    audit_index: Mapped[int] = mapped_column(Integer, nullable=False)
    leaf_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
