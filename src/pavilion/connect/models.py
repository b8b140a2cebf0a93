"""Tables of the connection layer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class ResidencyAdequacy(TenantOwned, Base):
    """Jurisdictions a tenant accepts as adequate for the residents of one jurisdiction."""

    __tablename__ = "residency_adequacy"
    __table_args__ = (UniqueConstraint("tenant_id", "residency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    residency: Mapped[str] = mapped_column(String(16), nullable=False)
    jurisdictions: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
