"""Prometheus metrics of the data pipeline, in the connector's registry. Labels hold provider
ids, statuses and reasons, never record values."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from pavilion.observability.metrics import REGISTRY

BATCHES = Counter(
    "pavilion_ingest_batches_total",
    "Roster uploads by provider, status (applied/rejected) and reason.",
    ("provider", "status", "reason"),
    registry=REGISTRY,
)
ROWS = Counter(
    "pavilion_ingest_rows_total",
    "Rows of roster uploads by provider and fate (applied, invalid).",
    ("provider", "fate"),
    registry=REGISTRY,
)
QUALITY = Gauge(
    "pavilion_ingest_quality_score",
    "Quality score (0-100) of each provider's latest scored batch.",
    ("provider",),
    registry=REGISTRY,
)
