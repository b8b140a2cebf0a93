"""The connector harness for the connection integration tests (real DP client, in-process API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connector_support import Api
from connector_support import connector_api as harness_api
from databases import sqlite_database
from pavilion.config.settings import Settings, load_settings
from pavilion.connect.audit import AuditLogSink
from pavilion.runtime import build_runtime

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
    """Migrated settings with the fast connection timeouts (SQLite unless URLs are given)."""
    if "database_url" not in overrides:
        sqlite_database(tmp_path)
    return load_settings(None, data_dir=tmp_path, **(CONNECT_SETTINGS | overrides))


@asynccontextmanager
async def connector_api(settings: Settings) -> AsyncIterator[Api]:
    """The connector's API in process, with the real DP client (real sockets to the DPs)."""
    async with harness_api(build_runtime(settings), owns_runtime=True) as api:
        yield api


async def connection_events(api: Api) -> list[dict[str, Any]]:
    """Every connection event in the tenant's audit log, after the writer caught up."""
    sink = api.rt.provider_client._events
    assert isinstance(sink, AuditLogSink)
    await sink.flush()
    leaves = await api.rt.audit.leaves(api.tenant_id, start=0, limit=10_000)
    return [leaf["event"] for leaf in leaves if leaf["event"].get("kind") == "connection"]


def endpoint_body(region: str, jurisdiction: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"region": region, "jurisdiction": jurisdiction, "url": url, **extra}
