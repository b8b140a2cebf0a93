"""The connector test harness: an in-process API with tokens of every role."""

from __future__ import annotations

from typing import Any

import httpx

from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.runtime import Runtime
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA

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

    def __init__(self, client: httpx.AsyncClient, rt: Runtime) -> None:
        self.client = client
        self.rt = rt
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


def provider_body() -> dict[str, Any]:
    return {
        "name": "Test University",
        "claim_types": ["student_status", "age_over", "membership"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": "http://agent.test"}],
        "auth": {"type": "api_key", "api_key": AGENT_KEY},
        "record_schema": ROSTER_RECORD_SCHEMA,
    }
