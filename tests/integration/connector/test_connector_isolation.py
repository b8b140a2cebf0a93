"""Row-level security on PostgreSQL, seen through raw SQL as the app role."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from connector_support import Api
from pavilion.store.models import Base


def _plain(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


@pytest.fixture
def postgres_only(api: Api) -> Api:
    if not api.rt.db.is_postgres:
        pytest.skip("row-level security is a PostgreSQL feature; SQLite filters in the app")
    return api


async def test_raw_sql_as_app_role_cannot_cross_tenants(postgres_only: Api) -> None:
    api = postgres_only
    provider_a = await api.register_provider()
    tenant_b = await api.rt.tenancy.create_tenant("tenant-b")
    from connector_support import provider_body
    from pavilion.providers.schemas import ProviderIn

    await api.rt.providers.register(tenant_b.id, ProviderIn.model_validate(provider_body()))

    conn = await asyncpg.connect(_plain(api.rt.settings.database_url))
    try:
        assert await conn.fetchval("SELECT current_user") == "pavilion_app"
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", api.tenant_id)
            rows = await conn.fetch("SELECT id, tenant_id FROM providers")
            assert [(r["id"], r["tenant_id"]) for r in rows] == [(provider_a["id"], api.tenant_id)]
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM providers WHERE tenant_id = $1", tenant_b.id
                )
                == 0
            )
            updated = await conn.execute(
                "UPDATE providers SET name = 'stolen' WHERE tenant_id = $1", tenant_b.id
            )
            assert updated == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", api.tenant_id)
                await conn.execute(
                    "INSERT INTO providers (id, tenant_id, name, claim_types, auth, record_schema,"
                    " created_at, updated_at) VALUES ('x', $1, 'planted', '[]', '{}', '{}',"
                    " now(), now())",
                    tenant_b.id,
                )
        # The setting was transaction-local: the pooled connection carries nothing over.
        assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
        assert await conn.fetchval("SELECT count(*) FROM providers") == 0
        # The audit log is append-only for the app role, whatever the tenant.
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", api.tenant_id)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE audit_leaves SET event = '{}'")
    finally:
        await conn.close()


async def test_every_tenant_table_has_forced_rls(postgres_only: Api) -> None:
    tenant_tables = {t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.c}
    conn = await asyncpg.connect(_plain(api_url := postgres_only.rt.settings.database_url))
    try:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relname = ANY($1::text[])",
            list(tenant_tables),
        )
    finally:
        await conn.close()
    assert {r["relname"] for r in rows} == tenant_tables, api_url
    assert all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in rows)


async def test_app_refuses_to_run_as_a_superuser(postgres_only: Api) -> None:
    from pavilion.errors import ConfigurationError
    from pavilion.store.database import Database

    owner = Database(postgres_only.rt.settings.database_migration_url)
    try:
        with pytest.raises(ConfigurationError, match="row-level security"):
            await owner.check_role(allow_bypass=False)
        await owner.check_role(allow_bypass=True)
    finally:
        await owner.dispose()
