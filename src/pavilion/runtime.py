"""The composition root: builds every service once from the settings.

The API and the CLI both start here, so there is one place that decides which database,
keystore and clients a process uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pavilion.audit.log import AuditLog
from pavilion.config.settings import Settings
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.keystore.software import SoftwareKeystore
from pavilion.providers.service import ProviderService
from pavilion.store.database import Database
from pavilion.tenancy.service import TenancyService, TenantKeys


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keystore: SoftwareKeystore
    tenant_keys: TenantKeys
    tenancy: TenancyService
    providers: ProviderService
    provider_client: ProviderClient
    audit: AuditLog
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def aclose(self) -> None:
        await self.provider_client.aclose()
        await self.db.dispose()


def build_runtime(settings: Settings, *, provider_client: ProviderClient | None = None) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    keystore = SoftwareKeystore.open(settings.resolved_keystore_dir, settings.keystore_master_key)
    tenant_keys = TenantKeys(keystore)
    client = provider_client or ProviderClient(
        timeout_seconds=settings.provider_timeout_seconds,
        connect_timeout_seconds=settings.provider_connect_timeout_seconds,
        retry=RetryPolicy(settings.provider_retries, settings.provider_retry_backoff_seconds),
    )
    return Runtime(
        settings=settings,
        db=db,
        keystore=keystore,
        tenant_keys=tenant_keys,
        tenancy=TenancyService(db, tenant_keys),
        providers=ProviderService(db, tenant_keys),
        provider_client=client,
        audit=AuditLog(db, keystore.signer("audit-signing"), settings.audit_origin),
    )
