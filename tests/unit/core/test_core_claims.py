"""Claim decisions: minimum disclosure from a DP record."""

from __future__ import annotations

from datetime import date

import pytest

from pavilion.errors import ProviderBadResponse
from pavilion.verification.claims import Claim, ClaimType, Outcome, age_on, decide

RECORD = {
    "enrolment_status": "enrolled",
    "birth_date": "2008-02-29",
    "memberships": ["Chess Club", "Rowing"],
}


def test_unknown_subject_is_unknown_not_false() -> None:
    decision = decide(Claim(ClaimType.STUDENT_STATUS), None, date(2026, 1, 1))
    assert decision.outcome is Outcome.UNKNOWN
    assert decision.subject_claims == {}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("enrolled", Outcome.TRUE), ("ENROLLED", Outcome.TRUE), ("graduated", Outcome.FALSE)],
)
def test_student_status(status: str, outcome: Outcome) -> None:
    decision = decide(
        Claim(ClaimType.STUDENT_STATUS), {"enrolment_status": status}, date(2026, 1, 1)
    )
    assert decision.outcome is outcome
    assert decision.subject_claims == {"studentStatus": {"current": outcome is Outcome.TRUE}}


@pytest.mark.parametrize(
    ("today", "outcome"),
    [
        (date(2026, 2, 28), Outcome.FALSE),  # a leap-day baby is not 18 on 28 February
        (date(2026, 3, 1), Outcome.TRUE),
        (date(2030, 1, 1), Outcome.TRUE),
    ],
)
def test_age_over_on_a_leap_day_birthday(today: date, outcome: Outcome) -> None:
    decision = decide(Claim(ClaimType.AGE_OVER, threshold=18), RECORD, today)
    assert decision.outcome is outcome
    assert decision.subject_claims == {
        "ageOver": {"threshold": 18, "over": outcome is Outcome.TRUE}
    }
    assert "2008" not in str(decision.subject_claims)


def test_age_on() -> None:
    assert age_on(date(2000, 6, 15), date(2018, 6, 14)) == 17
    assert age_on(date(2000, 6, 15), date(2018, 6, 15)) == 18


@pytest.mark.parametrize(
    ("memberships", "group", "outcome"),
    [
        (["Chess Club"], "chess club", Outcome.TRUE),
        ("Chess Club;Rowing", " Rowing", Outcome.FALSE),
        ("Chess Club;Rowing", "rowing", Outcome.TRUE),
        ([], "Rowing", Outcome.FALSE),
    ],
)
def test_membership(memberships: object, group: str, outcome: Outcome) -> None:
    decision = decide(
        Claim(ClaimType.MEMBERSHIP, group=group), {"memberships": memberships}, date(2026, 1, 1)
    )
    assert decision.outcome is outcome


def test_missing_or_malformed_fields_blame_the_provider() -> None:
    with pytest.raises(ProviderBadResponse, match="no 'birth_date'"):
        decide(Claim(ClaimType.AGE_OVER, threshold=18), {}, date(2026, 1, 1))
    with pytest.raises(ProviderBadResponse, match="not an ISO date"):
        decide(
            Claim(ClaimType.AGE_OVER, threshold=18), {"birth_date": "29/02/2008"}, date(2026, 1, 1)
        )


def test_canonical_claim() -> None:
    assert Claim(ClaimType.AGE_OVER, threshold=21).canonical() == {
        "type": "age_over",
        "threshold": 21,
    }
    assert Claim(ClaimType.MEMBERSHIP, group="x").canonical() == {
        "type": "membership",
        "group": "x",
    }
