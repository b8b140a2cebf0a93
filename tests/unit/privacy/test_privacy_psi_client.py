"""The connector's OPRF client against misbehaving DP agents (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.jose import b64url
from pavilion.privacy import oprf
from pavilion.privacy.errors import EvaluationRateLimited
from pavilion.privacy.psi_client import OprfEvaluator


@dataclass(frozen=True)
class Provider:
    id: str = "p1"
    name: str = "Test DP"
    api_key: str | None = "k" * 20


@dataclass(frozen=True)
class Endpoint:
    url: str
    region: str


KEY = oprf.generate_key_pair()
SERVER = oprf.VOPRFServer(KEY.sk)
ELEMENTS = [oprf.VOPRFClient(KEY.pk).blind(b"x").blinded_element]
ENDPOINTS = [Endpoint("http://a.test", "eu-west"), Endpoint("http://b.test", "eu-north")]


def honest(request: httpx.Request) -> httpx.Response:
    batch = SERVER.blind_evaluate_batch(ELEMENTS)
    return httpx.Response(
        200,
        json={
            "key_id": "k",
            "evaluated": [b64url(e) for e in batch.evaluated_elements],
            "proof": b64url(batch.proof),
        },
    )


async def evaluate(handler: Callable[[httpx.Request], httpx.Response]) -> object:
    client = OprfEvaluator(transport=httpx.MockTransport(handler))
    try:
        return await client.evaluate(Provider(), ENDPOINTS, "tenant-1", "k", ELEMENTS)
    finally:
        await client.aclose()


async def test_sends_tenant_and_key_and_fails_over_on_server_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "a.test":
            return httpx.Response(503)
        return honest(request)

    result = await evaluate(handler)
    assert result.region == "eu-north"  # type: ignore[attr-defined]
    assert result.attempts == 2  # type: ignore[attr-defined]
    assert seen[1].headers["x-pavilion-tenant"] == "tenant-1"
    assert seen[1].headers["authorization"] == "Bearer " + "k" * 20


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
)
async def test_transport_failures_end_unavailable(failure: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(ProviderUnavailable, match="after 2 attempts"):
        await evaluate(handler)


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (httpx.Response(429, headers={"retry-after": "7"}), EvaluationRateLimited, "rate-limits"),
        (httpx.Response(401), ProviderBadResponse, "credentials"),
        (httpx.Response(409), ProviderBadResponse, "push its tag sets again"),
        (httpx.Response(418), ProviderBadResponse, "HTTP 418"),
        (httpx.Response(200, content=b"not json"), ProviderBadResponse, "malformed"),
        (
            httpx.Response(200, json={"evaluated": [], "proof": ""}),
            ProviderBadResponse,
            "0 evaluations",
        ),
    ],
)
async def test_bad_answers_are_typed(
    response: httpx.Response, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        await evaluate(lambda request: response)
    if isinstance(caught.value, EvaluationRateLimited):
        assert caught.value.retry_after_s == 7


async def test_batch_size_is_bounded() -> None:
    client = OprfEvaluator(transport=httpx.MockTransport(honest))
    with pytest.raises(ValueError, match="1 to 10000"):
        await client.evaluate(Provider(), ENDPOINTS, "t", "k", [])
    await client.aclose()
