"""Claims and their minimum-disclosure decision: pure functions, no I/O.

A claim is answered with a boolean unless the claim itself asks for a value; the DP's record
never leaves this module, only the decision does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from pavilion.errors import ProviderBadResponse


class ClaimType(StrEnum):
    STUDENT_STATUS = "student_status"
    AGE_OVER = "age_over"
    MEMBERSHIP = "membership"


class Outcome(StrEnum):
    TRUE = "true"
    FALSE = "false"
    #: The DP does not know the subject. Not the same as "false": the DP vouches for nothing.
    UNKNOWN = "unknown"

    @property
    def decision(self) -> bool | None:
        """The answer as clients read it: a boolean, or None when the DP vouches for nothing."""
        return None if self is Outcome.UNKNOWN else self is Outcome.TRUE


#: The enrolment states that count as "a current student".
CURRENT_ENROLMENT = frozenset({"enrolled"})


class ClaimView(TypedDict):
    """A claim as stored and reported: its parameters only for the types that take them."""

    type: str
    threshold: NotRequired[int]
    group: NotRequired[str]


@dataclass(frozen=True)
class Claim:
    type: ClaimType
    threshold: int | None = None
    group: str | None = None

    def canonical(self) -> ClaimView:
        out = ClaimView(type=self.type.value)
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.group is not None:
            out["group"] = self.group
        return out


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    #: What the credential may state: the minimum that answers the claim.
    subject_claims: dict[str, Any]


def age_on(birth: date, today: date) -> int:
    """Completed years; someone born on 29 February turns a year older on 1 March."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def decide(claim: Claim, record: Mapping[str, Any] | None, today: date) -> Decision:
    """Answer the claim from the DP's record (None when the DP does not know the subject)."""
    if record is None:
        return Decision(Outcome.UNKNOWN, {})
    if claim.type is ClaimType.STUDENT_STATUS:
        status = _field(record, "enrolment_status", claim)
        holds = str(status).lower() in CURRENT_ENROLMENT
        return Decision(_outcome(holds), {"studentStatus": {"current": holds}})
    if claim.type is ClaimType.AGE_OVER:
        assert claim.threshold is not None  # enforced when the request is parsed
        raw = _field(record, "birth_date", claim)
        try:
            birth = date.fromisoformat(str(raw))
        except ValueError as exc:
            raise ProviderBadResponse(
                "the provider's birth_date is not an ISO date", extra={"field": "birth_date"}
            ) from exc
        holds = age_on(birth, today) >= claim.threshold
        return Decision(_outcome(holds), {"ageOver": {"threshold": claim.threshold, "over": holds}})
    assert claim.group is not None
    memberships = _field(record, "memberships", claim)
    groups = memberships.split(";") if isinstance(memberships, str) else list(memberships)
    wanted = claim.group.casefold()
    holds = any(str(g).strip().casefold() == wanted for g in groups)
    return Decision(_outcome(holds), {"membership": {"group": claim.group, "member": holds}})


def _outcome(holds: bool) -> Outcome:
    return Outcome.TRUE if holds else Outcome.FALSE


def _field(record: Mapping[str, Any], name: str, claim: Claim) -> Any:
    if name not in record or record[name] is None:
        raise ProviderBadResponse(
            f"the provider's record has no {name!r}, which the {claim.type.value} claim needs",
            extra={"field": name},
        )
    return record[name]
