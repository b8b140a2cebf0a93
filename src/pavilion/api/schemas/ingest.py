"""Responses of the data pipeline routes: roster upload batches and their reports, DP
profiles, upload keys, dry runs, quality trends and lineage."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from pavilion.api.schemas.base import ResponseModel


class ReportIssueOut(ResponseModel):
    """One problem of an upload: what is wrong, in which field and row (never the value)."""

    model_config = ConfigDict(extra="allow")

    message: str
    code: str | None = None
    field: str | None = None
    row: int | None = None


class FieldQualityOut(ResponseModel):
    """A field's quality: each dimension in percent (null where it does not apply)."""

    score: float | None
    completeness: float | None
    validity: float | None
    uniqueness: float | None
    consistency: float | None
    timeliness: float | None
    present: int
    invalid: int


class QualityReportOut(ResponseModel):
    """A batch's quality score, its dimensions and each field's; empty for an upload refused
    before it was read."""

    score: float | None = None
    threshold: float | None = None
    passed: bool | None = None
    dimensions: dict[str, float | None] | None = None
    weights: dict[str, float] | None = None
    fields: dict[str, FieldQualityOut] | None = None
    as_of: str | None = None
    age_days: float | None = None
    rows: int | None = None


class BatchRowsOut(ResponseModel):
    total: int
    valid: int
    invalid: int
    applied: int


class ReportRowsOut(BatchRowsOut):
    quarantined: int


class BatchReportOut(ResponseModel):
    """What the pipeline reported; ``rows``, ``error_count`` and ``quality`` appear once the
    upload was read."""

    status: str
    reason: str | None
    detail: str | None
    rows: ReportRowsOut | None = None
    errors: list[ReportIssueOut]
    error_count: int | None = None
    quality: QualityReportOut | None = None


class BatchManifestOut(ResponseModel):
    """The batch manifest the connector signed (``manifest_jws``)."""

    batch_id: str
    tenant_id: str
    provider_id: str
    profile_version: int | None
    profile_sha256: str | None
    format: str
    status: str
    reason: str | None
    received_at: str
    as_of: str
    input_sha256: str
    input_bytes: int
    rows_total: int
    rows_valid: int
    rows_invalid: int
    rows_applied: int
    output_sha256: str
    quality_score: float | None
    dp_signature_kid: str | None


class BatchOut(ResponseModel):
    """A roster upload batch; ``integrity`` appears where the batch was checked."""

    id: str
    provider_id: str
    status: str = Field(description="applied or rejected.")
    reason: str | None
    format: str
    profile_version: int | None
    received_at: str
    as_of: str
    rows: BatchRowsOut
    quality: QualityReportOut
    report: BatchReportOut
    manifest: BatchManifestOut
    manifest_jws: str
    dp_signature_kid: str | None
    lineage_run_id: str
    audit_index: int | None
    integrity: str | None = Field(
        default=None, description="signed, or what the integrity check verified."
    )


class QuarantinedRowOut(ResponseModel):
    row: int
    reasons: list[ReportIssueOut]
    record: dict[str, Any] = Field(description="The row as sent, for the DP to correct.")


class QuarantineOut(ResponseModel):
    batch_id: str
    rows_invalid: int
    items: list[QuarantinedRowOut]


class ProfileOut(ResponseModel):
    version: int
    digest: str
    created_at: str
    profile: dict[str, Any] = Field(
        description="The profile document: schema, mapping and quality policy."
    )


class UploadKeyOut(ResponseModel):
    kid: str
    kty: str | None
    created_at: str


class MappingStepOut(ResponseModel):
    target: str
    source: str
    transformation: str


class DryRunOut(ResponseModel):
    """The pipeline's result on a sample; nothing was stored. ``rows``, ``error_count``,
    ``quality`` and ``mapping`` appear once the sample was read."""

    profile_version: int | None = Field(description="Null when the sample's profile was sent.")
    status: str
    reason: str | None
    detail: str | None
    rows: ReportRowsOut | None = None
    errors: list[ReportIssueOut]
    error_count: int | None = None
    quality: QualityReportOut | None = None
    mapping: list[MappingStepOut] | None = None
    preview: list[dict[str, Any]] = Field(description="The first canonical records.")


class QualityPointOut(ResponseModel):
    batch_id: str
    at: str
    status: str
    score: float | None
    dimensions: dict[str, float | None]


class QualityTrendOut(ResponseModel):
    provider_id: str
    threshold: float | None
    points: list[QualityPointOut] = Field(description="Oldest first.")
    latest: float | None
    change: float | None
    moving_average: float | None = Field(description="Of the last five scores.")
    direction: str = Field(description="up, down, flat or none.")


class LineageDatasetOut(ResponseModel):
    name: str
    columns: list[str]


class LineageEdgeOut(ResponseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str


class LineageGraphOut(ResponseModel):
    datasets: list[LineageDatasetOut]
    jobs: list[str]
    edges: list[LineageEdgeOut]


class LineageOut(ResponseModel):
    dataset: str
    graph: LineageGraphOut
    dot: str = Field(description="The graph in Graphviz DOT.")
    events: list[dict[str, Any]] = Field(description="Recent OpenLineage run events.")
