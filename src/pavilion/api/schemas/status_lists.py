"""Responses of the credential status routes (the published lists themselves are JWTs)."""

from __future__ import annotations

from pydantic import Field

from pavilion.api.schemas.base import ResponseModel
from pavilion.credentials.status.states import Action


class StatusChangeOut(ResponseModel):
    credential_id: str
    action: Action
    previous: str
    state: str
    changed: bool = Field(description="False when the credential was already in that state.")
    audit_index: int | None = Field(description="The change's audit leaf; null when unchanged.")


class PublishedEntryOut(ResponseModel):
    uri: str = Field(description="The status list credential that publishes the entry.")
    kind: str = Field(description="token (IETF Token Status List) or bitstring (W3C).")
    purpose: str = Field(description="status, revocation or suspension.")
    idx: int
    value: int = Field(description="The entry's value in the list right now.")


class CredentialStatusOut(ResponseModel):
    credential_id: str
    state: str
    lists: list[PublishedEntryOut]
