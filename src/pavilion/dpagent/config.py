"""Settings of one DP agent, validated once so the app never meets a half-valid config."""

from __future__ import annotations

import re
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from pavilion.dpagent.oprf_config import OprfConfig
from pavilion.dpagent.security import AgentSecurity

MIN_API_KEY_LENGTH: Final = 16
#: Visible ASCII only: the key travels in an HTTP header and must survive copy and paste.
_API_KEY_CHARS: Final = re.compile(r"[\x21-\x7e]+")


class FaultConfig(BaseModel):
    """Deliberate misbehaviour, so the connector's timeouts and retries can be tested.

    ``error_rate`` and ``garbage_rate`` are disjoint probabilities per lookup; their sum must
    stay within 1. ``seed`` makes the sequence of faults reproducible.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0.0, le=600_000.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0, le=600_000.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    garbage_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None

    @model_validator(mode="after")
    def _rates_are_a_distribution(self) -> Self:
        if self.error_rate + self.garbage_rate > 1.0:
            raise ValueError("error_rate + garbage_rate must not exceed 1")
        return self

    @property
    def enabled(self) -> bool:
        return any((self.latency_ms, self.latency_jitter_ms, self.error_rate, self.garbage_rate))


class AgentConfig(BaseModel):
    """What a DP agent needs beyond its records.

    An API key is required: running without one takes an explicit ``insecure_no_auth``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    insecure_no_auth: bool = False
    faults: FaultConfig = FaultConfig()
    #: Private set membership endpoints (docs/PRIVACY.md); off when None.
    oprf: OprfConfig | None = None
    #: TLS, mutual TLS and OAuth2 bearer tokens (docs/DP_AGENT.md); plain HTTP when None.
    security: AgentSecurity | None = None

    @field_validator("api_key")
    @classmethod
    def _key_is_usable(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return None
        secret = key.get_secret_value()
        if len(secret) < MIN_API_KEY_LENGTH:
            raise ValueError(f"the API key must have at least {MIN_API_KEY_LENGTH} characters")
        if not _API_KEY_CHARS.fullmatch(secret):
            raise ValueError("the API key must be visible ASCII characters without spaces")
        return key

    @model_validator(mode="after")
    def _auth_is_explicit(self) -> Self:
        secured = self.security is not None and self.security.authenticates
        if self.security is not None and self.security.oauth2 and self.api_key is not None:
            raise ValueError("give either an API key or OAuth2 bearer tokens, not both")
        if self.api_key is None and not self.insecure_no_auth and not secured:
            raise ValueError(
                "an API key is required unless insecure_no_auth is set (or security "
                "configures mTLS or OAuth2)"
            )
        if self.api_key is not None and self.insecure_no_auth:
            raise ValueError("give either an API key or insecure_no_auth, not both")
        return self
