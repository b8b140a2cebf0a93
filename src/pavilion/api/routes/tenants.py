"""Tenants and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require, require_tenant_access
from pavilion.api.pagination import After, Limit, next_cursor
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.tenants import TenantOut, TenantPage, TokenOut
from pavilion.tenancy.models import Tenant
from pavilion.tenancy.roles import Permission, Role
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/tenants", tags=["tenants"], responses=AUTHENTICATED)


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role


def _tenant(t: Tenant) -> TenantOut:
    return TenantOut(id=t.id, name=t.name, created_at=t.created_at.isoformat())


@router.post("", status_code=201, responses=problem_responses(400, 409))
async def create_tenant(
    body: TenantIn,
    rt: RuntimeDep,
    _: Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))],
) -> TenantOut:
    return _tenant(await rt.tenancy.create_tenant(body.name))


@router.get("")
async def list_tenants(
    rt: RuntimeDep,
    _: Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))],
    limit: Limit = 50,
    after: After = None,
) -> TenantPage:
    tenants = [_tenant(t) for t in await rt.tenancy.list_tenants(limit=limit, after=after)]
    return TenantPage(items=tenants, next=next_cursor(tenants, limit, lambda t: t.id))


@router.post("/{tenant_id}/tokens", status_code=201, responses=problem_responses(400, 404))
async def create_token(
    tenant_id: str,
    body: TokenIn,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> TokenOut:
    require_tenant_access(principal, tenant_id)
    issued = await rt.tenancy.create_token(tenant_id, body.name, body.role)
    return TokenOut(
        id=issued.id,
        tenant_id=issued.tenant_id,
        name=issued.name,
        role=issued.role,
        token=issued.secret,
    )


@router.delete("/{tenant_id}/tokens/{token_id}", status_code=204, responses=problem_responses(404))
async def revoke_token(
    tenant_id: str,
    token_id: str,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> None:
    require_tenant_access(principal, tenant_id)
    await rt.tenancy.revoke_token(tenant_id, token_id)
