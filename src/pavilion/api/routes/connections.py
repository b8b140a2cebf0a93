"""DP connection health, and the tenant's residency adequacy lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.connections import AdequacyOut, ProviderHealthOut
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.workflows.connections import provider_health

router = APIRouter(tags=["connections"], responses=AUTHENTICATED)
Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
ResidencyAdmin = Annotated[Principal, Depends(require(Permission.RESIDENCY_MANAGE))]
JurisdictionCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$")]


class AdequacyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jurisdictions: list[JurisdictionCode] = Field(
        max_length=64, description="Jurisdictions accepted as adequate; empty removes the list."
    )


@router.get("/v1/providers/{provider_id}/health", responses=problem_responses(404))
async def get_provider_health(provider_id: str, rt: RuntimeDep, who: Reader) -> ProviderHealthOut:
    """How this connector node sees each endpoint of the provider right now."""
    return ProviderHealthOut.model_validate(await provider_health(rt, who.tenant_id, provider_id))


@router.get("/v1/residency/adequacy")
async def get_adequacy(rt: RuntimeDep, who: Reader) -> AdequacyOut:
    lists = await rt.residency.get(who.tenant_id)
    return AdequacyOut(adequacy={k: list(v) for k, v in sorted(lists.items())})


@router.put("/v1/residency/adequacy/{residency}", responses=problem_responses(400))
async def put_adequacy(
    residency: Annotated[str, Path(pattern=r"^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$")],
    body: AdequacyIn,
    rt: RuntimeDep,
    who: ResidencyAdmin,
) -> AdequacyOut:
    """Replace the jurisdictions the tenant accepts as adequate for residents of one."""
    lists = await rt.residency.set(who.tenant_id, residency, body.jurisdictions)
    return AdequacyOut(adequacy={k: list(v) for k, v in sorted(lists.items())})
