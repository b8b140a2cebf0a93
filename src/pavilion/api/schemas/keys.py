"""Responses of the platform key routes: keys (never key material) and lifecycle steps."""

from __future__ import annotations

from pydantic import Field

from pavilion.api.schemas.base import ResponseModel
from pavilion.keystore.base import Backend, KeyAlgorithm, KeyState, Purpose


class KeyOut(ResponseModel):
    key_id: str
    name: str
    purpose: Purpose
    algorithm: KeyAlgorithm
    state: KeyState
    created_at: str
    backend: Backend
    public_jwk: dict[str, str] | None = Field(description="Null for key-encryption keys.")


class KeyList(ResponseModel):
    items: list[KeyOut]


class KeyChangeOut(ResponseModel):
    """A lifecycle step: the key after it, and the audit leaf that records it."""

    key: KeyOut
    audit_index: int
    previous_active: str | None = Field(description="The key that signed before, on rotation.")
