"""Responses of the verification routes beyond the broker-facing ``VerificationResponse``
(which the verification domain defines, since the use case builds it)."""

from __future__ import annotations

from pydantic import Field

from pavilion.api.schemas.audit import AuditIndexOut
from pavilion.api.schemas.base import ResponseModel
from pavilion.verification.claims import ClaimType, Outcome
from pavilion.verification.schemas import VerificationResponse


class ClaimOut(ResponseModel):
    """The claim as verified; ``threshold`` and ``group`` appear only for the types that take
    them (age_over, membership)."""

    type: ClaimType
    threshold: int | None = None
    group: str | None = None


class VerificationRecordOut(ResponseModel):
    """A stored verification: its outcome and references, never the credential itself."""

    id: str
    status: str
    decision: bool | None = Field(
        description="true when the claim holds, false when it does not; null when the DP does "
        "not know the subject or could not be asked (status says which)."
    )
    outcome: Outcome | None = Field(
        description='"true", "false" or "unknown" (the DP does not know the subject); null when '
        "the DP could not be asked. Before 0.2.0 this value was in decision."
    )
    provider_id: str
    region: str | None
    claim: ClaimOut
    credential_id: str | None
    audit: AuditIndexOut
    created_at: str


class RefreshedVerificationOut(VerificationResponse):
    refreshes: str = Field(description="The verification this one re-verified.")
