"""Responses of the health, readiness and public-key routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pavilion.api.schemas.base import ResponseModel


class Health(ResponseModel):
    status: Literal["ok"]


class Readiness(ResponseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="Each dependency (database, keystore): ok, or 'failing: <error type>'."
    )


class JsonWebKeySet(ResponseModel):
    """RFC 7517 JWK Set: the public keys that verify the connector's credentials."""

    keys: list[dict[str, str]] = Field(description="Public JWKs, current and not yet retired.")
