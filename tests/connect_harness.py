"""The connector harness for the connection integration tests (real DP client, in-process API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from connector_support import Api
from pavilion.api.app import create_app
from pavilion.config.settings import Settings, load_settings
from pavilion.connect.audit import AuditLogSink
from pavilion.runtime import Runtime, build_runtime
from pavilion.store.migrate import app_role_for, upgrade
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.roles import Role

CONNECT_SETTINGS: dict[str, Any] = {
    "node_region": "eu-west",
    "provider_timeout_seconds": 4.0,
    "provider_attempt_timeout_seconds": 1.0,
    "provider_connect_timeout_seconds": 1.0,
    "provider_retries": 2,
    "provider_retry_backoff_seconds": 0.01,
    "provider_probe_interval_seconds": 0.2,
    "provider_warm_connections": 1,
}


def connect_settings(tmp_path: Path, **overrides: Any) -> Settings:
    built = load_settings(None, data_dir=tmp_path, **(CONNECT_SETTINGS | overrides))
    upgrade(
        built.database_migration_url,
        app_role_for(built.database_url, built.database_migration_url),
    )
    return built


@asynccontextmanager
async def connector_api(settings: Settings) -> AsyncIterator[Api]:
    """The connector's API in process, with the real DP client (real sockets to the DPs)."""
    rt: Runtime = build_runtime(settings)
    app = create_app(rt, owns_runtime=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connector.test"
        ) as client,
    ):
        harness = Api(client, rt)
        tenant = await rt.tenancy.create_tenant("tenant-a")
        harness.tenant_id = tenant.id
        platform = await rt.tenancy.create_token(PLATFORM_TENANT_ID, "p", Role.PLATFORM_ADMIN)
        harness.tokens["platform-admin"] = platform.secret
        for role in Role:
            if role is not Role.PLATFORM_ADMIN:
                issued = await rt.tenancy.create_token(tenant.id, role.value, role)
                harness.tokens[role.value] = issued.secret
        yield harness


async def connection_events(api: Api) -> list[dict[str, Any]]:
    """Every connection event in the tenant's audit log, after the writer caught up."""
    sink = api.rt.provider_client._events
    assert isinstance(sink, AuditLogSink)
    await sink.flush()
    leaves = await api.rt.audit.leaves(api.tenant_id, start=0, limit=10_000)
    return [leaf["event"] for leaf in leaves if leaf["event"].get("kind") == "connection"]


def endpoint_body(region: str, jurisdiction: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"region": region, "jurisdiction": jurisdiction, "url": url, **extra}
