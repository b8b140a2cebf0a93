"""The connector test harness: runtime -> app -> client -> tenant -> tokens, made in one place.

:func:`connector_runtime` builds a runtime (its DP client optionally wired to an in-process agent)
and closes it; :func:`connector_api` serves the API in process over a runtime and yields an
:class:`Api` with a tenant and a token per role. Every fixture that needs the API goes through
these two, whatever its settings (SQLite or PostgreSQL, software keystore or HSM).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from pavilion.api.app import create_app
from pavilion.config.settings import Settings
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.runtime import Runtime, build_runtime
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA
from pavilion.tenancy.models import PLATFORM_TENANT_ID
from pavilion.tenancy.roles import Role

AGENT_KEY = "test-agent-key-" + "x" * 16


def provider_client_for(app: Any, *, retries: int = 1) -> ProviderClient:
    """A DP client whose HTTP goes to an in-process ASGI app instead of the network."""
    return ProviderClient(
        timeout_seconds=5,
        connect_timeout_seconds=1,
        retry=RetryPolicy(retries, 0.001),
        transport=httpx.ASGITransport(app=app),
    )


class Api:
    """The connector's API in process, with tokens of every role for one tenant."""

    def __init__(self, client: httpx.AsyncClient, rt: Runtime, app: FastAPI) -> None:
        self.client = client
        self.rt = rt
        self.app = app
        self.tokens: dict[str, str] = {}
        self.tenant_id = ""

    def auth(self, role: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[role]}"}

    async def register_provider(self, **changes: Any) -> dict[str, Any]:
        body = provider_body() | changes
        response = await self.client.post("/v1/providers", json=body, headers=self.auth("dp-admin"))
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def verify(
        self, provider_id: str, claim: dict[str, Any], identifiers: dict[str, str], **extra: Any
    ) -> httpx.Response:
        body = {
            "provider_id": provider_id,
            "claim": claim,
            "subject": {"identifiers": identifiers, "residency": extra.pop("residency", "EU")},
            "purpose": "eligibility check",
            "format": "jwt_vc",
        }
        return await self.client.post(
            "/v1/verifications", json=body, headers=self.auth("broker") | extra.pop("headers", {})
        )


#: Every role a tenant's tokens can have (the platform admin belongs to no tenant).
TENANT_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.PLATFORM_ADMIN)


@asynccontextmanager
async def connector_runtime(settings: Settings, agent_app: Any = None) -> AsyncIterator[Runtime]:
    """A runtime on ``settings``; with ``agent_app`` its DP client calls that app in process."""
    client = provider_client_for(agent_app) if agent_app is not None else None
    rt = build_runtime(settings, provider_client=client)
    try:
        yield rt
    finally:
        await rt.aclose()


@asynccontextmanager
async def connector_api(
    rt: Runtime,
    *,
    tenant: str = "tenant-a",
    roles: Iterable[Role] = TENANT_ROLES,
    platform_admin: bool = True,
    owns_runtime: bool = False,
) -> AsyncIterator[Api]:
    """The API in process over ``rt``: tenant ``tenant`` with a token per role in ``roles``
    (named by the role's value), plus a platform-admin token when ``platform_admin``."""
    app = create_app(rt, owns_runtime=owns_runtime)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://connector.test"
        ) as client,
    ):
        harness = Api(client, rt, app)
        created = await rt.tenancy.create_tenant(tenant)
        harness.tenant_id = created.id
        if platform_admin:
            platform = await rt.tenancy.create_token(PLATFORM_TENANT_ID, "p", Role.PLATFORM_ADMIN)
            harness.tokens["platform-admin"] = platform.secret
        for role in roles:
            issued = await rt.tenancy.create_token(created.id, role.value, role)
            harness.tokens[role.value] = issued.secret
        yield harness


def provider_body() -> dict[str, Any]:
    return {
        "name": "Test University",
        "claim_types": ["student_status", "age_over", "membership"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": "http://agent.test"}],
        "auth": {"type": "api_key", "api_key": AGENT_KEY},
        "record_schema": ROSTER_RECORD_SCHEMA,
    }
