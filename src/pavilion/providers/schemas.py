"""What a DP administrator sends to register a provider, and what the API shows back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator

from pavilion.providers.auth_schemas import (
    MtlsAuthIn,
    OAuth2ClientCredentialsIn,
    PrivateKeyJwtIn,
    TlsIn,
)
from pavilion.verification.claims import ClaimType

RegionSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Jurisdiction = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z]{2})?$")]
JurisdictionTag = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,3}(-[A-Z0-9]{1,3})?$")]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: RegionSlug
    jurisdiction: Jurisdiction = Field(description="EU, UK, US, US-CA, ...")
    url: HttpUrl
    weight: float = Field(
        default=1.0, gt=0, le=1000, description="Relative share of traffic within its tier."
    )
    tags: list[JurisdictionTag] = Field(
        default_factory=list,
        max_length=8,
        description="Further jurisdiction tags of the region, e.g. EEA for a region in Norway.",
    )


class ApiKeyAuthIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["api_key"] = "api_key"
    api_key: str = Field(min_length=16, max_length=4096, description="Sealed at rest; write-only.")


class NoAuthIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["none"]


class ProviderIn(BaseModel):
    """A provider definition: what ``pavilion providers register`` reads and
    ``POST /v1/providers`` takes (docs/PROVIDERS.md describes each member)."""

    model_config = ConfigDict(extra="forbid", title="Pavilion provider definition")

    name: str = Field(min_length=1, max_length=200, description="Shown in listings and logs.")
    claim_types: list[ClaimType] = Field(min_length=1, description="The claims this DP may answer.")
    endpoints: list[EndpointIn] = Field(
        min_length=1,
        max_length=32,
        description="Where the DP's agent answers, per region (residency decides which serve).",
    )
    auth: ApiKeyAuthIn | NoAuthIn | OAuth2ClientCredentialsIn | PrivateKeyJwtIn | MtlsAuthIn = (
        Field(
            discriminator="type",
            description="How the connector authenticates to the DP's agent (by 'type').",
        )
    )
    tls: TlsIn | None = Field(
        default=None, description="Trust anchors and the mTLS client certificate for this DP."
    )
    record_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of one record.")

    @field_validator("record_schema")
    @classmethod
    def _is_json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Against the 2020-12 meta-schema, then compiled (bad regexes, dangling local refs);
        # offline, so a remote ``$ref`` is refused rather than fetched.
        try:
            jsonschema_rs.meta.validate(value)
            jsonschema_rs.Draft202012Validator(value, offline=True)
        except jsonschema_rs.ValidationError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        except jsonschema_rs.ReferencingError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc}") from exc
        return value

    @field_validator("endpoints")
    @classmethod
    def _one_endpoint_per_region(cls, value: list[EndpointIn]) -> list[EndpointIn]:
        # Several endpoints may share a region; the same URL may not appear twice in one.
        pairs = [(e.region, str(e.url).rstrip("/")) for e in value]
        if len(set(pairs)) != len(pairs):
            raise ValueError("each endpoint URL may appear once per region")
        return value


def provider_definition_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a provider definition, for editors and for
    ``pavilion providers schema`` (docs/schemas/provider.schema.json is this output)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **ProviderIn.model_json_schema(),
    }


class EndpointOut(BaseModel):
    region: str
    jurisdiction: str
    url: str
    weight: float = 1.0
    tags: list[str] = Field(default_factory=list)


class ProviderOut(BaseModel):
    id: str
    name: str
    claim_types: list[str]
    endpoints: list[EndpointOut]
    auth: dict[str, Any] = Field(description="Auth settings; secrets are never shown.")
    tls: dict[str, Any] | None = Field(
        default=None, description="TLS settings: certificate fingerprints, never private keys."
    )
    record_schema: dict[str, Any]
    created_at: str
