"""Prometheus metrics per DP endpoint. Labels: provider id, region, endpoint host:port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from pavilion.observability.metrics import REGISTRY

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ENDPOINT = ("provider", "region", "endpoint")

ENDPOINT_LATENCY = Histogram(
    "pavilion_dp_endpoint_request_duration_seconds",
    "Latency of calls to one DP endpoint, by outcome.",
    (*_ENDPOINT, "outcome"),
    buckets=_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "pavilion_dp_endpoint_in_flight",
    "Calls to the endpoint that have not answered yet.",
    _ENDPOINT,
    registry=REGISTRY,
)
EJECTED = Gauge(
    "pavilion_dp_endpoint_ejected",
    "1 while outlier detection keeps the endpoint out of balancing.",
    _ENDPOINT,
    registry=REGISTRY,
)
EJECTIONS = Counter(
    "pavilion_dp_endpoint_ejections_total",
    "Times outlier detection ejected the endpoint.",
    _ENDPOINT,
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "pavilion_dp_endpoint_breaker_state",
    "Circuit breaker: 0 closed, 1 half-open, 2 open.",
    _ENDPOINT,
    registry=REGISTRY,
)
HEALTHY = Gauge(
    "pavilion_dp_endpoint_healthy",
    "Active health checks: 1 healthy, 0 unhealthy (absent until probed).",
    _ENDPOINT,
    registry=REGISTRY,
)
EWMA_SECONDS = Gauge(
    "pavilion_dp_endpoint_ewma_seconds",
    "Peak-EWMA latency estimate the balancer uses.",
    _ENDPOINT,
    registry=REGISTRY,
)
CONNECTIONS_OPENED = Counter(
    "pavilion_dp_connections_opened_total",
    "New connections to the endpoint, by TLS version ('none' for plain HTTP) and protocol.",
    (*_ENDPOINT, "tls_version", "alpn"),
    registry=REGISTRY,
)
CONNECTION_ERRORS = Counter(
    "pavilion_dp_connection_errors_total",
    "Failed connections, by kind (unreachable, timeout, tls_verification_failed, ...).",
    (*_ENDPOINT, "kind"),
    registry=REGISTRY,
)
RETRIES = Counter(
    "pavilion_dp_retries_total",
    "Retries of DP calls, by the failure that caused them.",
    ("provider", "reason"),
    registry=REGISTRY,
)
RETRY_BUDGET_EXHAUSTED = Counter(
    "pavilion_dp_retry_budget_exhausted_total",
    "Retries or hedges refused because the provider's retry budget was spent.",
    ("provider",),
    registry=REGISTRY,
)
HEDGES = Counter(
    "pavilion_dp_hedged_requests_total",
    "Hedged (second) requests, by which request won.",
    ("provider", "winner"),
    registry=REGISTRY,
)
FAILOVERS = Counter(
    "pavilion_dp_failovers_total",
    "Changes of the serving region: failover away from the preferred tier, or fail-back.",
    ("provider", "from_region", "to_region", "kind"),
    registry=REGISTRY,
)
RESIDENCY_BLOCKED = Counter(
    "pavilion_dp_residency_prevented_failover_total",
    "Requests that failed because every allowed region was down and residency forbade others.",
    ("provider",),
    registry=REGISTRY,
)
TOKEN_FETCHES = Counter(
    "pavilion_dp_token_fetches_total",
    "OAuth2 access token requests to a DP's authorization server, by outcome.",
    ("provider", "outcome"),
    registry=REGISTRY,
)
AUDIT_EVENTS_DROPPED = Counter(
    "pavilion_connect_audit_events_dropped_total",
    "Connection events not written to the audit log because its queue was full.",
    registry=REGISTRY,
)

BREAKER_VALUE = {"closed": 0, "half-open": 1, "open": 2}
