"""Which endpoints may serve a subject, in which order: pure residency rules.

A subject's data may only be asked for in a region whose jurisdiction tags match the
subject's residency:

- a region serves its own jurisdiction, and a sub-national residency (US-CA) is also served
  by its nation's regions (US), never the other way round;
- EU and EEA residents may be served by regions tagged EU or EEA (the GDPR applies in both);
- a tenant may list further jurisdictions as adequate for a residency (for EU residents, for
  example, UK or CH under the Commission's adequacy decisions).

Allowed endpoints are grouped into preference tiers: an exact jurisdiction match before its
nation or an equivalent, those before tenant-adequate ones, and within each the node's home
region first. Balancing picks among the endpoints of the best tier that still has a healthy
one; failover moves down the tiers and never outside them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pavilion.errors import PolicyDenied

#: Jurisdictions whose residents may be served in each other's regions by law.
EQUIVALENT: Mapping[str, frozenset[str]] = {
    "EU": frozenset({"EU", "EEA"}),
    "EEA": frozenset({"EU", "EEA"}),
}

Adequacy = Mapping[str, Collection[str]]


class HasJurisdiction(Protocol):
    @property
    def region(self) -> str: ...

    @property
    def jurisdiction(self) -> str: ...


E = TypeVar("E", bound=HasJurisdiction)


@dataclass(frozen=True)
class Route(Generic[E]):
    """Where one request may go: preference tiers of allowed endpoints, and the rest."""

    residency: str
    tiers: tuple[tuple[E, ...], ...]
    forbidden: tuple[E, ...]

    @property
    def allowed(self) -> list[E]:
        return [e for tier in self.tiers for e in tier]


def jurisdictions_of(endpoint: HasJurisdiction) -> frozenset[str]:
    """The region's jurisdiction and its extra tags (``tags``, when the endpoint has them)."""
    tags: Collection[str] = getattr(endpoint, "tags", ())
    return frozenset({endpoint.jurisdiction, *tags})


def _rank(tags: frozenset[str], residency: str, adequacy: Adequacy) -> int | None:
    """0 exact match, 1 the nation or an equivalent jurisdiction, 2 tenant-adequate, None no."""
    if residency in tags:
        return 0
    nation = residency.split("-", maxsplit=1)[0]
    if nation in tags or tags & EQUIVALENT.get(nation, frozenset()):
        return 1
    adequate = {*adequacy.get(residency, ()), *adequacy.get(nation, ())}
    if tags & adequate:
        return 2
    return None


def plan_route(
    endpoints: Sequence[E], residency: str, home_region: str, adequacy: Adequacy | None = None
) -> Route[E]:
    """The allowed endpoints in preference tiers, or PolicyDenied when none may serve."""
    adequacy = adequacy or {}
    ranked: dict[tuple[int, bool], list[E]] = {}
    forbidden: list[E] = []
    for endpoint in endpoints:
        rank = _rank(jurisdictions_of(endpoint), residency, adequacy)
        if rank is None:
            forbidden.append(endpoint)
        else:
            ranked.setdefault((rank, endpoint.region != home_region), []).append(endpoint)
    if not ranked:
        served = ", ".join(sorted({f"{e.region} ({e.jurisdiction})" for e in endpoints}))
        raise PolicyDenied(
            f"residency {residency} allows no endpoint of this provider (it has: {served})",
            extra={"reason": "residency"},
        )
    tiers = tuple(
        tuple(sorted(ranked[key], key=lambda e: (e.region, getattr(e, "url", ""))))
        for key in sorted(ranked)
    )
    return Route(residency=residency, tiers=tiers, forbidden=tuple(forbidden))


def allowed_endpoints(
    endpoints: Sequence[E], residency: str, home_region: str, adequacy: Adequacy | None = None
) -> list[E]:
    """Endpoints that may serve this residency, the most specific and then the home region first."""
    return plan_route(endpoints, residency, home_region, adequacy).allowed
