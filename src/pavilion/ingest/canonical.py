"""Pavilion's canonical eligibility record: what every DP's data is mapped into.

Field names match what the claim logic reads (``enrolment_status``, ``birth_date``,
``memberships``), so a canonical record answers the same questions as a lookup answer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class CanonicalType(StrEnum):
    STRING = "string"
    DATE = "date"
    LIST = "list"


#: The version of the canonical model a mapping targets.
TARGET: Final = "pavilion.eligibility.v1"

CANONICAL_FIELDS: Final[dict[str, CanonicalType]] = {
    "subject_id": CanonicalType.STRING,
    "given_name": CanonicalType.STRING,
    "family_name": CanonicalType.STRING,
    "birth_date": CanonicalType.DATE,
    "email": CanonicalType.STRING,
    "phone": CanonicalType.STRING,
    "country": CanonicalType.STRING,
    "enrolment_status": CanonicalType.STRING,
    "programme": CanonicalType.STRING,
    "region": CanonicalType.STRING,
    "memberships": CanonicalType.LIST,
    "valid_until": CanonicalType.DATE,
}

#: The key of a canonical roster: one record per subject.
SUBJECT_KEY: Final = "subject_id"

#: Canonical enrolment vocabulary; a DP's own terms are mapped onto it.
ENROLMENT_VOCABULARY: Final[frozenset[str]] = frozenset(
    {"enrolled", "graduated", "withdrawn", "suspended"}
)
