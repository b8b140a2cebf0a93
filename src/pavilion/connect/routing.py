"""Which endpoint may serve a subject: pure residency rules.

A subject's data may only be asked for in a region whose jurisdiction matches the subject's
residency. Sub-national residency (US-CA) is served by its nation's regions (US) unless a
region with the exact jurisdiction exists, which is then preferred. Later work adds tenant
adequacy lists and latency-aware balancing; both choose only among ``allowed_endpoints``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from pavilion.errors import PolicyDenied


class HasJurisdiction(Protocol):
    @property
    def region(self) -> str: ...

    @property
    def jurisdiction(self) -> str: ...


E = TypeVar("E", bound=HasJurisdiction)


def allowed_endpoints(endpoints: Sequence[E], residency: str, home_region: str) -> list[E]:
    """Endpoints that may serve this residency, the most specific and then the home region first."""

    def serves(endpoint: E) -> bool:
        return endpoint.jurisdiction in {residency, residency.split("-", maxsplit=1)[0]}

    allowed = [e for e in endpoints if serves(e)]
    if not allowed:
        served = ", ".join(sorted({f"{e.region} ({e.jurisdiction})" for e in endpoints}))
        raise PolicyDenied(
            f"residency {residency} allows no endpoint of this provider (it has: {served})",
            extra={"reason": "residency"},
        )
    return sorted(
        allowed,
        key=lambda e: (e.jurisdiction != residency, e.region != home_region, e.region),
    )
