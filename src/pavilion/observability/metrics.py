"""Prometheus metrics. Labels hold route templates, provider ids and outcomes, never PII."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_LATENCY = Histogram(
    "pavilion_http_request_duration_seconds",
    "Latency of HTTP requests served by the connector.",
    ("method", "route", "status"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
DP_CALL_LATENCY = Histogram(
    "pavilion_dp_call_duration_seconds",
    "Latency of calls to data providers, by provider id and outcome.",
    ("provider", "outcome"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
VERIFICATIONS = Counter(
    "pavilion_verifications_total",
    "Verifications by claim type and outcome.",
    ("claim_type", "status", "decision"),
    registry=REGISTRY,
)
CREDENTIALS_ISSUED = Counter(
    "pavilion_credentials_issued_total",
    "Credentials issued, by format.",
    ("format",),
    registry=REGISTRY,
)
