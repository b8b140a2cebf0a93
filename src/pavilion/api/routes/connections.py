"""DP connection health, and the tenant's residency adequacy lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pavilion.api.deps import RuntimeDep, require
from pavilion.connect.residency import ResidencyService
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.workflows.connections import provider_health

router = APIRouter(tags=["connections"])
Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
ResidencyAdmin = Annotated[Principal, Depends(require(Permission.RESIDENCY_MANAGE))]
JurisdictionCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$")]


class EndpointHealthOut(BaseModel):
    region: str
    jurisdiction: str
    url: str
    weight: float
    status: str = Field(description="healthy, ejected, open, half-open, unhealthy or unknown.")
    breaker: str = Field(description="closed, open or half-open.")
    ejected: bool
    ejections: int
    probe: str = Field(description="Active health checks: healthy, unhealthy or unknown.")
    ewma_ms: float | None = Field(description="Peak-EWMA latency the balancer uses.")
    p95_ms: float | None
    error_rate: float = Field(description="Failed share of calls in the last minute.")
    in_flight: int
    requests: int
    failures: int
    tls: dict[str, Any] | None = Field(description="Parameters of the last TLS session.")


class ProviderHealthOut(BaseModel):
    provider_id: str
    name: str
    node_region: str
    auth_method: str
    endpoints: list[EndpointHealthOut]
    retry_budget: dict[str, Any]


class AdequacyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jurisdictions: list[JurisdictionCode] = Field(
        max_length=64, description="Jurisdictions accepted as adequate; empty removes the list."
    )


class AdequacyOut(BaseModel):
    adequacy: dict[str, list[str]] = Field(
        description="Residency jurisdiction -> further jurisdictions that may serve it."
    )


@router.get("/v1/providers/{provider_id}/health", response_model=ProviderHealthOut)
async def get_provider_health(provider_id: str, rt: RuntimeDep, who: Reader) -> dict[str, Any]:
    """How this connector node sees each endpoint of the provider right now."""
    return await provider_health(rt, who.tenant_id, provider_id)


@router.get("/v1/residency/adequacy", response_model=AdequacyOut)
async def get_adequacy(rt: RuntimeDep, who: Reader) -> dict[str, Any]:
    lists = await ResidencyService(rt.db).get(who.tenant_id)
    return {"adequacy": {k: list(v) for k, v in sorted(lists.items())}}


@router.put("/v1/residency/adequacy/{residency}", response_model=AdequacyOut)
async def put_adequacy(
    residency: Annotated[str, Path(pattern=r"^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$")],
    body: AdequacyIn,
    rt: RuntimeDep,
    who: ResidencyAdmin,
) -> dict[str, Any]:
    """Replace the jurisdictions the tenant accepts as adequate for residents of one."""
    lists = await ResidencyService(rt.db).set(who.tenant_id, residency, body.jurisdictions)
    return {"adequacy": {k: list(v) for k, v in sorted(lists.items())}}
