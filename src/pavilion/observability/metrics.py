"""Prometheus metrics. Labels hold route templates, provider ids and outcomes, never PII."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from pavilion.observability import stages

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


class _StageCpuCollector(Collector):
    """``pavilion_stage_cpu_seconds_total{stage}``: the stage timers' totals."""

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "pavilion_stage_cpu_seconds",
            "Thread CPU charged to each stage of the hot path (with PAVILION_STAGE_TIMING).",
            labels=("stage",),
        )
        for name, seconds in stages.totals().items():
            family.add_metric((name,), seconds)
        yield family


REGISTRY.register(_StageCpuCollector())
