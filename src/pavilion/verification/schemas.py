"""The verification request and response: the broker-facing contract."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from pavilion.jose import holder_key
from pavilion.verification.claims import Claim, ClaimType, Outcome

IdentifierValue = Annotated[str, StringConstraints(min_length=1, max_length=320)]
_IDENTIFIER_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ClaimType
    threshold: int | None = Field(default=None, ge=1, le=150, description="age_over only")
    group: str | None = Field(default=None, min_length=1, max_length=200, description="membership")

    @model_validator(mode="after")
    def _parameters_fit_the_type(self) -> ClaimRequest:
        if self.type is ClaimType.AGE_OVER and self.threshold is None:
            raise ValueError("age_over needs a threshold, for example 18")
        if self.type is not ClaimType.AGE_OVER and self.threshold is not None:
            raise ValueError(f"threshold is only for age_over, not {self.type.value}")
        if self.type is ClaimType.MEMBERSHIP and self.group is None:
            raise ValueError("membership needs a group")
        if self.type is not ClaimType.MEMBERSHIP and self.group is not None:
            raise ValueError(f"group is only for membership, not {self.type.value}")
        return self

    def to_claim(self) -> Claim:
        return Claim(self.type, self.threshold, self.group)


class SubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifiers: dict[str, IdentifierValue] = Field(
        min_length=1, max_length=8, description='e.g. {"student_id": "S1234567"}'
    )
    residency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z]{2})?$")] = Field(
        description="Jurisdiction of the subject's residency: EU, UK, US, US-CA, ..."
    )

    @model_validator(mode="after")
    def _identifier_kinds_are_slugs(self) -> SubjectRequest:
        for kind in self.identifiers:
            if not _IDENTIFIER_KIND.match(kind):
                raise ValueError(f"identifier kind {kind!r} must be a lowercase slug")
        return self


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: str | None = Field(
        default=None, description="The DP to ask; omit to route by claim type."
    )
    claim: ClaimRequest
    subject: SubjectRequest
    purpose: str = Field(
        min_length=1,
        max_length=200,
        description="Why: a purpose code (eligibility, age_verification, student_discount, "
        "membership, enrolment, employment, account_opening, fraud_prevention, "
        "credential_refresh), stored as it is; any other text is stored as code 'other' with "
        "the text sealed with the tenant's data key (docs/PRIVACY.md).",
    )
    mode: Literal["lookup", "psi"] = Field(
        default="lookup",
        description="lookup: the DP looks the subject up; psi: the connector checks the DP's "
        "pushed tag sets through a VOPRF, so the DP never learns who is asked about "
        "(student_status and membership; see docs/PRIVACY.md).",
    )
    format: Literal["jwt_vc", "vc2_jose", "sd_jwt_vc"] | None = Field(
        default=None,
        description="Credential format: jwt_vc (VC 1.1 JWT), vc2_jose (VC 2.0, vc+jwt) or "
        "sd_jwt_vc (dc+sd-jwt); omitted: the tenant's default for the claim type, else jwt_vc.",
    )
    template: str | None = Field(
        default=None,
        max_length=60,
        description="Credential template, e.g. student_status@1; omitted: the tenant's default.",
    )
    holder_jwk: dict[str, str] | None = Field(
        default=None,
        description="sd_jwt_vc: the holder's public JWK (P-256 or Ed25519), bound as cnf.",
    )

    @field_validator("holder_jwk")
    @classmethod
    def _holder_key_is_public(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else holder_key(value)


class VerificationResponse(BaseModel):
    """A verification's answer (since 0.2.0 ``decision`` is a boolean; docs/API_CHANGES.md)."""

    id: str
    status: str
    decision: bool | None = Field(
        description="The answer, a JSON boolean: true when the claim holds, false when it does "
        "not; null when the DP does not know the subject (see outcome)."
    )
    outcome: Outcome = Field(
        description='The three-way answer as a string: "true", "false" or "unknown" (the DP '
        "does not know the subject). Before 0.2.0 this value was in decision."
    )
    provider_id: str
    region: str | None
    claim: dict[str, Any]
    credential: str | None = None
    credential_format: str | None = None
    credential_id: str | None = Field(
        default=None,
        description="The credential's id (its `jti`, or the VC's `id`): what revocation, "
        "status and refresh calls name.",
    )
    audit: dict[str, Any]
    created_at: str
