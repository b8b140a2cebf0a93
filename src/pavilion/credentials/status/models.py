"""Tables of the status lists: the published lists and every allocated index.

``status_lists`` holds one row per published list (one URL). Lists that share their indices
form a *group*: an IETF token list is a group of one; a W3C bitstring group is a revocation
list and a suspension list, and a credential holds the same index in both.

``status_list_entries`` holds one row per allocated index of a group, ``UNIQUE(group_id, idx)``:
that constraint is what makes two concurrent allocations unable to take the same index, and
the app role is not granted DELETE on it (migration 0102), so an index, once taken, is never
handed out again. The entry's ``state`` is the one source of truth for the published bits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class StatusList(TenantOwned, Base):
    __tablename__ = "status_lists"

    #: 32 hex digits of the tenant id, then 32 random hex digits: unguessable, and the public
    #: endpoints find the tenant (for row-level security) without a cross-tenant lookup.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    #: ``token`` (IETF Token Status List) or ``bitstring`` (W3C Bitstring Status List).
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    #: ``status`` (a token list: valid, revoked and suspended in one value), ``revocation`` or
    #: ``suspension`` (bitstring lists).
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    bits: Mapped[int] = mapped_column(Integer, nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``open`` while indices are handed out; ``full`` afterwards (still served and updated).
    state: Mapped[str] = mapped_column(String(8), nullable=False, default="open")
    #: Bumped by every status change, so a cached signed list knows it is out of date.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    signed_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    signed_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (Index("ix_status_lists_tenant_kind_state", "tenant_id", "kind", "state"),)


class StatusListEntry(TenantOwned, Base):
    __tablename__ = "status_list_entries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(String(64), nullable=False)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Empty while the index is reserved for a credential being signed.
    credential_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: ``reserved``, ``valid``, ``revoked`` or ``suspended``.
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (
        UniqueConstraint("group_id", "idx"),
        Index("ix_status_list_entries_group_state", "group_id", "state"),
    )
