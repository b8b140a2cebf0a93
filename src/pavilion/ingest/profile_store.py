"""Profiles (a data provider's versioned schema and mapping) and upload keys in the database.
Every query filters ``tenant_id`` explicitly; writes take the caller's session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import Conflict, NotFound
from pavilion.ingest.integrity import public_key_of
from pavilion.ingest.models import IngestProfile, UploadKey
from pavilion.ingest.schema import Profile, validate_profile
from pavilion.providers.models import Provider


class ProfileView(TypedDict):
    """A stored profile version as reported: its digest and the document."""

    version: int
    digest: str
    created_at: str
    profile: dict[str, Any]


class UploadKeyView(TypedDict):
    kid: str
    kty: str | None
    created_at: str


@dataclass(frozen=True)
class StoredProfile:
    version: int
    profile: Profile
    digest: str
    created_at: datetime

    def out(self) -> ProfileView:
        return ProfileView(
            version=self.version,
            digest=self.digest,
            created_at=self.created_at.isoformat(),
            profile=self.profile.document(),
        )


async def provider_exists(session: AsyncSession, tenant_id: str, provider_id: str) -> None:
    found = (
        await session.execute(
            select(Provider.id).where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"provider {provider_id} does not exist")


# -- profiles --------------------------------------------------------------------------------


async def add_profile(
    session: AsyncSession, tenant_id: str, provider_id: str, profile: Profile, now: datetime
) -> StoredProfile:
    await provider_exists(session, tenant_id, provider_id)
    latest = (
        await session.execute(
            select(func.max(IngestProfile.version)).where(
                IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id
            )
        )
    ).scalar_one_or_none()
    version = (latest or 0) + 1
    session.add(
        IngestProfile(
            tenant_id=tenant_id,
            provider_id=provider_id,
            version=version,
            document=profile.document(),
            digest=profile.digest(),
            created_at=now,
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # pragma: no cover - two admins posting at the same instant
        raise Conflict("another mapping version was added at the same time; retry") from exc
    return StoredProfile(version, profile, profile.digest(), now)


async def get_profile(
    session: AsyncSession, tenant_id: str, provider_id: str, version: int | None = None
) -> StoredProfile:
    query = select(IngestProfile).where(
        IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id
    )
    if version is None:
        query = query.order_by(IngestProfile.version.desc()).limit(1)
    else:
        query = query.where(IngestProfile.version == version)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        await provider_exists(session, tenant_id, provider_id)
        if version is None:
            raise NotFound(
                f"provider {provider_id} has no schema and mapping yet; "
                f"POST one to /v1/providers/{provider_id}/mappings first"
            )
        raise NotFound(f"provider {provider_id} has no mapping version {version}")
    return StoredProfile(row.version, validate_profile(row.document), row.digest, row.created_at)


async def list_profiles(
    session: AsyncSession, tenant_id: str, provider_id: str
) -> list[StoredProfile]:
    await provider_exists(session, tenant_id, provider_id)
    rows = (
        await session.execute(
            select(IngestProfile)
            .where(IngestProfile.tenant_id == tenant_id, IngestProfile.provider_id == provider_id)
            .order_by(IngestProfile.version)
        )
    ).scalars()
    return [
        StoredProfile(r.version, validate_profile(r.document), r.digest, r.created_at) for r in rows
    ]


# -- DP upload keys --------------------------------------------------------------------------


async def add_upload_key(
    session: AsyncSession, tenant_id: str, provider_id: str, jwk: dict[str, Any], now: datetime
) -> UploadKeyView:
    await provider_exists(session, tenant_id, provider_id)
    kid, _ = public_key_of(jwk)
    public = {k: v for k, v in jwk.items() if k not in ("d",)}
    existing = (
        await session.execute(
            select(UploadKey.id).where(
                UploadKey.tenant_id == tenant_id,
                UploadKey.provider_id == provider_id,
                UploadKey.kid == kid,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"key {kid} is already registered for this provider")
    session.add(
        UploadKey(tenant_id=tenant_id, provider_id=provider_id, kid=kid, jwk=public, created_at=now)
    )
    return UploadKeyView(kid=kid, kty=public.get("kty"), created_at=now.isoformat())


async def upload_keys(
    session: AsyncSession, tenant_id: str, provider_id: str
) -> dict[str, dict[str, Any]]:
    rows = (
        await session.execute(
            select(UploadKey).where(
                UploadKey.tenant_id == tenant_id,
                UploadKey.provider_id == provider_id,
                UploadKey.revoked_at.is_(None),
            )
        )
    ).scalars()
    return {r.kid: dict(r.jwk) for r in rows}
