"""The DP registry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.pagination import After, Limit, Page, page_of
from pavilion.providers.schemas import ProviderIn, ProviderOut
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/providers", tags=["providers"])
Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]


@router.post("", status_code=201, response_model=ProviderOut)
async def register_provider(body: ProviderIn, rt: RuntimeDep, who: Writer) -> ProviderOut:
    return await rt.providers.register(who.tenant_id, body)


@router.get("", response_model=Page[ProviderOut])
async def list_providers(
    rt: RuntimeDep, who: Reader, limit: Limit = 50, after: After = None
) -> dict[str, Any]:
    items = await rt.providers.list(who.tenant_id, limit=limit, after=after)
    return page_of(items, limit, lambda p: p.id)


@router.get("/{provider_id}", response_model=ProviderOut)
async def get_provider(provider_id: str, rt: RuntimeDep, who: Reader) -> ProviderOut:
    return await rt.providers.get(who.tenant_id, provider_id)


@router.delete("/{provider_id}", status_code=204)
async def delete_provider(provider_id: str, rt: RuntimeDep, who: Writer) -> None:
    await rt.providers.delete(who.tenant_id, provider_id)
