"""A dry run of a roster upload: the whole pipeline on a sample, nothing stored; the result
and a preview of the canonical records."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict

from pavilion.ingest import profile_store
from pavilion.ingest.errors import Issue, MalformedUpload, UndeclaredDataCategory, reported_issues
from pavilion.ingest.formats import UploadType, upload_type
from pavilion.ingest.pipeline import BatchResult, SummaryRows, process_file
from pavilion.ingest.quality import QualityReport
from pavilion.ingest.schema import Profile, validate_profile
from pavilion.ingest.spool import plaintext_file, process_dir
from pavilion.workflows.roster_upload import spool_dir

if TYPE_CHECKING:
    from pavilion.runtime import Runtime

PREVIEW_ROWS: Final = 20


class MappingStep(TypedDict):
    target: str
    source: str
    transformation: str


class DryRunResult(TypedDict):
    """The pipeline's report on a sample and a preview of its canonical records; a sample
    that could not be read has no counts, quality or mapping."""

    profile_version: int | None
    status: str
    reason: str | None
    detail: str | None
    rows: NotRequired[SummaryRows]
    errors: list[Issue]
    error_count: NotRequired[int]
    quality: NotRequired[QualityReport]
    mapping: NotRequired[list[MappingStep]]
    preview: list[dict[str, Any]]


async def dry_run(
    rt: Runtime,
    tenant_id: str,
    provider_id: str,
    *,
    sample: bytes,
    content_type: str,
    profile_document: dict[str, Any] | None = None,
    as_of: datetime | None = None,
) -> DryRunResult:
    """Run the whole pipeline on a sample without storing anything; preview the result."""
    kind = upload_type(content_type)
    version: int | None = None
    if profile_document is not None:
        profile = validate_profile(profile_document)
    else:
        async with rt.db.transaction(tenant_id) as session:
            stored = await profile_store.get_profile(session, tenant_id, provider_id)
        profile, version = stored.profile, stored.version
    now = rt.clock()
    fallback = process_dir(spool_dir(rt))
    try:
        result = await asyncio.to_thread(
            _process_sample, sample, kind, profile, fallback, (now, as_of or now)
        )
    except (MalformedUpload, UndeclaredDataCategory) as exc:
        return DryRunResult(
            profile_version=version,
            status="rejected",
            reason=exc.code,
            detail=exc.detail,
            errors=reported_issues(exc),
            preview=[],
        )
    preview = result.canonical.head(PREVIEW_ROWS)
    columns = [c for c in preview.columns if c in profile.mapping.fields]
    return DryRunResult(
        profile_version=version,
        **result.summary(),
        mapping=[
            MappingStep(target=target, source=source, transformation=description)
            for target, source, description in result.lineage
        ],
        preview=[_plain(r) for r in preview.select(columns).to_dicts()],
    )


def _process_sample(
    sample: bytes,
    kind: UploadType,
    profile: Profile,
    fallback: Path,
    times: tuple[datetime, datetime],
) -> BatchResult:
    """The pipeline over a sample held in memory (never written to disk in clear), at
    ``times`` (now, as of)."""
    now, as_of = times
    with plaintext_file(sample, f"sample.{kind.format.value}", fallback) as path:
        return process_file(path, kind, profile, now=now, as_of=as_of)


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in record.items()}


def records_frame(records: list[dict[str, Any]]) -> bytes:
    """A JSON array of records (dry-run samples given as objects)."""
    return json.dumps(records, ensure_ascii=False).encode("utf-8")
