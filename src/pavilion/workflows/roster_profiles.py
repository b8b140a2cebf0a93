"""A data provider's profile (versioned schema and mapping) and its upload keys: the use
cases behind ``/v1/providers/{id}/mappings`` and ``/upload-keys``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pavilion.ingest import profile_store
from pavilion.ingest.profile_store import ProfileView, UploadKeyView
from pavilion.ingest.schema import parse_profile, validate_profile
from pavilion.observability.logging import get_logger

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)


async def add_profile(
    rt: Runtime, tenant_id: str, provider_id: str, document: str | bytes | dict[str, Any]
) -> ProfileView:
    """Validate a schema + mapping document (YAML or JSON) and store it as the next version."""
    profile = validate_profile(document) if isinstance(document, dict) else parse_profile(document)
    async with rt.db.transaction(tenant_id) as session:
        stored = await profile_store.add_profile(
            session, tenant_id, provider_id, profile, rt.clock()
        )
    log.info("ingest profile added", provider_id=provider_id, version=stored.version)
    return stored.out()


async def get_profile(
    rt: Runtime, tenant_id: str, provider_id: str, version: int | None = None
) -> ProfileView:
    async with rt.db.transaction(tenant_id) as session:
        return (await profile_store.get_profile(session, tenant_id, provider_id, version)).out()


async def list_profiles(rt: Runtime, tenant_id: str, provider_id: str) -> list[ProfileView]:
    async with rt.db.transaction(tenant_id) as session:
        return [p.out() for p in await profile_store.list_profiles(session, tenant_id, provider_id)]


async def add_upload_key(
    rt: Runtime, tenant_id: str, provider_id: str, jwk: dict[str, Any]
) -> UploadKeyView:
    async with rt.db.transaction(tenant_id) as session:
        return await profile_store.add_upload_key(session, tenant_id, provider_id, jwk, rt.clock())
