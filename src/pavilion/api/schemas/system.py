"""Responses of the health, readiness and public-key routes."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from pavilion.api.schemas.base import ResponseModel


class Health(ResponseModel):
    status: Literal["ok"]


class Readiness(ResponseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="Each dependency (database, keystore): ok, or 'failing: <error type>'."
    )


class MultikeyMethodOut(ResponseModel):
    """A verification method of the connector's DID: one credential-signing key."""

    id: str = Field(description="<DID>#<the key's RFC 7638 thumbprint, its JWKS kid>")
    type: str = Field(description="Multikey")
    controller: str
    publicKeyMultibase: str = Field(description="z6Mk... (Ed25519) or zDn... (P-256)")


class DidDocumentOut(ResponseModel):
    """The connector's did:web DID document: the keys its Data Integrity proofs may use."""

    model_config = ConfigDict(populate_by_name=True)

    context: list[str] = Field(alias="@context")
    id: str = Field(description="The did:web DID (PAVILION_DID_WEB).")
    verificationMethod: list[MultikeyMethodOut]
    assertionMethod: list[str] = Field(description="Every method: each may sign credentials.")


class JsonWebKeySet(ResponseModel):
    """RFC 7517 JWK Set: the public keys that verify the connector's credentials."""

    keys: list[dict[str, str]] = Field(description="Public JWKs, current and not yet retired.")
