"""Secrets, headers and roles (issue 14, item 7): a token's secret is never cached, every answer
says nosniff and may not be framed, the docs carry their own CSP, the server does not name
itself, /metrics wants a token, API tokens expire and rotate, the app role cannot change or
delete a tenant, and a refused superuser gets one message and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete, text, update

from connector_support import Api, connector_api, connector_runtime
from pavilion.api.app import create_app
from pavilion.api.middleware import API_CSP, DOCS_CSP
from pavilion.config.settings import Settings, load_settings
from pavilion.errors import ConfigurationError, StorageError
from pavilion.runtime import Runtime
from pavilion.serving import BackgroundServer
from pavilion.tenancy.models import ApiToken, Tenant
from pavilion.tenancy.roles import Role

METRICS_TOKEN = "m" * 40


async def _new_token(api: Api, **body: object) -> httpx.Response:
    return await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens",
        json={"name": "jit", "role": "broker", **body},
        headers=api.auth("tenant-admin"),
    )


async def test_the_answer_carrying_a_token_secret_is_never_stored_by_a_cache(api: Api) -> None:
    response = await _new_token(api)
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == API_CSP
    assert "frame-ancestors 'none'" in API_CSP
    assert response.headers["x-frame-options"] == "DENY"


async def test_problems_and_guard_refusals_carry_the_headers_too(api: Api) -> None:
    for response in (
        await api.client.get("/v1/providers"),  # 401 from the app
        await api.client.get("/healthz", headers={"x-filler": "a" * 20_000}),  # 431 guard
    ):
        assert response.status_code in (401, 431)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


async def test_the_docs_have_a_csp_that_forbids_framing(api: Api) -> None:
    for path in ("/docs", "/redoc"):
        response = await api.client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DOCS_CSP
        assert "frame-ancestors 'none'" in DOCS_CSP


async def test_cacheable_public_documents_keep_their_own_cache_control(api: Api) -> None:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_running_server_does_not_name_itself(runtime: Runtime) -> None:
    with BackgroundServer(create_app(runtime, owns_runtime=False), lifespan="off") as server:
        response = httpx.get(server.url + "/healthz")
    assert response.status_code == 200
    assert "server" not in response.headers


async def test_metrics_want_a_platform_admin_token_when_no_metrics_token_is_set(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 401
    assert (await api.client.get("/metrics", headers=api.auth("tenant-admin"))).status_code == 403
    allowed = await api.client.get("/metrics", headers=api.auth("platform-admin"))
    assert allowed.status_code == 200
    assert "pavilion_http_request_duration_seconds" in allowed.text


async def test_metrics_answer_the_configured_metrics_token(
    sqlite_settings: Settings, agent_app: object
) -> None:
    settings = sqlite_settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    async with connector_runtime(settings, agent_app) as rt, connector_api(rt) as api:
        scraper = {"authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await api.client.get("/metrics", headers=scraper)).status_code == 200
        wrong = {"authorization": "Bearer " + "n" * 40}
        assert (await api.client.get("/metrics", headers=wrong)).status_code == 401
        admin = await api.client.get("/metrics", headers=api.auth("platform-admin"))
        assert admin.status_code == 200


def test_a_short_metrics_token_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PAVILION_METRICS_TOKEN"):
        load_settings(None, data_dir=tmp_path, metrics_token="short")


async def test_a_token_with_a_lifetime_works_until_it_expires(api: Api) -> None:
    created = await _new_token(api, expires_in_seconds=60)
    assert created.status_code == 201
    body = created.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=50) < expires - datetime.now(UTC) <= timedelta(seconds=60)
    mine = {"authorization": f"Bearer {body['token']}"}
    assert (await api.client.get("/v1/providers", headers=mine)).status_code == 200
    async with api.rt.db.transaction(api.tenant_id) as session:  # an hour later, as it were
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == body["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    api.rt.tenancy._auth_cache.clear()  # another node that never saw it
    refused = await api.client.get("/v1/providers", headers=mine)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


@pytest.mark.parametrize("seconds", [0, 59, 366 * 86_400 + 1])
async def test_token_lifetimes_are_bounded(api: Api, seconds: int) -> None:
    response = await _new_token(api, expires_in_seconds=seconds)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "expires_in_seconds"


async def test_rotation_issues_a_new_secret_and_ends_the_old_after_the_grace(api: Api) -> None:
    old = (await _new_token(api)).json()
    old_auth = {"authorization": f"Bearer {old['token']}"}
    rotated = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens/{old['id']}/rotate",
        json={"grace_seconds": 0},
        headers=api.auth("tenant-admin"),
    )
    assert rotated.status_code == 201
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()
    assert (new["name"], new["role"]) == (old["name"], old["role"])
    assert new["token"] != old["token"]
    new_auth = {"authorization": f"Bearer {new['token']}"}
    assert (await api.client.get("/v1/providers", headers=new_auth)).status_code == 200
    assert (await api.client.get("/v1/providers", headers=old_auth)).status_code == 401
    again = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens/{old['id']}/rotate",
        headers=api.auth("tenant-admin"),
    )
    assert again.status_code == 404  # a token that no longer works has no successor


async def test_during_the_grace_both_secrets_work(api: Api) -> None:
    old = (await _new_token(api)).json()
    rotated = await api.client.post(
        f"/v1/tenants/{api.tenant_id}/tokens/{old['id']}/rotate",
        headers=api.auth("tenant-admin"),
    )
    new = rotated.json()
    for secret in (old["token"], new["token"]):
        response = await api.client.get(
            "/v1/providers", headers={"authorization": f"Bearer {secret}"}
        )
        assert response.status_code == 200
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        row = await session.get(ApiToken, old["id"])
        assert row is not None
        assert row.expires_at is not None
        left = row.expires_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=290) < left <= timedelta(seconds=300)


async def test_another_tenants_token_cannot_be_rotated(api: Api) -> None:
    other = await api.rt.tenancy.create_tenant("tenant-b")
    theirs = await api.rt.tenancy.create_token(other.id, "b", Role.BROKER)
    response = await api.client.post(
        f"/v1/tenants/{other.id}/tokens/{theirs.id}/rotate", headers=api.auth("tenant-admin")
    )
    assert response.status_code == 403


async def test_the_app_role_cannot_change_or_delete_a_tenant(runtime: Runtime) -> None:
    if not runtime.db.is_postgres:
        pytest.skip("SQLite has no roles; PostgreSQL enforces it")
    tenant = await runtime.tenancy.create_tenant("shreddable")
    for statement in (
        update(Tenant).where(Tenant.id == tenant.id).values(wrapped_data_key=b"\x00" * 60),
        update(Tenant).where(Tenant.id == tenant.id).values(name="renamed"),
        delete(Tenant).where(Tenant.id == tenant.id),
    ):
        with pytest.raises(StorageError):
            async with runtime.db.transaction(None) as session:
                await session.execute(statement)
    async with runtime.db.transaction(None, readonly=True) as session:
        name = (
            await session.execute(text("SELECT name FROM tenants WHERE id = :i"), {"i": tenant.id})
        ).scalar_one()
    assert name == "shreddable"


def test_refusing_a_superuser_prints_only_the_message(
    postgres_urls: tuple[str, str], tmp_path: Path
) -> None:
    _, owner_url = postgres_urls  # the owner is the server's superuser
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
    env |= {"PAVILION_DATA_DIR": str(tmp_path), "PAVILION_DATABASE_URL": owner_url}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pavilion.cli.main import main; main()",
            "serve",
            "--port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "superuser or BYPASSRLS role" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
