"""Responses of the connection routes: DP endpoint health and residency adequacy lists."""

from __future__ import annotations

from pydantic import Field

from pavilion.api.schemas.base import ResponseModel


class TlsSessionOut(ResponseModel):
    """What the last TLS session negotiated: protocol facts, no personal data."""

    tls_version: str
    cipher: str
    alpn: str
    peer_certificate_sha256: str


class EndpointHealthOut(ResponseModel):
    region: str
    jurisdiction: str
    url: str
    weight: float
    status: str = Field(description="healthy, ejected, open, half-open, unhealthy or unknown.")
    breaker: str = Field(description="closed, open or half-open.")
    ejected: bool
    ejections: int
    probe: str = Field(description="Active health checks: healthy, unhealthy or unknown.")
    ewma_ms: float | None = Field(description="Peak-EWMA latency the balancer uses.")
    p95_ms: float | None
    error_rate: float = Field(description="Failed share of calls in the last minute.")
    in_flight: int
    requests: int
    failures: int
    tls: TlsSessionOut | None = Field(description="Parameters of the last TLS session.")


class RetryBudgetOut(ResponseModel):
    """The provider's retry budget: retries may add at most ``ratio`` of the requests."""

    requests: int
    retries: int
    refused: int
    window_s: float
    ratio: float


class ProviderHealthOut(ResponseModel):
    provider_id: str
    name: str
    node_region: str
    auth_method: str
    endpoints: list[EndpointHealthOut]
    retry_budget: RetryBudgetOut


class AdequacyOut(ResponseModel):
    adequacy: dict[str, list[str]] = Field(
        description="Residency jurisdiction -> further jurisdictions that may serve it."
    )
