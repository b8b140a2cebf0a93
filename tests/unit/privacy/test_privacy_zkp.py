"""Circuit validation of proof requests, and the attribute arithmetic (pure)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pavilion.errors import InvalidRequest
from pavilion.privacy import zkp
from pavilion.privacy.zkp import PredicateClaim, PredicateKind
from pavilion.verification.claims import age_on

CRED_DEF = "https://pavilion.test/anoncreds/x/credential-definitions/default"
TODAY = date(2026, 6, 15)
NOW = 1_781_500_000
NONCE = "123456789012345678901234"


def request_for(claim: PredicateClaim) -> dict[str, Any]:
    return zkp.build_request(claim, cred_def_id=CRED_DEF, today=TODAY, now=NOW, nonce=NONCE)


def validate(claim: PredicateClaim, request: dict[str, Any]) -> dict[str, Any]:
    return zkp.validate_request(claim, request, cred_def_id=CRED_DEF, today=TODAY, now=NOW)


AGE = PredicateClaim(PredicateKind.AGE_OVER, threshold=18)
MEMBER = PredicateClaim(PredicateKind.MEMBERSHIP, group="Chess Club")
RANGE = PredicateClaim(
    PredicateKind.BIRTH_DATE_BETWEEN, start=date(2000, 1, 1), end=date(2004, 12, 31)
)
STUDENT = PredicateClaim(PredicateKind.STUDENT_STATUS)


@pytest.mark.parametrize("claim", [AGE, MEMBER, RANGE, STUDENT])
def test_the_connectors_own_requests_pass_the_circuit(claim: PredicateClaim) -> None:
    request = request_for(claim)
    assert validate(claim, request) == request
    assert NOW < request["non_revoked"]["to"] <= NOW + zkp.MAX_SKEW_S


def test_age_over_proves_a_date_bound_and_reveals_nothing() -> None:
    request = request_for(AGE)
    assert request["requested_attributes"] == {}
    (predicate,) = request["requested_predicates"].values()
    assert (predicate["name"], predicate["p_type"], predicate["p_value"]) == (
        "birthdate_dateint",
        "<=",
        20080615,
    )


def mutate(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    target = changed
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return changed


_DELETE = object()


@pytest.mark.parametrize(
    ("claim", "path", "value", "field"),
    [
        # Revealing the birth date is never part of an age circuit.
        (
            AGE,
            "requested_attributes.leak",
            {"name": "birthdate_dateint", "restrictions": [{"cred_def_id": CRED_DEF}]},
            "proof_request.requested_attributes.leak.name",
        ),
        # A threshold the claim does not name (would let a verifier binary-search the date).
        (
            AGE,
            "requested_predicates.pred0.p_value",
            20080101,
            "proof_request.requested_predicates.pred0",
        ),
        (
            AGE,
            "requested_predicates.pred0.p_type",
            ">=",
            "proof_request.requested_predicates.pred0",
        ),
        (AGE, "requested_predicates.pred0", _DELETE, "proof_request.requested_predicates"),
        (
            AGE,
            "requested_predicates.pred0.restrictions",
            [{"cred_def_id": "another"}],
            "proof_request.requested_predicates.pred0.restrictions",
        ),
        (
            AGE,
            "requested_predicates.pred0.extra",
            1,
            "proof_request.requested_predicates.pred0.extra",
        ),
        (AGE, "non_revoked", _DELETE, "proof_request.non_revoked"),
        (AGE, "non_revoked.to", NOW - 200_000, "proof_request.non_revoked.to"),
        (AGE, "non_revoked.to", "soon", "proof_request.non_revoked.to"),
        (AGE, "non_revoked.from", NOW + 250, "proof_request.non_revoked.from"),
        (AGE, "non_revoked.other", 1, "proof_request.non_revoked.other"),
        (AGE, "nonce", "12", "proof_request.nonce"),
        (AGE, "name", "", "proof_request.name"),
        (AGE, "ver", "2.0", "proof_request.ver"),
        (AGE, "requested_predicates", [], "proof_request.requested_predicates"),
        (MEMBER, "requested_attributes.attr0", _DELETE, "proof_request.requested_attributes"),
        (
            MEMBER,
            "requested_attributes.attr0.name",
            "birthdate_dateint",
            "proof_request.requested_attributes.attr0.name",
        ),
    ],
)
def test_circuit_validation_refuses_what_the_claim_does_not_allow(
    claim: PredicateClaim, path: str, value: Any, field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(claim, mutate(request_for(claim), path, value))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": PredicateKind.AGE_OVER, "threshold": 17}, "claim.threshold"),
        ({"kind": PredicateKind.STUDENT_STATUS, "threshold": 18}, "claim.threshold"),
        ({"kind": PredicateKind.BIRTH_DATE_BETWEEN, "start": date(2000, 1, 1)}, "claim.start"),
        (
            {
                "kind": PredicateKind.BIRTH_DATE_BETWEEN,
                "start": date(2000, 1, 1),
                "end": date(2000, 6, 1),
            },
            "claim.end",
        ),
        ({"kind": PredicateKind.AGE_OVER, "threshold": 18, "end": date(2000, 1, 1)}, "claim.start"),
        ({"kind": PredicateKind.MEMBERSHIP, "group": "   "}, "claim.group"),
        ({"kind": PredicateKind.STUDENT_STATUS, "group": "x"}, "claim.group"),
    ],
)
def test_claims_are_checked_by_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        PredicateClaim(**kwargs)
    assert caught.value.field == field


@given(
    st.dates(min_value=date(1930, 1, 1), max_value=date(2030, 12, 31)),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    st.sampled_from(zkp.AGE_THRESHOLDS),
)
def test_the_age_cutoff_agrees_with_age_on(today: date, birth: date, years: int) -> None:
    cutoff = zkp.latest_birth_date(today, years)
    assert (zkp.dateint(birth) <= zkp.dateint(cutoff)) == (age_on(birth, today) >= years)


def test_attribute_values_and_predicates() -> None:
    record = {
        "birth_date": "2001-02-03",
        "enrolment_status": "Enrolled",
        "memberships": "Chess Club;Rowing",
    }
    values = zkp.attribute_values(record, "chess  club")
    assert values == {
        "birthdate_dateint": "20010203",
        "student_current": "1",
        "group": "chess club",
        "group_member": "1",
    }
    assert zkp.holds(AGE, values, TODAY)
    assert not zkp.holds(PredicateClaim(PredicateKind.AGE_OVER, threshold=65), values, TODAY)
    assert zkp.holds(RANGE, values, TODAY)
    assert zkp.attribute_values(record, None)["group_member"] == "0"
    with pytest.raises(InvalidRequest, match="birth_date"):
        zkp.attribute_values({"birth_date": "yesterday"}, None)
    assert MEMBER.canonical() == {"type": "membership", "group": "chess club"}
    assert RANGE.canonical()["start"] == "2000-01-01"
