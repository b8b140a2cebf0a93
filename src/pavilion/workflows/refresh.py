"""Refresh a credential: re-verify the same subject, claim and DP, and issue anew.

The connector never stores the subject's identifiers (only a keyed pseudonym), so the caller
sends them again; they must hash to the verification's pseudonym, which proves the refresh is
for the same subject. The new verification runs the whole flow (policy, DP lookup, decision,
credential, audit) with the original claim, provider, purpose and format; its credential
records which verification it refreshes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.issuer_models import Issuance
from pavilion.credentials.models import IssuedCredential
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.jose import holder_key
from pavilion.verification.models import Verification
from pavilion.verification.purposes import open_note, restore
from pavilion.verification.schemas import IdentifierValue, VerificationRequest
from pavilion.workflows.verify import (
    VerificationResult,
    _canonical_identifiers,
    run_verification,
)

if TYPE_CHECKING:
    from pavilion.runtime import Runtime


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifiers: dict[str, IdentifierValue] = Field(
        min_length=1,
        max_length=8,
        description="The subject's identifiers again (never stored; checked by pseudonym).",
    )
    holder_jwk: dict[str, str] | None = Field(
        default=None, description="sd_jwt_vc: the holder's public JWK for the new credential."
    )

    @field_validator("holder_jwk")
    @classmethod
    def _public(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else holder_key(value)


async def refresh_verification(
    rt: Runtime,
    tenant_id: str,
    verification_id: str,
    body: RefreshRequest,
    idempotency_key: str | None,
) -> VerificationResult:
    async with rt.db.transaction(tenant_id, readonly=True) as session:
        row = (
            await session.execute(
                select(Verification).where(
                    Verification.tenant_id == tenant_id, Verification.id == verification_id
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"verification {verification_id} does not exist")
        if row.credential_id is None:
            raise Conflict(f"verification {verification_id} issued no credential to refresh")
        issued = (
            await session.execute(
                select(IssuedCredential.format).where(
                    IssuedCredential.tenant_id == tenant_id,
                    IssuedCredential.id == row.credential_id,
                )
            )
        ).scalar_one_or_none()
        template = (
            await session.execute(
                select(Issuance.template_id).where(
                    Issuance.tenant_id == tenant_id, Issuance.id == row.credential_id
                )
            )
        ).scalar_one_or_none()
        subject_ref = await rt.tenant_keys.subject_ref(
            session, tenant_id, _canonical_identifiers(body.identifiers)
        )
        note = await _purpose_note(rt, session, row)
    if subject_ref != row.subject_ref:
        raise InvalidRequest(
            "these identifiers are not the verified subject's", field="identifiers"
        )
    sd_jwt_vc = issued == "sd_jwt_vc"
    request = VerificationRequest.model_validate(
        {
            "provider_id": row.provider_id,
            "claim": json.loads(row.claim),
            "subject": {"identifiers": body.identifiers, "residency": row.residency},
            "purpose": restore(row.purpose_code, note),
            "format": issued,
            "template": template,
            "holder_jwk": body.holder_jwk if sd_jwt_vc else None,
        }
    )
    result = await run_verification(
        rt, tenant_id, request, idempotency_key, refreshes=verification_id
    )
    return VerificationResult(
        result.status_code, {**result.body, "refreshes": verification_id}, result.replayed
    )


async def _purpose_note(rt: Runtime, session: AsyncSession, row: Verification) -> str | None:
    """The verification's free-text purpose, opened with the tenant's data key."""
    if row.purpose_note is None:
        return None
    sealer = await rt.tenant_keys.sealer(session, row.tenant_id)
    return open_note(sealer, row.id, row.purpose_note)
