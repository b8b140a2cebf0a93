"""Shared fixtures: settings, databases (SQLite and the machine's PostgreSQL), runtime, API."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from connector_support import AGENT_KEY, Api, provider_client_for
from pavilion.api.app import create_app
from pavilion.config.settings import Settings, load_settings
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.runtime import Runtime, build_runtime
from pavilion.store.migrate import app_role_for, upgrade
from pavilion.synth.roster import StudentRecord, generate_roster
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.roles import Role

PG_HOST = os.environ.get("PAVILION_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432"
APP_ROLE = "pavilion_app"
REFERENCE_DATE = date(2026, 1, 1)


def services_required() -> bool:
    return os.environ.get("PAVILION_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_ADMIN}/test", timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_urls() -> Iterator[tuple[str, str]]:
    """A fresh database per test: (app url as the non-owner role, owner url for migrations)."""
    name = f"pavilion_t_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL is not reachable on {PG_HOST}:5432 ({exc}); start it to run these"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield f"postgresql://{APP_ROLE}@{PG_HOST}:5432/{name}", f"{PG_ADMIN}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Migrated settings on each backend; PostgreSQL runs as the non-owner app role."""
    overrides: dict[str, Any] = {"data_dir": tmp_path}
    if request.param == "postgres":
        app_url, owner_url = request.getfixturevalue("postgres_urls")
        overrides |= {"database_url": app_url, "database_migration_url": owner_url}
    built = load_settings(None, **overrides)
    upgrade(
        built.database_migration_url,
        app_role_for(built.database_url, built.database_migration_url),
    )
    return built


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    built = load_settings(None, data_dir=tmp_path)
    upgrade(built.database_migration_url)
    return built


@pytest.fixture
def roster() -> list[StudentRecord]:
    return generate_roster(60, seed=7, reference_date=REFERENCE_DATE)


@pytest.fixture
def agent_app(roster: list[StudentRecord]) -> Any:
    return create_agent_app(
        AgentConfig(api_key=SecretStr(AGENT_KEY)),
        RecordIndex(roster, as_of=datetime(2026, 1, 1, tzinfo=UTC)),
    )


@pytest.fixture
async def runtime(settings: Settings, agent_app: Any) -> AsyncIterator[Runtime]:
    rt = build_runtime(settings, provider_client=provider_client_for(agent_app))
    try:
        yield rt
    finally:
        await rt.aclose()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    app = create_app(runtime, owns_runtime=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connector.test"
        ) as client,
    ):
        harness = Api(client, runtime)
        tenant = await runtime.tenancy.create_tenant("tenant-a")
        harness.tenant_id = tenant.id
        platform = await runtime.tenancy.create_token(PLATFORM_TENANT_ID, "p", Role.PLATFORM_ADMIN)
        harness.tokens["platform-admin"] = platform.secret
        for role in Role:
            if role is not Role.PLATFORM_ADMIN:
                issued = await runtime.tenancy.create_token(tenant.id, role.value, role)
                harness.tokens[role.value] = issued.secret
        yield harness
