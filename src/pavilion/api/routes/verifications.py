"""Verifications: the broker's entry point."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.verifications import VerificationRecordOut
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.verification.schemas import VerificationRequest, VerificationResponse
from pavilion.workflows.verify import get_verification, run_verification

router = APIRouter(prefix="/v1/verifications", tags=["verifications"], responses=AUTHENTICATED)


@router.post(
    "",
    status_code=201,
    response_model=VerificationResponse,
    responses=problem_responses(
        400,
        403,
        404,
        409,
        502,
        503,
        notes={
            403: "Denied by policy (residency) or role",
            404: "No registered provider answers the claim",
            409: "The Idempotency-Key was used with another body",
            502: "The DP answered garbage or broke its schema",
            503: "The DP or the HSM is unreachable; see Retry-After",
        },
    ),
)
async def create_verification(
    body: VerificationRequest,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.VERIFICATIONS_CREATE))],
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Replays return the first answer; another body with the key is a 409.",
        ),
    ] = None,
) -> JSONResponse:
    result = await run_verification(rt, who.tenant_id, body, idempotency_key)
    headers = {"Idempotency-Replayed": "true"} if result.replayed else None
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


@router.get(
    "/{verification_id}", response_model_exclude_unset=True, responses=problem_responses(404)
)
async def read_verification(
    verification_id: str,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.VERIFICATIONS_READ))],
) -> VerificationRecordOut:
    found = await get_verification(rt, who.tenant_id, verification_id)
    return VerificationRecordOut.model_validate(found)
