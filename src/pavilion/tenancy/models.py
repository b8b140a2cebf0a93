"""Tables of the tenancy domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow

#: The reserved tenant that holds platform-admin tokens.
PLATFORM_TENANT_ID = "00000000-0000-0000-0000-000000000000"


class Tenant(Base):
    """A customer of the platform. Platform-owned: this table has no row-level security."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    #: The tenant's data key, wrapped by the keystore's key-encryption key.
    wrapped_data_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    kek_id: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ApiToken(TenantOwned, Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(40), nullable=False)
    #: SHA-256 of the secret; the secret itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: After this instant the token no longer authenticates (None: until revoked).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
