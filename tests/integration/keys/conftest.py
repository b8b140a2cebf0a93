"""A fresh SoftHSM2 token per test, and the connector's API running on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector_support import Api, connector_api, connector_runtime
from keys_support import Token, hsm_overrides, make_softhsm_token
from pavilion.config.settings import Settings
from pavilion.keystore.pkcs11.worker import active_workers
from pavilion.runtime import Runtime
from pavilion.tenancy.roles import Role


@pytest.fixture
def hsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Token]:
    token = make_softhsm_token(tmp_path / "hsm", monkeypatch, "pavilion-keys")
    yield token
    leftovers = active_workers()
    for worker in leftovers:  # finalise for the next test even if this one forgot to close
        worker.stop().result(10)
        worker.join(10)
    assert not leftovers, "a test left a PKCS#11 token open"


@pytest.fixture
def hsm_settings(settings: Settings, hsm_token: Token) -> Settings:
    """The shared (migrated) settings, with the PKCS#11 keystore instead of the software one."""
    return settings.model_copy(update=hsm_overrides(hsm_token))


@pytest.fixture
def hsm_keystore_settings(sqlite_settings: Settings, hsm_token: Token) -> Settings:
    """For keystore-only tests: the database does not matter, so SQLite only."""
    return sqlite_settings.model_copy(update=hsm_overrides(hsm_token))


@pytest.fixture
async def hsm_runtime(hsm_settings: Settings, agent_app: Any) -> AsyncIterator[Runtime]:
    async with connector_runtime(hsm_settings, agent_app) as rt:
        yield rt


@pytest.fixture
async def hsm_api(hsm_runtime: Runtime) -> AsyncIterator[Api]:
    roles = (Role.TENANT_ADMIN, Role.DP_ADMIN, Role.BROKER)
    async with connector_api(hsm_runtime, tenant="tenant-hsm", roles=roles) as harness:
        yield harness
