"""The DP registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.pagination import After, Limit, next_cursor
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.providers import ProviderPage
from pavilion.providers.schemas import ProviderIn, ProviderOut
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=AUTHENTICATED)
Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]


@router.post("", status_code=201, responses=problem_responses(400, 409))
async def register_provider(body: ProviderIn, rt: RuntimeDep, who: Writer) -> ProviderOut:
    return await rt.providers.register(who.tenant_id, body)


@router.get("")
async def list_providers(
    rt: RuntimeDep, who: Reader, limit: Limit = 50, after: After = None
) -> ProviderPage:
    items = await rt.providers.list(who.tenant_id, limit=limit, after=after)
    return ProviderPage(items=items, next=next_cursor(items, limit, lambda p: p.id))


@router.get("/{provider_id}", responses=problem_responses(404))
async def get_provider(provider_id: str, rt: RuntimeDep, who: Reader) -> ProviderOut:
    return await rt.providers.get(who.tenant_id, provider_id)


@router.delete("/{provider_id}", status_code=204, responses=problem_responses(404))
async def delete_provider(provider_id: str, rt: RuntimeDep, who: Writer) -> None:
    await rt.providers.delete(who.tenant_id, provider_id)
