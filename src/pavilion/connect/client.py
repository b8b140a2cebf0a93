"""The DP client: pooled connections, balancing, health, retries, hedging and failover.

``ProviderClient.lookup`` asks one allowed endpoint at a time (or two, when a hedge fires):

1. The route's tiers give the order of preference (exact jurisdiction, then home region).
   Within the best tier that still has an *available* endpoint (not ejected, breaker not
   open, not failed by active probes), power of two choices over peak-EWMA picks one.
2. The request carries ``X-Request-Deadline-Ms``: what is left of the request's deadline
   (bounded by the per-attempt timeout), so the DP can give up when the connector has.
3. Connection errors, timeouts, 5xx and unreadable answers count against the endpoint
   (outlier ejection, breaker). Lookups are idempotent, so these are retried: on an endpoint
   not tried yet when there is one (another region when the home region fails), after a
   full-jitter exponential backoff, and only while the provider's retry budget allows.
   A garbled answer is never retried on the same endpoint; 4xx answers are never retried.
4. When no allowed endpoint is left, the answer is 503. If the provider has endpoints in
   regions the subject's residency forbids, the problem says that residency prevented
   failover; those endpoints are never called.

Health state changes, TLS parameters, auth events and failovers go to an :class:`EventSink`
(the tenant's audit log in production) and to metrics; the balancing, breaker, outlier and
budget logic is pure code in the sibling modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pavilion.connect import metrics
from pavilion.connect.auth import TOKEN_METHODS, DpAuthenticator, TokenEndpointUnavailable
from pavilion.connect.balancing import power_of_two_choices
from pavilion.connect.budget import RetryBudget
from pavilion.connect.config import ConnectConfig
from pavilion.connect.errors import ResidencyPreventedFailover
from pavilion.connect.events import (
    ConnectionEvent,
    EventSink,
    NullSink,
    endpoint_label,
    log_event,
)
from pavilion.connect.health import EndpointHealth, FailureKind, HealthChange
from pavilion.connect.outlier import may_eject
from pavilion.connect.pools import PoolRegistry
from pavilion.connect.routing import Route
from pavilion.connect.tls import TlsParameters, session_parameters, tls_failure
from pavilion.errors import PavilionError, ProviderBadResponse, ProviderUnavailable
from pavilion.observability.metrics import DP_CALL_LATENCY
from pavilion.parsing import loads_json
from pavilion.providers.types import Endpoint, ProviderConnection

DEADLINE_HEADER = "x-request-deadline-ms"


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
    endpoint: str = ""
    hedged: bool = False
    #: Served outside the route's preferred tier (the home region had failed).
    failover: bool = False


@dataclass
class EndpointState:
    """The connector's view of one endpoint of one provider."""

    key: str
    provider: ProviderConnection
    endpoint: Endpoint
    label: str
    health: EndpointHealth
    tls: TlsParameters | None = None
    plain_seen: bool = False
    #: Admission: at most the pool's connection limit in flight, the rest wait here, cheaply
    #: (httpcore's own queue rescans every connection on every event: quadratic under load).
    slots: asyncio.Semaphore | None = None

    def labels(self) -> tuple[str, str, str]:
        return (self.provider.id, self.endpoint.region, self.label)


@dataclass
class _Outcome:
    state: EndpointState
    result: LookupResult | None = None
    failure: FailureKind | None = None
    reason: str = ""
    error: PavilionError | None = None
    auth_rejected: bool = False


@dataclass
class _AttemptTrace:
    """What httpcore's trace told about one attempt's connection."""

    fresh_tls: bool = False


@dataclass
class _Request:
    provider: ProviderConnection
    route: Route[Endpoint]
    identifiers: Mapping[str, str]
    deadline: float
    budget: RetryBudget
    validate: Callable[[dict[str, Any]], None] | None = None
    tried: set[str] = field(default_factory=set)
    attempts: int = 0


