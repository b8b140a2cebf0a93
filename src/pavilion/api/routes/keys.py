"""Platform keys: list, create, rotate, activate, retire (platform admins; audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/keys", tags=["keys"])
KeyAdmin = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]
KeyId = Annotated[str, Field(min_length=1, max_length=200)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Literal["credential-signing", "audit-signing", "key-encryption"]
    algorithm: Literal["ES256", "EdDSA", "A256GCM"] | None = Field(
        default=None, description="The purpose's default when omitted (ES256, EdDSA, A256GCM)."
    )
    activate: bool = Field(default=False, description="Make it the key that signs at once.")


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Literal["credential-signing", "audit-signing", "key-encryption"]
    algorithm: Literal["ES256", "EdDSA", "A256GCM"] | None = None


def _actor(who: Principal) -> str:
    return f"token:{who.token_id}"


@router.get("")
async def list_keys(rt: RuntimeDep, who: KeyAdmin) -> dict[str, Any]:
    """Every key with its purpose, algorithm and state (never key material)."""
    return {"items": [meta.to_json() for meta in await rt.keys.list()]}


@router.post("", status_code=201)
async def create_key(body: KeyCreate, rt: RuntimeDep, who: KeyAdmin) -> dict[str, Any]:
    """Create a key inside the keystore: ``pending`` (published, not signing) or active."""
    change = await rt.keys.create(
        body.purpose, body.algorithm, activate=body.activate, actor=_actor(who)
    )
    return change.to_json()


@router.post("/rotate", status_code=201)
async def rotate_key(body: KeyRotate, rt: RuntimeDep, who: KeyAdmin) -> dict[str, Any]:
    """A new key signs from now on; the previous one stays in the JWKS until it is retired."""
    change = await rt.keys.rotate(body.purpose, body.algorithm, actor=_actor(who))
    return change.to_json()


@router.post("/{key_id}/activate")
async def activate_key(key_id: KeyId, rt: RuntimeDep, who: KeyAdmin) -> dict[str, Any]:
    return (await rt.keys.activate(key_id, actor=_actor(who))).to_json()


@router.post("/{key_id}/retire")
async def retire_key(key_id: KeyId, rt: RuntimeDep, who: KeyAdmin) -> dict[str, Any]:
    """Retired keys leave the JWKS for good; the active key cannot be retired."""
    return (await rt.keys.retire(key_id, actor=_actor(who))).to_json()
