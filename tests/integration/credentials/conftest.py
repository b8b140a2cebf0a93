"""The connector running on a fresh SoftHSM2 token: keystore and trust-chain keys in the HSM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector_support import Api, connector_api, connector_runtime
from credentials_support import SoftHsmToken, softhsm_token
from pavilion.config.settings import Settings
from pavilion.keystore.pkcs11.worker import active_workers
from pavilion.runtime import Runtime
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
    async with connector_runtime(settings, agent_app) as rt:
        yield rt


@pytest.fixture
async def credentials_hsm_api(credentials_hsm_runtime: Runtime) -> AsyncIterator[Api]:
    roles = (Role.TENANT_ADMIN, Role.DP_ADMIN, Role.BROKER)
    async with connector_api(
        credentials_hsm_runtime, tenant="tenant-hsm", roles=roles, platform_admin=False
    ) as harness:
        yield harness