class ProviderClient:
    """Calls DP agents. One instance per process; its pools and health state are shared."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        config: ConnectConfig | None = None,
        events: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or ConnectConfig()
        self._retry = retry
        self._rng = rng or random.Random()
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._clock = clock
        self._events: EventSink = events or NullSink()
        self._pools = PoolRegistry(
            self.config.pool,
            timeout_s=timeout_seconds,
            connect_timeout_s=connect_timeout_seconds,
            transport=transport,
        )
        self._auth = DpAuthenticator(
            lambda provider, url: self._pools.client(provider.id, url, provider.tls),
            self._events,
            clock=clock,
        )
        self._states: dict[str, EndpointState] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._serving: dict[tuple[str, str], str] = {}
        self._blocked_reported: dict[tuple[str, str], float] = {}
        self._prober: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        await self._auth.aclose()
        await self._pools.aclose()
        flush = getattr(self._events, "aclose", None)
        if flush is not None:
            await flush()

    def start_probing(self) -> None:
        """Start active health checks (when configured); idempotent."""
        if self.config.probe.interval_s is None or self._closed:
            return
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe_loop(), name="pavilion-dp-prober")

    async def warm_up(self, provider: ProviderConnection) -> dict[str, bool]:
        """Open connections to every endpoint of a provider now, rather than on first use."""
        self.start_probing()
        results: dict[str, bool] = {}
        for endpoint in provider.endpoints:
            state = self._state(provider, endpoint)
            state.health.last_used = self._clock()
            probes = [self._probe(state) for _ in range(max(self.config.pool.warm_connections, 1))]
            results[state.label] = all(await asyncio.gather(*probes))
        return results

    # --- the lookup ----------------------------------------------------------------------

    async def lookup(
        self,
        provider: ProviderConnection,
        endpoints: Route[Endpoint] | Sequence[Endpoint],
        identifiers: Mapping[str, str],
        *,
        read_only: bool = True,
        validate: Callable[[dict[str, Any]], None] | None = None,
    ) -> LookupResult:
        """Ask an allowed endpoint for the subject; see the module docstring for the rules.

        ``validate`` checks a found record (the DP's declared schema) and raises
        ProviderBadResponse when it breaks it: such an answer counts as garbage from that
        endpoint, so another allowed endpoint is asked.
        """
        self.start_probing()
        route = _as_route(provider, endpoints)
        now = self._clock()
        budget = self._budgets.setdefault(provider.id, RetryBudget(self.config.budget))
        budget.record_request(now)
        request = _Request(provider, route, identifiers, now + self._timeout, budget, validate)
        last_reason = "no endpoint"
        token_refreshed = False
        while True:
            state = self._choose(request, self._clock())
            if state is None:
                raise self._exhausted(request, last_reason)
            remaining = request.deadline - self._clock()
            if remaining <= 0:
                raise ProviderUnavailable(
                    f"provider {provider.name!r} did not answer within {self._timeout:g}s",
                    extra={"attempts": request.attempts},
                )
            outcome = await self._attempt_maybe_hedged(request, state, read_only)
            if outcome.result is not None:
                self._note_serving(request, outcome.state, last_reason)
                return outcome.result
            if outcome.auth_rejected and not token_refreshed:
                token_refreshed = True  # a revoked or rotated token: fetch a new one, once
                self._auth.invalidate(provider)
                request.tried.discard(outcome.state.key)
                continue
            if outcome.error is not None and (
                outcome.failure is None
                or request.attempts > self._retry.retries
                or not read_only
                or not self._has_untried(request)
            ):
                # 4xx and token trouble are never retried; a garbled answer is not asked for
                # again from the same endpoint, only from another one.
                raise outcome.error
            last_reason = outcome.reason
            if request.attempts > self._retry.retries or not read_only:
                break
            if not budget.try_withdraw(self._clock()):
                metrics.RETRY_BUDGET_EXHAUSTED.labels(provider.id).inc()
                last_reason += "; retry budget exhausted"
                break
            metrics.RETRIES.labels(
                provider.id, (outcome.failure or FailureKind.CONNECT).value
            ).inc()
            delay = self._retry.delay(request.attempts - 1, self._rng)
            await asyncio.sleep(min(delay, max(0.0, request.deadline - self._clock())))
        if self._all_allowed_failed(request) and request.route.forbidden:
            raise self._exhausted(request, last_reason)
        raise ProviderUnavailable(
            f"provider {provider.name!r} is unavailable ({last_reason} after "
            f"{request.attempts} attempts)",
            extra={"attempts": request.attempts},
        )

    # --- choice --------------------------------------------------------------------------

    def _state(self, provider: ProviderConnection, endpoint: Endpoint) -> EndpointState:
        key = f"{provider.id}|{endpoint.url}"
        state = self._states.get(key)
        if state is None:
            state = EndpointState(
                key, provider, endpoint, endpoint_label(endpoint.url), EndpointHealth(self.config)
            )
            self._states[key] = state
            metrics.BREAKER_STATE.labels(*state.labels()).set(0)
            metrics.EJECTED.labels(*state.labels()).set(0)
        elif state.provider is not provider:
            state.provider, state.endpoint = provider, endpoint
        return state

    def _choose(self, request: _Request, now: float) -> EndpointState | None:
        tiers = [[self._state(request.provider, e) for e in tier] for tier in request.route.tiers]
        for tier in tiers:
            for state in tier:
                self._publish(state, state.health.advance(now))
        for allow_repeat in (False, True):
            for tier in tiers:
                candidates = [
                    s
                    for s in tier
                    if s.health.available(now) and (allow_repeat or s.key not in request.tried)
                ]
                if candidates:
                    return power_of_two_choices(
                        candidates, lambda s: s.health.score(s.endpoint.weight, now), self._rng
                    )
        return None

    def _has_untried(self, request: _Request) -> bool:
        now = self._clock()
        return any(
            self._state(request.provider, e).health.available(now)
            and self._state(request.provider, e).key not in request.tried
            for e in request.route.allowed
        )

    def _all_allowed_failed(self, request: _Request) -> bool:
        now = self._clock()
        return all(
            self._state(request.provider, e).key in request.tried
            or not self._state(request.provider, e).health.available(now)
            for e in request.route.allowed
        )

    def _exhausted(self, request: _Request, last_reason: str) -> ProviderUnavailable:
        provider, route = request.provider, request.route
        now = self._clock()
        states = [self._state(provider, e) for e in route.allowed]
        waits = [_wait_s(s.health, now) for s in states]
        retry_after = max(1, math.ceil(min(waits))) if waits else 5
        allowed = sorted({e.region for e in route.allowed})
        extra: dict[str, Any] = {"attempts": request.attempts, "allowed_regions": allowed}
        if not route.forbidden:
            return ProviderUnavailable(
                f"provider {provider.name!r} is unavailable ({last_reason} after "
                f"{request.attempts} attempts; every endpoint is failing or out of service)",
                retry_after_s=retry_after,
                extra=extra,
            )
        forbidden = sorted({e.region for e in route.forbidden})
        metrics.RESIDENCY_BLOCKED.labels(provider.id).inc()
        key = (provider.id, route.residency)
        if now - self._blocked_reported.get(key, -math.inf) >= 60.0:
            self._blocked_reported[key] = now
            self._emit(
                provider,
                "residency_prevented_failover",
                data={
                    "residency": route.residency,
                    "allowed_regions": allowed,
                    "forbidden_regions": forbidden,
                },
            )
        return ResidencyPreventedFailover(
            f"provider {provider.name!r}: every region that residency {route.residency} "
            f"allows ({', '.join(allowed)}) is failing; residency prevented failover to "
            f"{', '.join(forbidden)} ({last_reason})",
            retry_after_s=retry_after,
            extra=extra
            | {"reason": "residency_prevented_failover", "forbidden_regions": forbidden},
        )

    # --- attempts ------------------------------------------------------------------------

    async def _attempt_maybe_hedged(
        self, request: _Request, state: EndpointState, read_only: bool
    ) -> _Outcome:
        request.tried.add(state.key)
        request.attempts += 1
        p95 = state.health.p95() if self.config.hedging and read_only else None
        if p95 is None:
            return await self._attempt(request, state)
        first = asyncio.create_task(self._attempt(request, state))
        pending: set[asyncio.Task[_Outcome]] = {first}
        last: _Outcome | None = None
        try:
            done, _ = await asyncio.wait({first}, timeout=p95)
            if done:
                return first.result()
            now = self._clock()
            other = self._choose(request, now)
            if other is None or other.key in request.tried:
                return await first
            if not request.budget.try_withdraw(now):
                metrics.RETRY_BUDGET_EXHAUSTED.labels(request.provider.id).inc()
                return await first
            request.tried.add(other.key)
            second = asyncio.create_task(self._attempt(request, other))
            pending.add(second)
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    outcome = task.result()
                    if outcome.result is not None:
                        winner = "hedge" if task is second else "first"
                        metrics.HEDGES.labels(request.provider.id, winner).inc()
                        outcome.result = _with(outcome.result, hedged=True)
                        return outcome
                    last = outcome
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert last is not None
        return last

    async def _attempt(self, request: _Request, state: EndpointState) -> _Outcome:
        provider = request.provider
        remaining = request.deadline - self._clock()
        budget_s = min(remaining, self.config.attempt_timeout_s or remaining)
        try:
            auth_headers = await self._auth.headers(provider, max(budget_s, 0.001))
        except TokenEndpointUnavailable as exc:
            metrics.TOKEN_FETCHES.labels(provider.id, "unavailable").inc()
            return _Outcome(state, error=exc)
        except ProviderBadResponse as exc:
            metrics.TOKEN_FETCHES.labels(provider.id, "refused").inc()
            return _Outcome(state, error=exc)
        budget_s = min(request.deadline - self._clock(), self.config.attempt_timeout_s or 1e9)
        if budget_s <= 0:
            return _Outcome(state, failure=FailureKind.TIMEOUT, reason="deadline passed")
        headers = {DEADLINE_HEADER: str(max(int(budget_s * 1000), 1)), **auth_headers}
        labels = state.labels()
        self._publish(state, state.health.start(self._clock()))
        metrics.IN_FLIGHT.labels(*labels).inc()
        started = time.perf_counter()
        outcome_label = "error"
        trace = _AttemptTrace()
        try:
            if state.slots is None:
                state.slots = asyncio.Semaphore(self.config.pool.max_connections)
            async with (
                asyncio.timeout(budget_s),
                state.slots,
                self._pools.lease(provider.id, state.endpoint.url, provider.tls) as client,
            ):
                response = await client.post(
                    f"{state.endpoint.url}/v1/lookup",
                    json={"identifiers": dict(request.identifiers)},
                    headers=headers,
                    timeout=httpx.Timeout(budget_s, connect=min(budget_s, self._connect_timeout)),
                    extensions={"trace": self._tracer(state, trace)},
                )
            outcome = self._judge(request, state, response, time.perf_counter() - started)
        except (TimeoutError, httpx.TimeoutException):
            outcome = _Outcome(state, failure=FailureKind.TIMEOUT, reason="timed out")
        except httpx.TransportError as exc:
            outcome = self._transport_failure(state, exc, trace)
        except asyncio.CancelledError:
            state.health.cancel()
            outcome_label = "cancelled"
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.IN_FLIGHT.labels(*labels).dec()
            if outcome_label != "cancelled":
                outcome_label = _outcome_label(outcome)
                self._record(request, state, outcome, elapsed)
            metrics.ENDPOINT_LATENCY.labels(*labels, outcome_label).observe(elapsed)
            DP_CALL_LATENCY.labels(provider=provider.id, outcome=outcome_label).observe(elapsed)
        return outcome

    def _judge(
        self, request: _Request, state: EndpointState, response: httpx.Response, elapsed: float
    ) -> _Outcome:
        provider = request.provider
        status = response.status_code
        if status >= 500:
            return _Outcome(state, failure=FailureKind.HTTP_5XX, reason=f"HTTP {status}")
        if status == 401 and self._auth.method(provider) in TOKEN_METHODS:
            return _Outcome(
                state,
                auth_rejected=True,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} refused the connector's access token "
                    "(HTTP 401) even after a fresh one was fetched"
                ),
            )
        if status in (401, 403):
            return _Outcome(
                state,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} refused the connector's credentials "
                    f"(HTTP {status}); check the provider's auth settings"
                ),
            )
        if status != 200:
            return _Outcome(
                state,
                error=ProviderBadResponse(
                    f"provider {provider.name!r} answered HTTP {status} to a lookup"
                ),
            )
        try:
            result = _parse(provider, state.endpoint, response, request.attempts)
            if result.record is not None and request.validate is not None:
                request.validate(result.record)
        except ProviderBadResponse as exc:
            return _Outcome(state, failure=FailureKind.GARBAGE, reason="bad answer", error=exc)
        failover = bool(request.route.tiers) and state.endpoint not in request.route.tiers[0]
        return _Outcome(state, result=_with(result, endpoint=state.label, failover=failover))

    def _transport_failure(
        self, state: EndpointState, exc: httpx.TransportError, trace: _AttemptTrace
    ) -> _Outcome:
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
            self._emit(
                state.provider,
                kind,
                state,
                data={"reason": reason[:200], "auth_method": self._auth.method(state.provider)},
            )
            metrics.CONNECTION_ERRORS.labels(*state.labels(), kind).inc()
            return _Outcome(state, failure=FailureKind.TLS, reason=f"TLS: {reason[:120]}")
        metrics.CONNECTION_ERRORS.labels(*state.labels(), FailureKind.CONNECT.value).inc()
        return _Outcome(state, failure=FailureKind.CONNECT, reason=type(exc).__name__)

    def _record(
        self, request: _Request, state: EndpointState, outcome: _Outcome, elapsed: float
    ) -> None:
        now = self._clock()
        if outcome.failure is None:
            changes = state.health.succeed(elapsed, now)  # a 4xx too: the endpoint itself is up
        else:
            ejected = sum(
                1
                for e in request.provider.endpoints
                if self._state(request.provider, e).health.outlier.is_ejected(now)
            )
            changes = state.health.fail(
                outcome.failure,
                elapsed,
                now,
                may_eject=may_eject(
                    ejected,
                    len(request.provider.endpoints),
                    self.config.outlier.max_ejection_percent,
                ),
            )
        self._publish(state, changes)
        estimate = state.health.ewma.estimate(now)
        if estimate is not None:
            metrics.EWMA_SECONDS.labels(*state.labels()).set(estimate)

    def _note_serving(self, request: _Request, state: EndpointState, last_reason: str) -> None:
        """Report a change of serving region: failover away from the first tier, or back."""
        route = request.route
        if not route.tiers:
            return
        primary = route.tiers[0]
        key = (request.provider.id, primary[0].region)
        region = state.endpoint.region
        before = self._serving.get(key)
        self._serving[key] = region
        if before == region:
            return
        preferred = {e.region for e in primary}
        if before is None and region in preferred:
            return
        kind = "failback" if region in preferred else "failover"
        source = before or primary[0].region
        metrics.FAILOVERS.labels(request.provider.id, source, region, kind).inc()
        self._emit(
            request.provider,
            kind,
            state,
            data={"from_region": source, "to_region": region, "reason": last_reason[:120]},
        )

    # --- events --------------------------------------------------------------------------

    def _tracer(
        self, state: EndpointState, attempt: _AttemptTrace | None = None
    ) -> Callable[[str, dict[str, Any]], Any]:
        async def trace(name: str, info: dict[str, Any]) -> None:
            if name == "connection.start_tls.complete":
                if attempt is not None:
                    attempt.fresh_tls = True
                stream = info.get("return_value")
                params = session_parameters(
                    stream.get_extra_info("ssl_object") if stream is not None else None
                )
                if params is None:
                    return
                metrics.CONNECTIONS_OPENED.labels(
                    *state.labels(), params.version, params.alpn
                ).inc()
                if params != state.tls:
                    state.tls = params
                    self._emit(
                        state.provider,
                        "tls_established",
                        state,
                        data=params.as_dict() | {"auth_method": self._auth.method(state.provider)},
                    )
            elif name == "connection.connect_tcp.complete" and state.endpoint.url.startswith(
                "http://"
            ):
                metrics.CONNECTIONS_OPENED.labels(*state.labels(), "none", "http/1.1").inc()
                if not state.plain_seen:
                    state.plain_seen = True
                    self._emit(
                        state.provider,
                        "connection_opened",
                        state,
                        data={
                            "tls_version": "none",
                            "auth_method": self._auth.method(state.provider),
                        },
                    )

        return trace

    def _publish(self, state: EndpointState, changes: Sequence[HealthChange]) -> None:
        for change in changes:
            labels = state.labels()
            if change.kind == "endpoint_ejected":
                metrics.EJECTED.labels(*labels).set(1)
                metrics.EJECTIONS.labels(*labels).inc()
            elif change.kind == "endpoint_returned":
                metrics.EJECTED.labels(*labels).set(0)
            elif change.kind.startswith("breaker_"):
                metrics.BREAKER_STATE.labels(*labels).set(metrics.BREAKER_VALUE[change.data["to"]])
            elif change.kind in ("probe_healthy", "probe_unhealthy"):
                metrics.HEALTHY.labels(*labels).set(1 if change.kind == "probe_healthy" else 0)
            self._emit(state.provider, change.kind, state, data=change.data)

    def _emit(
        self,
        provider: ProviderConnection,
        kind: str,
        state: EndpointState | None = None,
        *,
        data: dict[str, Any],
    ) -> None:
        event = ConnectionEvent(
            tenant_id=provider.tenant_id,
            provider_id=provider.id,
            kind=kind,
            region=state.endpoint.region if state else None,
            endpoint=state.label if state else None,
            data=data,
        )
        log_event(event)
        self._events.emit(event)

    # --- active health checks ------------------------------------------------------------

    async def _probe_loop(self) -> None:
        interval = self.config.probe.interval_s or 1.0
        while True:
            await asyncio.sleep(interval * self._rng.uniform(0.9, 1.1))
            now = self._clock()
            for key, state in list(self._states.items()):
                if now - state.health.last_used > self.config.probe.idle_evict_s:
                    del self._states[key]
                    await self._pools.evict(state.provider.id, state.endpoint.url)
            await asyncio.gather(*(self._probe(s) for s in list(self._states.values())))

    async def _probe(self, state: EndpointState) -> bool:
        client = self._pools.client(state.provider.id, state.endpoint.url, state.provider.tls)
        try:
            response = await client.get(
                f"{state.endpoint.url}{self.config.probe.path}",
                timeout=self.config.probe.timeout_s,
                extensions={"trace": self._tracer(state)},
            )
            ok = response.status_code == 200
        except httpx.HTTPError as exc:
            tls = tls_failure(exc)
            if tls is not None:
                metrics.CONNECTION_ERRORS.labels(*state.labels(), tls[0]).inc()
            ok = False
        self._publish(state, state.health.probed(ok, self._clock()))
        return ok

    # --- views ---------------------------------------------------------------------------

    def health(self, provider: ProviderConnection) -> dict[str, Any]:
        """Per-endpoint status of one provider as this node sees it (for the API and CLI)."""
        now = self._clock()
        endpoints: list[dict[str, Any]] = []
        for endpoint in provider.endpoints:
            state = self._states.get(f"{provider.id}|{endpoint.url}")
            if state is None:  # never called nor warmed up on this node
                endpoints.append(_unknown(endpoint))
                continue
            self._publish(state, state.health.advance(now))
            health = state.health
            estimate = health.ewma.estimate(now)
            p95 = health.p95()
            endpoints.append(
                {
                    "region": endpoint.region,
                    "jurisdiction": endpoint.jurisdiction,
                    "url": endpoint.url,
                    "weight": endpoint.weight,
                    "status": health.status(now).value,
                    "breaker": health.breaker.current(now).value,
                    "ejected": health.outlier.is_ejected(now),
                    "ejections": health.outlier.ejections,
                    "probe": (
                        "unknown"
                        if health.probe.healthy is None
                        else ("healthy" if health.probe.healthy else "unhealthy")
                    ),
                    "ewma_ms": None if estimate is None else round(estimate * 1000, 2),
                    "p95_ms": None if p95 is None else round(p95 * 1000, 2),
                    "error_rate": round(health.error_rate(now), 4),
                    "in_flight": health.in_flight,
                    "requests": health.requests_total,
                    "failures": health.failures_total,
                    "tls": state.tls.as_dict() if state.tls else None,
                }
            )
        budget = self._budgets.get(provider.id)
        return {
            "provider_id": provider.id,
            "name": provider.name,
            "auth_method": self._auth.method(provider),
            "endpoints": endpoints,
            "retry_budget": {
                "requests": budget.requests.total(now) if budget else 0,
                "retries": budget.retries.total(now) if budget else 0,
                "refused": budget.refused if budget else 0,
                "window_s": self.config.budget.window_s,
                "ratio": self.config.budget.ratio,
            },
        }

    def endpoint_state(self, provider: ProviderConnection, endpoint: Endpoint) -> EndpointState:
        """The live state of one endpoint (tests and diagnostics)."""
        return self._state(provider, endpoint)


def _unknown(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "region": endpoint.region,
        "jurisdiction": endpoint.jurisdiction,
        "url": endpoint.url,
        "weight": endpoint.weight,
        "status": "unknown",
        "breaker": "closed",
        "ejected": False,
        "ejections": 0,
        "probe": "unknown",
        "ewma_ms": None,
        "p95_ms": None,
        "error_rate": 0.0,
        "in_flight": 0,
        "requests": 0,
        "failures": 0,
        "tls": None,
    }


def _wait_s(health: EndpointHealth, now: float) -> float:
    waits = [0.0]
    if health.outlier.ejected_until is not None:
        waits.append(health.outlier.ejected_until - now)
    if not health.breaker.allows(now):
        waits.append(health.breaker.opened_at + health.breaker.config.open_s - now)
    return max(waits)


def _as_route(
    provider: ProviderConnection, endpoints: Route[Endpoint] | Sequence[Endpoint]
) -> Route[Endpoint]:
    """A route from a plain preference-ordered list: each region its own tier, in order."""
    if isinstance(endpoints, Route):
        return endpoints
    tiers: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        tiers.setdefault(endpoint.region, []).append(endpoint)
    allowed = set(endpoints)
    return Route(
        residency="",
        tiers=tuple(tuple(tier) for tier in tiers.values()),
        forbidden=tuple(e for e in provider.endpoints if e not in allowed),
    )


def _outcome_label(outcome: _Outcome) -> str:
    if outcome.result is not None:
        return "found" if outcome.result.found else "not_found"
    if outcome.failure is FailureKind.HTTP_5XX:
        return outcome.reason.replace("HTTP ", "http_")
    if outcome.failure is not None:
        return outcome.failure.value
    return "rejected" if outcome.auth_rejected else "bad_response"


def _with(result: LookupResult, **changes: Any) -> LookupResult:
    values = {**result.__dict__, **changes}
    return LookupResult(**values)


def _parse(
    provider: ProviderConnection, endpoint: Endpoint, response: httpx.Response, attempts: int
) -> LookupResult:
    try:
        body = loads_json(response.content)
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
