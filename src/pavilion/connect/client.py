"""The DP client: one pooled HTTP/2 client, deadlines, and bounded retry of idempotent calls."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.observability.metrics import DP_CALL_LATENCY
from pavilion.providers.service import Endpoint, ProviderConnection


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_seconds: float = 0.05

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff (AWS architecture blog, 2015)."""
        return rng.uniform(0, self.backoff_seconds * (2**attempt))


@dataclass(frozen=True)
class LookupResult:
    found: bool
    record: dict[str, Any] | None
    as_of: str | None
    region: str
    attempts: int


class ProviderClient:
    """Calls DP agents. One instance per process; its connection pool is shared by requests."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            http2=transport is None,
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds, connect=connect_timeout_seconds),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
            headers={"user-agent": "pavilion-connector/0.1"},
        )
        self._retry = retry
        self._rng = rng or random.Random()
        self._timeout = timeout_seconds

    async def aclose(self) -> None:
        await self._client.aclose()

    async def lookup(
        self,
        provider: ProviderConnection,
        endpoints: Sequence[Endpoint],
        identifiers: Mapping[str, str],
    ) -> LookupResult:
        """Ask the first endpoint that answers; retries and moves on only for transient faults."""
        deadline = time.monotonic() + self._timeout
        attempts = 0
        last_error = "no endpoint"
        for endpoint in endpoints:
            for attempt in range(self._retry.retries + 1):
                attempts += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProviderUnavailable(
                        f"provider {provider.name!r} did not answer within {self._timeout:g}s",
                        extra={"attempts": attempts},
                    )
                started = time.perf_counter()
                outcome = "error"
                try:
                    response = await self._client.post(
                        f"{endpoint.url}/v1/lookup",
                        json={"identifiers": dict(identifiers)},
                        headers=_auth_headers(provider, remaining),
                        timeout=httpx.Timeout(remaining, connect=min(remaining, 2.0)),
                    )
                    if response.status_code >= 500:  # transient: an idempotent lookup retries
                        outcome = f"http_{response.status_code}"
                        last_error = f"HTTP {response.status_code}"
                    else:
                        result = _parse(provider, endpoint, response, attempts)
                        outcome = "found" if result.found else "not_found"
                        return result
                except httpx.TimeoutException:
                    outcome, last_error = "timeout", "timed out"
                except httpx.TransportError as exc:
                    outcome, last_error = "unreachable", type(exc).__name__
                except ProviderBadResponse:
                    outcome = "bad_response"
                    raise
                finally:
                    DP_CALL_LATENCY.labels(provider=provider.id, outcome=outcome).observe(
                        time.perf_counter() - started
                    )
                if attempt < self._retry.retries:
                    await asyncio.sleep(
                        min(self._retry.delay(attempt, self._rng), max(0.0, remaining))
                    )
        raise ProviderUnavailable(
            f"provider {provider.name!r} is unavailable ({last_error} after {attempts} attempts)",
            extra={"attempts": attempts},
        )


def _auth_headers(provider: ProviderConnection, remaining: float) -> dict[str, str]:
    headers = {"x-request-deadline-ms": str(int(remaining * 1000))}
    if provider.api_key is not None:
        headers["authorization"] = f"Bearer {provider.api_key}"
    return headers


def _parse(
    provider: ProviderConnection, endpoint: Endpoint, response: httpx.Response, attempts: int
) -> LookupResult:
    if response.status_code in (401, 403):
        raise ProviderBadResponse(
            f"provider {provider.name!r} refused the connector's credentials "
            f"(HTTP {response.status_code}); check the provider's auth settings"
        )
    if response.status_code != 200:
        raise ProviderBadResponse(
            f"provider {provider.name!r} answered HTTP {response.status_code} to a lookup"
        )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise ProviderBadResponse(f"provider {provider.name!r} answered with invalid JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("found"), bool):
        raise ProviderBadResponse(
            f"provider {provider.name!r} answered without a boolean 'found' member"
        )
    record = body.get("record")
    if body["found"] and not isinstance(record, dict):
        raise ProviderBadResponse(
            f"provider {provider.name!r} found the subject but sent no record"
        )
    as_of = body.get("as_of")
    return LookupResult(
        found=body["found"],
        record=record if body["found"] else None,
        as_of=as_of if isinstance(as_of, str) else None,
        region=endpoint.region,
        attempts=attempts,
    )
