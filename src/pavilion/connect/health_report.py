"""What ``GET /v1/providers/{id}/health`` reports: each endpoint's status as this node sees it."""

from __future__ import annotations

from typing import Any

from pavilion.connect.budget import RetryBudget
from pavilion.connect.config import ConnectConfig
from pavilion.connect.endpoints import EndpointBook
from pavilion.providers.types import Endpoint, ProviderConnection


def provider_health(
    provider: ProviderConnection,
    book: EndpointBook,
    budget: RetryBudget | None,
    *,
    auth_method: str,
    config: ConnectConfig,
    now: float,
) -> dict[str, Any]:
    """Per-endpoint status of one provider (for the API and CLI), with its retry budget."""
    endpoints: list[dict[str, Any]] = []
    for endpoint in provider.endpoints:
        state = book.find(provider, endpoint)
        if state is None:  # never called nor warmed up on this node
            endpoints.append(_unknown(endpoint))
            continue
        book.publish(state, state.health.advance(now))
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
    return {
        "provider_id": provider.id,
        "name": provider.name,
        "auth_method": auth_method,
        "endpoints": endpoints,
        "retry_budget": {
            "requests": budget.requests.total(now) if budget else 0,
            "retries": budget.retries.total(now) if budget else 0,
            "refused": budget.refused if budget else 0,
            "window_s": config.budget.window_s,
            "ratio": config.budget.ratio,
        },
    }


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
