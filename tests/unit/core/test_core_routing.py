"""Residency decides which endpoints may serve a subject."""

from __future__ import annotations

import pytest

from pavilion.connect.routing import allowed_endpoints
from pavilion.errors import PolicyDenied
from pavilion.providers.types import Endpoint

EU_WEST = Endpoint("eu-west", "EU", "https://w")
EU_CENTRAL = Endpoint("eu-central", "EU", "https://c")
US_EAST = Endpoint("us-east", "US", "https://e")
US_CA = Endpoint("us-west", "US-CA", "https://ca")


def test_only_matching_jurisdictions_home_region_first() -> None:
    endpoints = [US_EAST, EU_WEST, EU_CENTRAL]
    assert allowed_endpoints(endpoints, "EU", "eu-west") == [EU_WEST, EU_CENTRAL]
    assert allowed_endpoints(endpoints, "EU", "eu-central") == [EU_CENTRAL, EU_WEST]


def test_sub_national_residency_prefers_its_own_region() -> None:
    assert allowed_endpoints([US_EAST, US_CA], "US-CA", "us-east") == [US_CA, US_EAST]
    # A plain US resident is never served from a region only tagged for California.
    assert allowed_endpoints([US_EAST, US_CA], "US", "us-east") == [US_EAST]


def test_no_allowed_region_is_a_policy_denial_that_names_the_regions() -> None:
    with pytest.raises(PolicyDenied) as info:
        allowed_endpoints([US_EAST], "EU", "eu-west")
    assert "residency EU allows no endpoint" in info.value.detail
    assert "us-east (US)" in info.value.detail
    assert info.value.extra == {"reason": "residency"}
