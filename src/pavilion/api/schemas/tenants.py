"""Responses of the tenant and API token routes."""

from __future__ import annotations

from pydantic import Field

from pavilion.api.schemas.base import Page, ResponseModel
from pavilion.tenancy.roles import Role


class TenantOut(ResponseModel):
    id: str
    name: str
    created_at: str


class TokenOut(ResponseModel):
    id: str
    tenant_id: str
    name: str
    role: Role
    token: str = Field(description="The secret; shown once, store it now.")
    expires_at: str | None = Field(
        default=None, description="When the token stops working (absent: until revoked)."
    )


class TenantPage(Page[TenantOut]):
    """One page of tenants."""
