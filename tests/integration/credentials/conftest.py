"""The connector running on a fresh SoftHSM2 token: keystore and trust-chain keys in the HSM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector_support import Api, provider_client_for
from credentials_support import SoftHsmToken, softhsm_token
from pavilion.api.app import create_app
from pavilion.config.settings import Settings
from pavilion.keystore.pkcs11_worker import active_workers
from pavilion.runtime import Runtime, build_runtime
from pavilion.tenancy.roles import Role


@pytest.fixture
def credentials_hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsmToken]:
    token = softhsm_token(tmp_path / "hsm", monkeypatch, "pavilion-credentials")
    yield token
    leftovers = active_workers()
    for worker in leftovers:  # finalise for the next test even if this one forgot to close
        worker.stop().result(10)
        worker.join(10)
    assert not leftovers, "a test left a PKCS#11 token open"


@pytest.fixture
async def credentials_hsm_runtime(
    sqlite_settings: Settings, credentials_hsm: SoftHsmToken, agent_app: Any
) -> AsyncIterator[Runtime]:
    settings = sqlite_settings.model_copy(update=credentials_hsm.settings_overrides())
    rt = build_runtime(settings, provider_client=provider_client_for(agent_app))
    try:
        yield rt
    finally:
        await rt.aclose()


@pytest.fixture
async def credentials_hsm_api(credentials_hsm_runtime: Runtime) -> AsyncIterator[Api]:
    rt = credentials_hsm_runtime
    app = create_app(rt, owns_runtime=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connector.test"
        ) as client,
    ):
        harness = Api(client, rt)
        tenant = await rt.tenancy.create_tenant("tenant-hsm")
        harness.tenant_id = tenant.id
        for role in (Role.TENANT_ADMIN, Role.DP_ADMIN, Role.BROKER):
            issued = await rt.tenancy.create_token(tenant.id, role.value, role)
            harness.tokens[role.value] = issued.secret
        yield harness
