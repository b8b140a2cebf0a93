"""Fixtures of the privacy engine's integration tests: a real DP agent with OPRF keys served
over loopback HTTP, and a connector runtime that reaches it over the network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from connector_support import Api
from pavilion.api.app import create_app
from pavilion.config.settings import Settings
from pavilion.runtime import Runtime, build_runtime
from pavilion.synth.roster import StudentRecord
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.roles import Role
from privacy_support import RunningAgent, running_psi_agent, use_fixture_issuer


@pytest.fixture
def psi_agent(roster: list[StudentRecord], tmp_path: Path) -> Iterator[RunningAgent]:
    with running_psi_agent(roster, tmp_path / "dp-keys") as agent:
        yield agent


@pytest.fixture
async def net_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A connector runtime whose DP clients use the real network (loopback)."""
    rt = build_runtime(settings)
    use_fixture_issuer(rt)
    try:
        yield rt
    finally:
        await rt.aclose()


@pytest.fixture
async def net_api(net_runtime: Runtime) -> AsyncIterator[Api]:
    """The connector's API in process over ``net_runtime``, with a token per role."""
    app = create_app(net_runtime, owns_runtime=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connector.test"
        ) as client,
    ):
        harness = Api(client, net_runtime)
        tenant = await net_runtime.tenancy.create_tenant("tenant-a")
        harness.tenant_id = tenant.id
        platform = await net_runtime.tenancy.create_token(
            PLATFORM_TENANT_ID, "p", Role.PLATFORM_ADMIN
        )
        harness.tokens["platform-admin"] = platform.secret
        for role in Role:
            if role is not Role.PLATFORM_ADMIN:
                issued = await net_runtime.tenancy.create_token(tenant.id, role.value, role)
                harness.tokens[role.value] = issued.secret
        harness.app = app  # type: ignore[attr-defined]
        yield harness
