"""The DP client: retries only what may be retried, within one deadline."""

from __future__ import annotations

import random

import httpx
import pytest

from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.providers.types import Endpoint, ProviderConnection

PROVIDER = ProviderConnection(
    id="p1",
    name="Uni",
    claim_types=("student_status",),
    endpoints=(Endpoint("eu-west", "EU", "http://a"), Endpoint("eu-central", "EU", "http://b")),
    auth_type="api_key",
    api_key="k" * 20,
    record_schema={},
)


def _client(handler: object, retries: int = 1, timeout: float = 2.0) -> ProviderClient:
    return ProviderClient(
        timeout_seconds=timeout,
        connect_timeout_seconds=1,
        retry=RetryPolicy(retries, 0.001),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        rng=random.Random(1),
    )


async def test_fails_over_to_the_next_allowed_endpoint() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "a":
            raise httpx.ConnectError("down", request=request)
        assert request.headers["authorization"] == "Bearer " + "k" * 20
        assert int(request.headers["x-request-deadline-ms"]) > 0
        return httpx.Response(200, json={"found": False})

    result = await _client(handler).lookup(PROVIDER, PROVIDER.endpoints, {"student_id": "S1"})
    # The retry goes to an endpoint not tried yet (another region) rather than the failed one.
    assert (result.found, result.region, result.attempts) == (False, "eu-central", 2)
    assert seen == ["a", "b"]


async def test_gives_up_with_the_last_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderUnavailable, match="timed out after 2 attempts"):
        await _client(handler).lookup(PROVIDER, PROVIDER.endpoints, {"student_id": "S1"})


async def test_deadline_bounds_all_attempts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    client = _client(handler, retries=3, timeout=0.000001)
    with pytest.raises(ProviderUnavailable, match="did not answer within"):
        await client.lookup(PROVIDER, PROVIDER.endpoints, {"student_id": "S1"})


async def test_bad_answers_are_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(403)

    with pytest.raises(ProviderBadResponse, match="refused the connector's credentials"):
        await _client(handler).lookup(PROVIDER, PROVIDER.endpoints, {"student_id": "S1"})
    assert calls == 1


def test_backoff_is_jittered_and_grows() -> None:
    policy = RetryPolicy(3, 0.1)
    rng = random.Random(0)
    delays = [policy.delay(attempt, rng) for attempt in range(3)]
    assert all(0 <= d <= 0.1 * 2**i for i, d in enumerate(delays))
