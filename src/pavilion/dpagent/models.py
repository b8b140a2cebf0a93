"""Request and response bodies of the DP agent's REST API (see docs/DP_AGENT.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from pavilion.dpagent.records import IDENTIFIER_KINDS, IdentifierKind
from pavilion.synth.roster import EnrolmentStatus, StudentRecord

StudentId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class LookupIdentifiers(BaseModel):
    """Identifiers of one subject; every one given must match the same record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_id: StudentId | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not self.given():
            raise ValueError(f"give at least one identifier: {', '.join(IDENTIFIER_KINDS)}")
        return self

    def given(self) -> dict[IdentifierKind, str]:
        return {
            kind: value for kind in IDENTIFIER_KINDS if (value := getattr(self, kind)) is not None
        }


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identifiers: LookupIdentifiers


class RosterRecord(BaseModel):
    """A record as the agent returns it; matches ``ROSTER_RECORD_SCHEMA``."""

    student_id: str
    given_name: str
    family_name: str
    birth_date: date
    email: str
    enrolment_status: EnrolmentStatus
    programme: str
    region: str
    memberships: list[str]

    @classmethod
    def of(cls, record: StudentRecord) -> RosterRecord:
        return cls.model_validate(record.as_json())


class LookupFound(BaseModel):
    found: Literal[True] = True
    record: RosterRecord
    #: When the agent loaded, and so last vouched for, the data behind this answer.
    as_of: datetime


class LookupNotFound(BaseModel):
    found: Literal[False] = False


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    records: int
