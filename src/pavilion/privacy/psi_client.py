"""The connector's client of the DP agent's OPRF endpoint (``POST /v1/oprf/evaluate``).

It sends blinded elements only; the caller verifies the returned proof
(:func:`pavilion.privacy.psi.finalize_outputs`). Endpoints are tried in the order residency
routing allowed them; connection failures, timeouts and 5xx move on to the next one, while a
429 (the DP's per-tenant guessing limit) stops at once with ``Retry-After``.

Calls go over aiohttp (HTTP/1.1 keep-alive, a C parser): a membership check is one small
POST, and httpx's pure-Python HTTP/1.1 costs about 1 ms of CPU per call against aiohttp's
0.2 ms (docs/PERFORMANCE.md). Tests that hand in an httpx transport get an httpx client.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
import certifi
import httpx

from pavilion.errors import ProviderBadResponse, ProviderUnavailable
from pavilion.jose import b64url, b64url_decode_canonical
from pavilion.observability.metrics import DP_CALL_LATENCY
from pavilion.parsing import loads_json
from pavilion.privacy import oprf
from pavilion.privacy.errors import EvaluationRateLimited

TENANT_HEADER: Final = "X-Pavilion-Tenant"
USER_AGENT: Final = "pavilion-connector/psi"
MAX_BATCH: Final = 10_000


class _Endpoint(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def region(self) -> str: ...


class _Provider(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...


@dataclass(frozen=True)
class _Answer:
    """What is read of a DP's answer, whichever client fetched it."""

    status_code: int
    retry_after: str | None
    content: bytes


@dataclass(frozen=True)
class Evaluated:
    evaluated_elements: list[bytes]
    proof: bytes
    region: str
    attempts: int


class OprfEvaluator:
    """One pooled HTTP client for every DP agent's OPRF endpoint."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_seconds
        self._client = (
            None
            if transport is None
            else httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(timeout_seconds, connect=min(2.0, timeout_seconds)),
                headers={"user-agent": USER_AGENT},
            )
        )
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _aiohttp(self) -> aiohttp.ClientSession:
        """The keep-alive pool, made on first use (in the event loop that will use it)."""
        if self._session is None:
            tls = ssl.create_default_context(cafile=certifi.where())
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls, limit=100),
                timeout=aiohttp.ClientTimeout(
                    total=self._timeout_s, sock_connect=min(2.0, self._timeout_s)
                ),
                headers={"user-agent": USER_AGENT},
                trust_env=False,
            )
        return self._session

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Answer:
        if self._client is not None:
            sent = await self._client.post(url, content=body, headers=headers)
            return _Answer(sent.status_code, sent.headers.get("retry-after"), sent.content)
        # Blinded elements only, but never to another host or region: no redirects.
        async with self._aiohttp().post(
            url, data=body, headers=headers, allow_redirects=False
        ) as response:
            return _Answer(
                response.status, response.headers.get("retry-after"), await response.read()
            )

    async def evaluate(
        self,
        provider: _Provider,
        endpoints: Sequence[_Endpoint],
        tenant_id: str,
        key_id: str,
        blinded_elements: Sequence[bytes],
    ) -> Evaluated:
        """BlindEvaluate at the first endpoint that answers; one proof for the batch."""
        if not 0 < len(blinded_elements) <= MAX_BATCH:
            raise ValueError(f"send 1 to {MAX_BATCH} elements per evaluation")
        body = json.dumps(
            {"key_id": key_id, "elements": [b64url(e) for e in blinded_elements]},
            separators=(",", ":"),
        ).encode()
        headers = {TENANT_HEADER: tenant_id, "content-type": "application/json"}
        if provider.api_key is not None:
            headers["authorization"] = f"Bearer {provider.api_key}"
        attempts, last = 0, "no allowed endpoint"
        for endpoint in endpoints:
            attempts += 1
            started = time.perf_counter()
            outcome = "error"
            try:
                response = await self._post(f"{endpoint.url}/v1/oprf/evaluate", body, headers)
                if response.status_code >= 500:
                    outcome = last = f"http_{response.status_code}"
                    continue
                result = _parse(provider, response, len(blinded_elements))
                outcome = "evaluated"
                return Evaluated(result[0], result[1], endpoint.region, attempts)
            except (httpx.TimeoutException, TimeoutError):
                outcome = last = "timed out"
            except (httpx.TransportError, aiohttp.ClientError) as exc:
                outcome, last = "unreachable", type(exc).__name__
            except EvaluationRateLimited:
                outcome = "rate_limited"
                raise
            finally:
                DP_CALL_LATENCY.labels(provider=provider.id, outcome=f"oprf_{outcome}").observe(
                    time.perf_counter() - started
                )
        raise ProviderUnavailable(
            f"provider {provider.name!r} could not evaluate ({last} after {attempts} attempts)",
            extra={"attempts": attempts},
        )


def _parse(provider: _Provider, response: _Answer, count: int) -> tuple[list[bytes], bytes]:
    name = provider.name
    if response.status_code == 429:
        retry = response.retry_after or "1"
        raise EvaluationRateLimited(
            f"provider {name!r} rate-limits OPRF evaluations for this tenant; retry later",
            retry_after_s=int(retry) if retry.isdigit() else 1,
        )
    if response.status_code == 409:
        raise ProviderBadResponse(
            f"provider {name!r} no longer holds the OPRF key of its pushed tag sets; the DP "
            "must push its tag sets again under its current key"
        )
    if response.status_code in (401, 403):
        raise ProviderBadResponse(
            f"provider {name!r} refused the connector's credentials (HTTP "
            f"{response.status_code}); check the provider's auth settings"
        )
    if response.status_code != 200:
        raise ProviderBadResponse(
            f"provider {name!r} answered HTTP {response.status_code} to an OPRF evaluation"
        )
    try:
        body: Any = loads_json(response.content)
        evaluated = [b64url_decode_canonical(e) for e in body["evaluated"]]
        proof = b64url_decode_canonical(body["proof"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderBadResponse(
            f"provider {name!r} answered an OPRF evaluation with a malformed body"
        ) from exc
    if len(evaluated) != count or any(len(e) != oprf.ELEMENT_BYTES for e in evaluated):
        raise ProviderBadResponse(
            f"provider {name!r} returned {len(evaluated)} evaluations for {count} elements"
        )
    return evaluated, proof
