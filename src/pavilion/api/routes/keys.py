"""Platform keys: list, create, rotate, activate, retire (platform admins; audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.keys import KeyChangeOut, KeyList, KeyOut
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=AUTHENTICATED)
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
async def list_keys(rt: RuntimeDep, who: KeyAdmin) -> KeyList:
    """Every key with its purpose, algorithm and state (never key material)."""
    return KeyList(items=[KeyOut.model_validate(meta) for meta in await rt.keys.list()])


@router.post("", status_code=201, responses=problem_responses(400))
async def create_key(body: KeyCreate, rt: RuntimeDep, who: KeyAdmin) -> KeyChangeOut:
    """Create a key inside the keystore: ``pending`` (published, not signing) or active."""
    change = await rt.keys.create(
        body.purpose, body.algorithm, activate=body.activate, actor=_actor(who)
    )
    return KeyChangeOut.model_validate(change)


@router.post("/rotate", status_code=201, responses=problem_responses(400))
async def rotate_key(body: KeyRotate, rt: RuntimeDep, who: KeyAdmin) -> KeyChangeOut:
    """A new key signs from now on; the previous one stays in the JWKS until it is retired."""
    change = await rt.keys.rotate(body.purpose, body.algorithm, actor=_actor(who))
    return KeyChangeOut.model_validate(change)


@router.post("/{key_id}/activate", responses=problem_responses(404, 409))
async def activate_key(key_id: KeyId, rt: RuntimeDep, who: KeyAdmin) -> KeyChangeOut:
    return KeyChangeOut.model_validate(await rt.keys.activate(key_id, actor=_actor(who)))


@router.post(
    "/{key_id}/retire",
    responses=problem_responses(404, 409, notes={409: "The active key cannot be retired"}),
)
async def retire_key(key_id: KeyId, rt: RuntimeDep, who: KeyAdmin) -> KeyChangeOut:
    """Retired keys leave the JWKS for good; the active key cannot be retired."""
    return KeyChangeOut.model_validate(await rt.keys.retire(key_id, actor=_actor(who)))
