"""One attempt of a lookup at one endpoint: the HTTP call, what the answer means, its record.

:meth:`Attempts.run` posts the lookup with the connector's DP credentials and what is left of
the deadline (``X-Request-Deadline-Ms``), admits at most the pool's connection limit in flight,
and turns the answer into an :class:`Outcome`: a result, a failure that counts against the
endpoint (timeout, connect or TLS error, 5xx, garbage) or an error that is never retried (4xx,
token trouble). Every outcome is recorded in the endpoint's health (EWMA, breaker, outlier
ejection) and in metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from pavilion.connect import metrics
from pavilion.connect.auth import TOKEN_METHODS, DpAuthenticator, TokenEndpointUnavailable
from pavilion.connect.budget import RetryBudget
from pavilion.connect.config import ConnectConfig
from pavilion.connect.endpoints import AttemptTrace, EndpointBook, EndpointState
from pavilion.connect.health import FailureKind
from pavilion.connect.http1 import Http1Answer, Http1Pools
from pavilion.connect.outlier import may_eject
from pavilion.connect.pools import PoolRegistry
from pavilion.connect.routing import Route
from pavilion.connect.tls import tls_failure
from pavilion.errors import PavilionError, ProviderBadResponse
from pavilion.observability.metrics import DP_CALL_LATENCY
from pavilion.parsing import loads_json
from pavilion.providers.types import Endpoint, ProviderConnection

DEADLINE_HEADER = "x-request-deadline-ms"


@dataclass(frozen=True)
class LookupResult:
    found: bool
    record: dict[str, Any] | None
    as_of: str | None
    region: str
    attempts: int
    endpoint: str = ""
    hedged: bool = False
    #: Served outside the route's preferred tier (the home region had failed).
    failover: bool = False


@dataclass
class Outcome:
    """What one attempt came to: a result, a failure of the endpoint, or an error."""

    state: EndpointState
    result: LookupResult | None = None
    failure: FailureKind | None = None
    reason: str = ""
    error: PavilionError | None = None
    auth_rejected: bool = False


@dataclass
class LookupRequest:
    """One lookup across its attempts: the route, the deadline, the endpoints tried."""

    provider: ProviderConnection
    route: Route[Endpoint]
    identifiers: Mapping[str, str]
    deadline: float
    budget: RetryBudget
    validate: Callable[[dict[str, Any]], None] | None = None
    tried: set[str] = field(default_factory=set)
    attempts: int = 0


class Attempts:
    """Runs single attempts at endpoints and records their outcomes."""

    def __init__(
        self,
        config: ConnectConfig,
        book: EndpointBook,
        pools: PoolRegistry,
        auth: DpAuthenticator,
        *,
        connect_timeout_s: float,
        clock: Callable[[], float],
        http1: Http1Pools | None = None,
    ) -> None:
        self._config = config
        self._book = book
        self._pools = pools
        self._http1 = http1  # lookups over aiohttp (HTTP/1.1) instead of httpx
        self._auth = auth
        self._connect_timeout = connect_timeout_s
        self._clock = clock

    async def run(self, request: LookupRequest, state: EndpointState) -> Outcome:
        provider = request.provider
        remaining = request.deadline - self._clock()
        budget_s = min(remaining, self._config.attempt_timeout_s or remaining)
        try:
            auth_headers = await self._auth.headers(provider, max(budget_s, 0.001))
        except TokenEndpointUnavailable as exc:
            metrics.TOKEN_FETCHES.labels(provider.id, "unavailable").inc()
            return Outcome(state, error=exc)
        except ProviderBadResponse as exc:
            metrics.TOKEN_FETCHES.labels(provider.id, "refused").inc()
            return Outcome(state, error=exc)
        budget_s = min(request.deadline - self._clock(), self._config.attempt_timeout_s or 1e9)
        if budget_s <= 0:
            return Outcome(state, failure=FailureKind.TIMEOUT, reason="deadline passed")
        headers = {DEADLINE_HEADER: str(max(int(budget_s * 1000), 1)), **auth_headers}
        labels = state.labels()
        self._book.publish(state, state.health.start(self._clock()))
        in_flight = metrics.IN_FLIGHT.labels(*labels)
        in_flight.inc()
        started = time.perf_counter()
        outcome_label = "error"
        trace = AttemptTrace()
        try:
            if state.slots is None:
                state.slots = asyncio.Semaphore(self._config.pool.max_connections)
            response: httpx.Response | Http1Answer
            if self._http1 is not None:
                async with asyncio.timeout(budget_s), state.slots:
                    response = await self._http1.post(
                        provider.id,
                        f"{state.endpoint.url}/v1/lookup",
                        provider.tls,
                        body={"identifiers": dict(request.identifiers)},
                        headers=headers,
                        budget_s=budget_s,
                        trace=trace,
                        on_connection=partial(
                            self._book.opened,
                            state,
                            attempt=trace,
                            tls=state.endpoint.url.startswith("https://"),
                        ),
                    )
            else:
                async with (
                    asyncio.timeout(budget_s),
                    state.slots,
                    self._pools.lease(provider.id, state.endpoint.url, provider.tls) as client,
                ):
                    response = await client.post(
                        f"{state.endpoint.url}/v1/lookup",
                        json={"identifiers": dict(request.identifiers)},
                        headers=headers,
                        timeout=httpx.Timeout(
                            budget_s, connect=min(budget_s, self._connect_timeout)
                        ),
                        extensions={"trace": self._book.tracer(state, trace)},
                    )
            outcome = self._judge(request, state, response, time.perf_counter() - started)
        except (TimeoutError, httpx.TimeoutException):
            outcome = Outcome(state, failure=FailureKind.TIMEOUT, reason="timed out")
        except httpx.TransportError as exc:
            outcome = self._transport_failure(state, exc, trace)
        except asyncio.CancelledError:
            state.health.cancel()
            outcome_label = "cancelled"
            raise
        except Exception:  # a bug, not the endpoint's fault: leave the health as it was
            state.health.cancel()
            outcome_label = "crashed"
            raise
        finally:
            elapsed = time.perf_counter() - started
            in_flight.dec()
            if outcome_label not in {"cancelled", "crashed"}:
                outcome_label = metric_label(outcome)
                self._record(request, state, outcome, elapsed)
            metrics.ENDPOINT_LATENCY.labels(*labels, outcome_label).observe(elapsed)
            DP_CALL_LATENCY.labels(provider=provider.id, outcome=outcome_label).observe(elapsed)
        return outcome

    def _judge(
        self,
        request: LookupRequest,
        state: EndpointState,
        response: httpx.Response | Http1Answer,
        elapsed: float,
    ) -> Outcome:
        provider = request.provider
        status = response.status_code
        if status >= 500:
            return Outcome(state, failure=FailureKind.HTTP_5XX, reason=f"HTTP {status}")
        if status == 401 and self._auth.method(provider) in TOKEN_METHODS:
            return Outcome(
                state,
                auth_rejected=True,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} refused the connector's access token "
                    "(HTTP 401) even after a fresh one was fetched"
                ),
            )
        if status in (401, 403):
            return Outcome(
                state,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} refused the connector's credentials "
                    f"(HTTP {status}); check the provider's auth settings"
                ),
            )
        if status != 200:
            return Outcome(
                state,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} answered HTTP {status} to a lookup"
                ),
            )
        try:
            result = parse_answer(provider, state.endpoint, response, request.attempts)
            if result.record is not None and request.validate is not None:
                request.validate(result.record)
        except ProviderBadResponse as exc:
            return Outcome(state, failure=FailureKind.GARBAGE, reason="bad answer", error=exc)
        failover = bool(request.route.tiers) and state.endpoint not in request.route.tiers[0]
        return Outcome(state, result=with_changes(result, endpoint=state.label, failover=failover))

    def _transport_failure(
        self, state: EndpointState, exc: httpx.TransportError, trace: AttemptTrace
    ) -> Outcome:
        tls = tls_failure(exc)
        if (
            tls is None
            and trace.fresh_tls
            and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)
        ):
            # TLS 1.3 sends the client certificate after the client's handshake is done: a
            # server that refuses it closes the new connection before any response.
            tls = (
                "tls_client_certificate_refused",
                "the server closed the new TLS connection before answering: it refused the "
                "client certificate (or its absence)",
            )
        if tls is not None:
            kind, reason = tls
            self._book.emit(
                state.provider,
                kind,
                state,
                data={"reason": reason[:200], "auth_method": self._auth.method(state.provider)},
            )
            metrics.CONNECTION_ERRORS.labels(*state.labels(), kind).inc()
            return Outcome(state, failure=FailureKind.TLS, reason=f"TLS: {reason[:120]}")
        metrics.CONNECTION_ERRORS.labels(*state.labels(), FailureKind.CONNECT.value).inc()
        return Outcome(state, failure=FailureKind.CONNECT, reason=type(exc).__name__)

    def _record(
        self, request: LookupRequest, state: EndpointState, outcome: Outcome, elapsed: float
    ) -> None:
        now = self._clock()
        if outcome.failure is None:
            changes = state.health.succeed(elapsed, now)  # a 4xx too: the endpoint itself is up
        else:
            ejected = sum(
                1
                for e in request.provider.endpoints
                if self._book.state(request.provider, e).health.outlier.is_ejected(now)
            )
            changes = state.health.fail(
                outcome.failure,
                elapsed,
                now,
                may_eject=may_eject(
                    ejected,
                    len(request.provider.endpoints),
                    self._config.outlier.max_ejection_percent,
                ),
            )
        self._book.publish(state, changes)
        estimate = state.health.ewma.estimate(now)
        if estimate is not None:
            metrics.EWMA_SECONDS.labels(*state.labels()).set(estimate)


def metric_label(outcome: Outcome) -> str:
    if outcome.result is not None:
        return "found" if outcome.result.found else "not_found"
    if outcome.failure is FailureKind.HTTP_5XX:
        return outcome.reason.replace("HTTP ", "http_")
    if outcome.failure is not None:
        return outcome.failure.value
    return "rejected" if outcome.auth_rejected else "bad_response"


def with_changes(result: LookupResult, **changes: Any) -> LookupResult:
    values = {**result.__dict__, **changes}
    return LookupResult(**values)


def parse_answer(
    provider: ProviderConnection,
    endpoint: Endpoint,
    response: httpx.Response | Http1Answer,
    attempts: int,
) -> LookupResult:
    try:
        body = loads_json(response.content, what="the answer")
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
