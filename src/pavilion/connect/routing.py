"""Which endpoints may serve a subject, in which order: pure residency rules.

A subject's data may only be asked for in a region whose jurisdiction tags match the
subject's residency:

- a region serves its own jurisdiction, and a sub-national residency (US-CA) is also served
  by its nation's regions (US), never the other way round;
- EU and EEA residents may be served by regions tagged EU or EEA (the GDPR applies in both);
- an ISO 3166-1 alpha-2 code of a member state stands for that nation and its union: a
  resident of ``DE`` or ``FR`` is an EU resident (``NO``, ``IS`` and ``LI``: EEA), and a
  region whose jurisdiction is ``DE`` is an EU region; ``GB`` is the United Kingdom (``UK``)
  and ``EL`` Greece (``GR``). Codes compare case-insensitively;
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
from functools import lru_cache
from typing import Generic, Protocol, TypeVar

from pavilion.errors import PolicyDenied

#: Jurisdictions whose residents may be served in each other's regions by law.
EQUIVALENT: Mapping[str, frozenset[str]] = {
    "EU": frozenset({"EU", "EEA"}),
    "EEA": frozenset({"EU", "EEA"}),
}

#: ISO 3166-1 alpha-2 codes of the European Union's member states.
EU_MEMBERS: frozenset[str] = frozenset(
    {
        *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
        *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
    }
)
#: Members of the European Economic Area outside the EU.
EEA_MEMBERS: frozenset[str] = frozenset({"IS", "LI", "NO"})
#: The union each nation belongs to (the GDPR's territory).
UNION_OF: Mapping[str, str] = {
    **dict.fromkeys(EU_MEMBERS, "EU"),
    **dict.fromkeys(EEA_MEMBERS, "EEA"),
}
#: Other spellings of a nation: ISO 3166-1's GB for the UK, the EU's own EL for Greece.
ALIASES: Mapping[str, str] = {"GB": "UK", "EL": "GR"}

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


@lru_cache(maxsize=1024)
def _canonical(code: str) -> str:
    """Upper case with the nation's alias resolved: ``gb`` -> ``UK``, ``de-by`` -> ``DE-BY``."""
    nation, dash, rest = code.upper().partition("-")
    return ALIASES.get(nation, nation) + dash + rest


@dataclass(frozen=True)
class _Residency:
    """A canonical residency and what serves it beyond an exact match."""

    code: str
    #: Itself, its nation (for a sub-national residency), the nation's union and the union's
    #: equivalents: a region tagged with any of these (or in a member state of that union).
    covering: frozenset[str]
    #: Whose tenant adequacy lists apply: the residency, its nation, the nation's union.
    adequacy_keys: frozenset[str]


@lru_cache(maxsize=1024)
def _residency(residency: str) -> _Residency:
    code = _canonical(residency)
    nation = code.split("-", maxsplit=1)[0]
    union = UNION_OF.get(nation)
    covering = {nation, *EQUIVALENT.get(nation, ())}
    keys = {code, nation}
    if union is not None:
        covering |= {union, *EQUIVALENT[union]}
        keys.add(union)
    return _Residency(code, frozenset(covering | {code}), frozenset(keys))


@lru_cache(maxsize=1024)
def _expanded(tags: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """An endpoint's canonical tags, and those plus the union of each member-state tag.

    A sub-national tag (US-CA) never widens to its nation: a state's region serves only it.
    """
    canonical = frozenset(_canonical(t) for t in tags)
    return canonical, canonical | {UNION_OF[t] for t in canonical if t in UNION_OF}


def _adequate(adequacy: Adequacy, residency: _Residency) -> frozenset[str]:
    """What the tenant lists as adequate for the residency, its nation or its union."""
    found: set[str] = set()
    for key, jurisdictions in adequacy.items():
        if _canonical(key) in residency.adequacy_keys:
            found.update(_canonical(j) for j in jurisdictions)
    return frozenset(found)


def _rank(tags: frozenset[str], residency: _Residency, adequate: frozenset[str]) -> int | None:
    """0 exact match, 1 the nation, union or an equivalent, 2 tenant-adequate, None no."""
    canonical, widened = _expanded(tags)
    if residency.code in canonical:
        return 0
    if widened & residency.covering:
        return 1
    if widened & adequate:
        return 2
    return None


def plan_route(
    endpoints: Sequence[E], residency: str, home_region: str, adequacy: Adequacy | None = None
) -> Route[E]:
    """The allowed endpoints in preference tiers, or PolicyDenied when none may serve."""
    subject = _residency(residency)
    adequate = _adequate(adequacy, subject) if adequacy else frozenset()
    ranked: dict[tuple[int, bool], list[E]] = {}
    forbidden: list[E] = []
    for endpoint in endpoints:
        rank = _rank(jurisdictions_of(endpoint), subject, adequate)
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
