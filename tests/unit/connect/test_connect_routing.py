"""Residency routing: jurisdiction tags, EU/EEA, tenant adequacy, preference tiers."""

from __future__ import annotations

import pytest

from pavilion.connect.routing import allowed_endpoints, jurisdictions_of, plan_route
from pavilion.errors import PolicyDenied
from pavilion.providers.types import Endpoint

EU_WEST = Endpoint("eu-west", "EU", "https://w")
EU_WEST_2 = Endpoint("eu-west", "EU", "https://w2")
EU_CENTRAL = Endpoint("eu-central", "EU", "https://c")
NORWAY = Endpoint("no-east", "NO", "https://n", tags=("EEA",))
UK = Endpoint("uk-south", "UK", "https://u")
US_EAST = Endpoint("us-east", "US", "https://e")
US_CA = Endpoint("us-west", "US-CA", "https://ca")


def test_home_region_endpoints_form_the_first_tier() -> None:
    route = plan_route([EU_CENTRAL, EU_WEST_2, US_EAST, EU_WEST], "EU", "eu-west")
    assert route.tiers == ((EU_WEST, EU_WEST_2), (EU_CENTRAL,))
    assert route.forbidden == (US_EAST,)
    assert route.allowed == [EU_WEST, EU_WEST_2, EU_CENTRAL]


def test_eu_residents_may_be_served_in_eea_regions_after_eu_ones() -> None:
    assert jurisdictions_of(NORWAY) == {"NO", "EEA"}
    route = plan_route([NORWAY, EU_CENTRAL, US_EAST], "EU", "no-east")
    # An exact EU match beats the home region when the home region is only EEA.
    assert route.tiers == ((EU_CENTRAL,), (NORWAY,))
    assert allowed_endpoints([NORWAY], "EU", "eu-west") == [NORWAY]


def test_tenant_adequacy_adds_regions_last_and_only_for_that_residency() -> None:
    adequacy = {"EU": ("UK",)}
    route = plan_route([UK, EU_WEST, US_EAST], "EU", "uk-south", adequacy)
    assert route.tiers == ((EU_WEST,), (UK,))
    assert route.forbidden == (US_EAST,)
    with pytest.raises(PolicyDenied):
        plan_route([UK], "US", "uk-south", adequacy)  # US residents: UK is not adequate
    # Sub-national residency inherits its nation's adequacy list.
    assert allowed_endpoints([UK], "US-CA", "us-east", {"US": ["UK"]}) == [UK]


def test_sub_national_rules_still_hold() -> None:
    route = plan_route([US_EAST, US_CA], "US-CA", "us-east")
    assert route.tiers == ((US_CA,), (US_EAST,))
    assert plan_route([US_EAST, US_CA], "US", "us-east").forbidden == (US_CA,)


def test_no_allowed_region_is_denied_without_calling_anyone() -> None:
    with pytest.raises(PolicyDenied) as info:
        plan_route([US_EAST, UK], "EU", "eu-west", {"EU": ("CH",)})
    assert "uk-south (UK)" in info.value.detail
    assert "us-east (US)" in info.value.detail


GERMANY = Endpoint("de-fra", "DE", "https://de")
ICELAND = Endpoint("is-rey", "IS", "https://is")


@pytest.mark.parametrize("residency", ["DE", "FR", "de", "Fr", "DE-BY", "AT", "EL"])
def test_a_member_state_residency_is_an_eu_residency(residency: str) -> None:
    # ISO 3166-1 codes of EU member states map to the EU: served in EU and EEA regions.
    route = plan_route([US_EAST, NORWAY, EU_WEST], residency, "eu-west")
    assert route.tiers == ((EU_WEST,), (NORWAY,))  # home region first, then EEA
    assert route.forbidden == (US_EAST,)


@pytest.mark.parametrize("residency", ["CH", "US", "GB", "TR", "ch"])
def test_a_non_member_residency_is_still_refused_eu_regions(residency: str) -> None:
    with pytest.raises(PolicyDenied) as info:
        plan_route([EU_WEST, NORWAY, GERMANY], residency, "eu-west")
    assert info.value.extra["reason"] == "residency"


def test_member_state_regions_are_eu_regions_and_their_own_first() -> None:
    # A region in Germany serves German residents first, then any EU or EEA resident.
    route = plan_route([EU_WEST, GERMANY, US_EAST], "DE", "eu-west")
    assert route.tiers == ((GERMANY,), (EU_WEST,))
    assert allowed_endpoints([GERMANY], "FR", "eu-west") == [GERMANY]
    assert allowed_endpoints([GERMANY], "EU", "eu-west") == [GERMANY]
    assert allowed_endpoints([ICELAND, US_EAST], "NO", "eu-west") == [ICELAND]  # EEA: IS, NO
    assert allowed_endpoints([GERMANY, US_EAST], "is", "eu-west") == [GERMANY]


def test_iso_spellings_and_adequacy_follow_the_union() -> None:
    # GB is the ISO 3166-1 code of the United Kingdom.
    assert plan_route([UK, EU_WEST], "GB", "eu-west").tiers == ((UK,),)
    # The tenant's list for EU residents applies to a resident of a member state too.
    route = plan_route([UK, EU_WEST, US_EAST], "FR", "uk-south", {"EU": ("gb",)})
    assert route.tiers == ((EU_WEST,), (UK,))
    assert route.forbidden == (US_EAST,)
    with pytest.raises(PolicyDenied):
        plan_route([UK], "CH", "uk-south", {"EU": ("UK",)})
