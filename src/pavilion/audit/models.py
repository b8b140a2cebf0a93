"""Tables of the audit log: leaves (ids and hashes, never PII), the head, and checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class AuditLeaf(TenantOwned, Base):
    __tablename__ = "audit_leaves"
    __table_args__ = (UniqueConstraint("tenant_id", "idx"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The canonical JSON of the event; the leaf hash is computed over exactly these bytes.
    event: Mapped[str] = mapped_column(Text, nullable=False)
    leaf_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AuditHead(TenantOwned, Base):
    """One row per tenant: the tree size and its compact range, updated with every append."""

    __tablename__ = "audit_heads"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    compact_range: Mapped[str] = mapped_column(Text, nullable=False)


class AuditCheckpoint(TenantOwned, Base):
    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("tenant_id", "size"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    root_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The signed note, exactly as served.
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
