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
(the tenant's audit log in production) and to metrics. This module chooses endpoints, retries,
hedges and fails over; one attempt at one endpoint is :mod:`~pavilion.connect.attempts`, the
per-endpoint state :mod:`~pavilion.connect.endpoints`, active health checks
:mod:`~pavilion.connect.probing` and the health view :mod:`~pavilion.connect.health_report`;
the balancing, breaker, outlier and budget logic is pure code in the sibling modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pavilion.connect import metrics
from pavilion.connect.attempts import (
    Attempts,
    LookupRequest,
    LookupResult,
    Outcome,
    with_changes,
)
from pavilion.connect.auth import DpAuthenticator
from pavilion.connect.balancing import power_of_two_choices
from pavilion.connect.budget import RetryBudget
from pavilion.connect.config import ConnectConfig
from pavilion.connect.endpoints import EndpointBook, EndpointState
from pavilion.connect.errors import ResidencyPreventedFailover
from pavilion.connect.events import EventSink, NullSink
from pavilion.connect.health import EndpointHealth, FailureKind
from pavilion.connect.health_report import provider_health
from pavilion.connect.http1 import Http1Pools
from pavilion.connect.pools import PoolRegistry
from pavilion.connect.probing import Prober
from pavilion.connect.routing import Route
from pavilion.errors import ProviderUnavailable
from pavilion.providers.types import Endpoint, ProviderConnection

__all__ = ["LookupResult", "ProviderClient", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_seconds: float = 0.05

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff (AWS architecture blog, 2015)."""
        return rng.uniform(0, self.backoff_seconds * (2**attempt))


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
        self._book = EndpointBook(self.config, self._events, self._auth.method)
        # Lookups over aiohttp unless HTTP/2 is asked for (or tests hand in an httpx transport).
        self._http1 = (
            Http1Pools(self.config.pool, connect_timeout_s=connect_timeout_seconds)
            if transport is None and not self.config.pool.http2
            else None
        )
        self._attempts = Attempts(
            self.config,
            self._book,
            self._pools,
            self._auth,
            connect_timeout_s=connect_timeout_seconds,
            clock=clock,
            http1=self._http1,
        )
        self._prober = Prober(self.config, self._book, self._pools, rng=self._rng, clock=clock)
        self._budgets: dict[str, RetryBudget] = {}
        self._serving: dict[tuple[str, str], str] = {}
        self._blocked_reported: dict[tuple[str, str], float] = {}
        self._probing: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        self._closed = True
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
        await self._auth.aclose()
        await self._pools.aclose()
        if self._http1 is not None:
            await self._http1.aclose()
        flush = getattr(self._events, "aclose", None)
        if flush is not None:
            await flush()

    def start_probing(self) -> None:
        """Start active health checks (when configured); idempotent."""
        if self.config.probe.interval_s is None or self._closed:
            return
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._prober.loop(), name="pavilion-dp-prober")

    async def warm_up(self, provider: ProviderConnection) -> dict[str, bool]:
        """Open connections to every endpoint of a provider now, rather than on first use."""
        self.start_probing()
        results: dict[str, bool] = {}
        for endpoint in provider.endpoints:
            state = self._book.state(provider, endpoint)
            state.health.last_used = self._clock()
            probes = [
                self._prober.probe(state) for _ in range(max(self.config.pool.warm_connections, 1))
            ]
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
        budget = self._budgets.get(provider.id)
        if budget is None:  # one per provider: two rolling counters, not built per lookup
            budget = self._budgets[provider.id] = RetryBudget(self.config.budget)
        budget.record_request(now)
        request = LookupRequest(provider, route, identifiers, now + self._timeout, budget, validate)
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

    def _choose(self, request: LookupRequest, now: float) -> EndpointState | None:
        tiers = [
            [self._book.state(request.provider, e) for e in tier] for tier in request.route.tiers
        ]
        for tier in tiers:
            for state in tier:
                self._book.publish(state, state.health.advance(now))
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

    def _has_untried(self, request: LookupRequest) -> bool:
        now = self._clock()
        return any(
            self._book.state(request.provider, e).health.available(now)
            and self._book.state(request.provider, e).key not in request.tried
            for e in request.route.allowed
        )

    def _all_allowed_failed(self, request: LookupRequest) -> bool:
        now = self._clock()
        return all(
            self._book.state(request.provider, e).key in request.tried
            or not self._book.state(request.provider, e).health.available(now)
            for e in request.route.allowed
        )

    def _exhausted(self, request: LookupRequest, last_reason: str) -> ProviderUnavailable:
        provider, route = request.provider, request.route
        now = self._clock()
        states = [self._book.state(provider, e) for e in route.allowed]
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
            self._book.emit(
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
        self, request: LookupRequest, state: EndpointState, read_only: bool
    ) -> Outcome:
        request.tried.add(state.key)
        request.attempts += 1
        p95 = state.health.p95() if self.config.hedging and read_only else None
        if p95 is None:
            return await self._attempts.run(request, state)
        first = asyncio.create_task(self._attempts.run(request, state))
        pending: set[asyncio.Task[Outcome]] = {first}
        last: Outcome | None = None
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
            second = asyncio.create_task(self._attempts.run(request, other))
            pending.add(second)
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    outcome = task.result()
                    if outcome.result is not None:
                        winner = "hedge" if task is second else "first"
                        metrics.HEDGES.labels(request.provider.id, winner).inc()
                        outcome.result = with_changes(outcome.result, hedged=True)
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

    def _note_serving(self, request: LookupRequest, state: EndpointState, last_reason: str) -> None:
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
        self._book.emit(
            request.provider,
            kind,
            state,
            data={"from_region": source, "to_region": region, "reason": last_reason[:120]},
        )

    # --- views ---------------------------------------------------------------------------

    def health(self, provider: ProviderConnection) -> dict[str, Any]:
        """Per-endpoint status of one provider as this node sees it (for the API and CLI)."""
        return provider_health(
            provider,
            self._book,
            self._budgets.get(provider.id),
            auth_method=self._auth.method(provider),
            config=self.config,
            now=self._clock(),
        )

    def endpoint_state(self, provider: ProviderConnection, endpoint: Endpoint) -> EndpointState:
        """The live state of one endpoint (tests and diagnostics)."""
        return self._book.state(provider, endpoint)


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
