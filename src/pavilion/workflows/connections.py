"""Connection use cases across domains: warm-up at start, and one provider's health view."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pavilion.observability.logging import get_logger
from pavilion.providers.types import Endpoint, ProviderConnection

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

log = get_logger(__name__)


async def warm_up_connections(rt: Runtime, *, timeout_s: float = 5.0) -> int:
    """Open pools to every registered DP endpoint of every tenant; best effort, bounded."""

    async def work() -> int:
        count = 0
        tenants = await rt.tenancy.list_tenants(limit=100_000, after=None)
        for tenant in tenants:
            async with rt.db.transaction(tenant.id, readonly=True) as session:
                providers = await rt.providers.all_connections(session, tenant.id)
            for provider in providers:
                results = await rt.provider_client.warm_up(provider)
                count += sum(1 for ok in results.values() if ok)
        return count

    rt.provider_client.start_probing()
    try:
        warmed = await asyncio.wait_for(work(), timeout=timeout_s)
    except TimeoutError:
        log.warning("dp_connection_warm_up_incomplete", timeout_s=timeout_s)
        return 0
    except Exception as exc:  # warm-up must never stop the service from starting
        log.warning("dp_connection_warm_up_failed", error=type(exc).__name__)
        return 0
    log.info("dp_connection_warm_up", endpoints_ready=warmed)
    return warmed


async def provider_health(rt: Runtime, tenant_id: str, provider_id: str) -> dict[str, Any]:
    """Per-endpoint status, EWMA latency, error rate and breaker state, as this node sees it."""
    out = await rt.providers.get(tenant_id, provider_id)
    view = ProviderConnection(
        id=out.id,
        name=out.name,
        claim_types=tuple(out.claim_types),
        endpoints=tuple(
            Endpoint(e.region, e.jurisdiction, e.url, e.weight, tuple(e.tags))
            for e in out.endpoints
        ),
        auth_type=str(out.auth.get("type", "none")),
        api_key=None,
        record_schema={},
        tenant_id=tenant_id,
    )
    health = rt.provider_client.health(view)
    health["node_region"] = rt.settings.node_region
    return health
