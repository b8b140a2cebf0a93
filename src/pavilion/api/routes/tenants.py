"""Tenants and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require, require_tenant_access
from pavilion.api.pagination import After, Limit, Page, page_of
from pavilion.tenancy.models import Tenant
from pavilion.tenancy.roles import Permission, Role
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class TenantOut(BaseModel):
    id: str
    name: str
    created_at: str


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role


class TokenOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    role: Role
    token: str = Field(description="The secret; shown once, store it now.")


def _tenant(t: Tenant) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "created_at": t.created_at.isoformat()}


@router.post("", status_code=201, response_model=TenantOut)
async def create_tenant(
    body: TenantIn,
    rt: RuntimeDep,
    _: Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))],
) -> dict[str, Any]:
    return _tenant(await rt.tenancy.create_tenant(body.name))


@router.get("", response_model=Page[TenantOut])
async def list_tenants(
    rt: RuntimeDep,
    _: Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))],
    limit: Limit = 50,
    after: After = None,
) -> dict[str, Any]:
    tenants = [_tenant(t) for t in await rt.tenancy.list_tenants(limit=limit, after=after)]
    return page_of(tenants, limit, lambda t: t["id"])


@router.post("/{tenant_id}/tokens", status_code=201, response_model=TokenOut)
async def create_token(
    tenant_id: str,
    body: TokenIn,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> dict[str, Any]:
    require_tenant_access(principal, tenant_id)
    issued = await rt.tenancy.create_token(tenant_id, body.name, body.role)
    return {
        "id": issued.id,
        "tenant_id": issued.tenant_id,
        "name": issued.name,
        "role": issued.role,
        "token": issued.secret,
    }


@router.delete("/{tenant_id}/tokens/{token_id}", status_code=204)
async def revoke_token(
    tenant_id: str,
    token_id: str,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> None:
    require_tenant_access(principal, tenant_id)
    await rt.tenancy.revoke_token(tenant_id, token_id)
