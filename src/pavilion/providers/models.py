"""Tables of the provider registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class Provider(TenantOwned, Base):
    __tablename__ = "providers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    claim_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    #: Auth settings without secrets, e.g. {"type": "api_key", "header": "Authorization"}.
    auth: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    #: Secrets (API key, client secret) sealed with AES-GCM under the tenant's data key.
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: Further secrets (client secret, assertion key, mTLS client key) as one sealed JSON object.
    sealed_secrets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: TLS settings without secrets: CA bundle, client certificate, minimum version.
    tls: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    record_schema: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ProviderEndpoint(TenantOwned, Base):
    __tablename__ = "provider_endpoints"
    __table_args__ = (UniqueConstraint("provider_id", "region", "url"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("providers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    region: Mapped[str] = mapped_column(String(64), nullable=False)
    #: Jurisdiction of the region (EU, UK, US, ...): residency rules match on it.
    jurisdiction: Mapped[str] = mapped_column(String(16), nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    #: Relative share of traffic among the endpoints of its preference tier.
    weight: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    #: Jurisdiction tags beyond ``jurisdiction`` (e.g. EEA).
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
