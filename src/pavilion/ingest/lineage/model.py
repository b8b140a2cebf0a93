"""The vocabulary of lineage: namespaces, dataset and job names, and ``BatchLineage``, what a
roster upload's run event is built from (free of record values and of openlineage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pavilion import __version__

PRODUCER: Final = f"https://pavilion.example/connector/{__version__}"


def dp_namespace(provider_id: str) -> str:
    return f"dp://{provider_id}"


def tenant_namespace(tenant_id: str) -> str:
    return f"pavilion://{tenant_id}"


def roster_source(provider_id: str) -> str:
    return f"dp.{provider_id}.roster"


def lookup_source(provider_id: str) -> str:
    return f"dp.{provider_id}.lookup"


def roster_dataset(provider_id: str) -> str:
    return f"pavilion.rosters.{provider_id}"


def upload_job(provider_id: str) -> str:
    return f"ingest.roster_upload.{provider_id}"


def lookup_job(provider_id: str) -> str:
    return f"verify.lookup.{provider_id}"


#: Distinct lookup event shapes kept (tenants x providers x claim types x outcome kinds).
LOOKUP_TEMPLATES: Final = 10_000
VERIFICATIONS: Final = "pavilion.verifications"
CREDENTIALS: Final = "pavilion.credentials"

#: The record fields each claim type reads (column lineage of a lookup).
CLAIM_INPUTS: Final = {
    "student_status": ("enrolment_status",),
    "age_over": ("birth_date",),
    "membership": ("memberships",),
}


@dataclass(frozen=True)
class BatchLineage:
    """Everything a roster upload's run event needs, free of record values."""

    tenant_id: str
    provider_id: str
    batch_id: str
    run_id: str
    status: str
    reason: str | None
    at: datetime
    input_bytes: int
    rows: dict[str, int]
    quality_score: float | None
    profile_version: int | None
    input_sha256: str
    output_sha256: str
    source_fields: list[tuple[str, str, str | None]] = field(default_factory=list)
    column_metrics: dict[str, dict[str, int]] = field(default_factory=dict)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    mapping: list[tuple[str, str, str]] = field(default_factory=list)
    canonical_types: dict[str, str] = field(default_factory=dict)
    error: str | None = None
