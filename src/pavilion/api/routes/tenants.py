"""Tenants and API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require, require_tenant_access
from pavilion.api.pagination import After, Limit, next_cursor
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.tenants import TenantOut, TenantPage, TokenOut
from pavilion.tenancy.models import Tenant
from pavilion.tenancy.roles import Permission, Role
from pavilion.tenancy.service import IssuedToken, Principal

router = APIRouter(prefix="/v1/tenants", tags=["tenants"], responses=AUTHENTICATED)


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


#: The longest a token may be given to live, and the longest grace of a rotated one.
_YEAR = 366 * 86_400
_WEEK = 7 * 86_400


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    expires_in_seconds: int | None = Field(
        default=None,
        ge=60,
        le=_YEAR,
        description="The token stops working this long after creation (just-in-time access); "
        "absent, it works until revoked.",
    )


class RotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int = Field(
        default=300, ge=0, le=_WEEK, description="How long the old token keeps working."
    )
    expires_in_seconds: int | None = Field(
        default=None, ge=60, le=_YEAR, description="The new token's lifetime (absent: unlimited)."
    )


def _token_out(issued: IssuedToken) -> TokenOut:
    out = TokenOut(
        id=issued.id,
        tenant_id=issued.tenant_id,
        name=issued.name,
        role=issued.role,
        token=issued.secret,
    )
    if issued.expires_at is not None:  # absent, not null, for a token without an expiry
        out.expires_at = issued.expires_at.isoformat()
    return out


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


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


@router.post(
    "/{tenant_id}/tokens",
    status_code=201,
    responses=problem_responses(400, 404),
    response_model_exclude_unset=True,
)
async def create_token(
    tenant_id: str,
    body: TokenIn,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> TokenOut:
    require_tenant_access(principal, tenant_id)
    issued = await rt.tenancy.create_token(
        tenant_id, body.name, body.role, ttl=_seconds(body.expires_in_seconds)
    )
    return _token_out(issued)


@router.post(
    "/{tenant_id}/tokens/{token_id}/rotate",
    status_code=201,
    responses=problem_responses(404),
    response_model_exclude_unset=True,
)
async def rotate_token(
    tenant_id: str,
    token_id: str,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
    body: RotationIn | None = None,
) -> TokenOut:
    """A new secret for a live token (same name and role); the old one keeps working for
    ``grace_seconds`` (default 300), then stops."""
    require_tenant_access(principal, tenant_id)
    body = body or RotationIn()
    issued = await rt.tenancy.rotate_token(
        tenant_id,
        token_id,
        grace=timedelta(seconds=body.grace_seconds),
        ttl=_seconds(body.expires_in_seconds),
    )
    return _token_out(issued)


@router.delete("/{tenant_id}/tokens/{token_id}", status_code=204, responses=problem_responses(404))
async def revoke_token(
    tenant_id: str,
    token_id: str,
    rt: RuntimeDep,
    principal: Annotated[Principal, Depends(require(Permission.TOKENS_MANAGE))],
) -> None:
    require_tenant_access(principal, tenant_id)
    await rt.tenancy.revoke_token(tenant_id, token_id)
