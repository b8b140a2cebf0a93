"""One batch end to end, without I/O beyond reading its file: the pure core of a push.

read -> compliance -> types -> constraints (pandera) -> rules -> mapping -> canonical checks
-> quality -> decision. The decision is data: ``applied`` or ``rejected`` with a reason; the
workflow stores the batch either way and then reports or raises.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, TypedDict, cast

import polars as pl

from pavilion.ingest.canonical import SUBJECT_KEY
from pavilion.ingest.compliance import check_compliance
from pavilion.ingest.distinct import distinct_count, distinct_counts
from pavilion.ingest.errors import MAX_REPORTED_ERRORS, Issue, issue
from pavilion.ingest.formats import ROW, RawBatch, UploadType, read_upload
from pavilion.ingest.mapping import MappingEngine
from pavilion.ingest.quality import QualityReport, score_batch
from pavilion.ingest.schema import FieldType, Profile
from pavilion.ingest.validation import (
    BatchSchema,
    coerce,
    errors_frame,
    no_errors,
    rule_errors,
    rule_results,
    today_utc,
)

#: Invalid rows kept in quarantine per batch; beyond this only their count is recorded.
QUARANTINE_CAP: Final = 10_000
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()

Status = Literal["applied", "rejected"]


class SummaryRows(TypedDict):
    total: int
    valid: int
    invalid: int
    quarantined: int
    applied: int


class BatchSummary(TypedDict):
    """What the pipeline reports of a batch: outcome, counts, errors (capped) and quality."""

    status: str
    reason: str | None
    detail: str
    rows: SummaryRows
    errors: list[Issue]
    error_count: int
    quality: QualityReport


@dataclass
class QuarantinedRow:
    row: int
    reasons: list[dict[str, Any]]
    values: dict[str, Any]


@dataclass
class BatchResult:
    status: Status
    reason: str | None
    detail: str
    rows_total: int
    rows_valid: int
    rows_invalid: int
    errors: pl.DataFrame
    batch_issues: list[Issue]
    quarantine: list[QuarantinedRow]
    canonical: pl.DataFrame
    records: pl.DataFrame
    output_sha256: str
    quality: QualityReport
    column_metrics: dict[str, dict[str, int]]
    assertions: list[dict[str, Any]]
    lineage: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return self.status == "applied"

    def report_errors(self, limit: int = MAX_REPORTED_ERRORS) -> list[Issue]:
        """Batch-level problems first, then row errors in row order, capped."""
        rows = [
            cast(Issue, {k: v for k, v in e.items() if v is not None})  # ERROR_SCHEMA's columns
            for e in self.errors.sort("row", "field").head(limit).to_dicts()
        ]
        return (self.batch_issues + rows)[:limit]

    def summary(self) -> BatchSummary:
        return BatchSummary(
            status=self.status,
            reason=self.reason,
            detail=self.detail,
            rows=SummaryRows(
                total=self.rows_total,
                valid=self.rows_valid,
                invalid=self.rows_invalid,
                quarantined=len(self.quarantine),
                applied=self.rows_valid if self.applied else 0,
            ),
            errors=self.report_errors(),
            error_count=self.errors.height + len(self.batch_issues),
            quality=self.quality,
        )


def process_file(
    path: Path, kind: UploadType, profile: Profile, *, now: datetime, as_of: datetime
) -> BatchResult:
    batch = read_upload(path, kind, profile.record_schema)
    return process_batch(batch, profile, now=now, as_of=as_of)


def process_batch(
    batch: RawBatch, profile: Profile, *, now: datetime, as_of: datetime
) -> BatchResult:
    """Validate, score and map one parsed batch; raises only for undeclared data categories."""
    schema = profile.record_schema
    check_compliance(batch, schema)
    today = today_utc(now)
    batch_issues: list[Issue] = []
    undeclared = [c for c in batch.columns if c not in schema.by_name]
    if undeclared and schema.extra_fields == "reject":
        for name in undeclared:
            batch_issues.append(
                issue(
                    f"{name} is not declared in the provider's schema",
                    field=name,
                    code="undeclared-field",
                )
            )
    typed = coerce(batch, schema)
    for name in typed.missing_required:
        batch_issues.append(
            issue(
                f"{name} is required but the upload has no such field",
                field=name,
                code="missing-field",
            )
        )
    frame = typed.frame
    results = rule_results(frame, schema)
    engine = MappingEngine(profile)
    canonical, mapping_errors = engine.apply_frame(frame)
    errors = _merge(
        [
            errors_frame(batch.type_errors),
            typed.errors,
            BatchSchema(schema, today=today, now=now).validate(frame),
            rule_errors(results, schema),
            mapping_errors,
            _canonical_errors(canonical, engine, today),
        ]
    )
    if typed.missing_required:  # one batch-level issue says it; no error per row as well
        errors = errors.filter(
            ~(pl.col("field").is_in(typed.missing_required) & (pl.col("code") == "required"))
        )
    invalid_rows = errors["row"].drop_nulls().unique()
    valid = (
        canonical.filter(~pl.col(ROW).is_in(invalid_rows.implode()))
        if len(invalid_rows)
        else canonical
    )
    quality = score_batch(batch.frame, frame, errors, results, profile, now=now, as_of=as_of)
    status, reason, detail = _decide(
        profile,
        total=batch.rows,
        valid=valid.height,
        invalid=len(invalid_rows),
        quality=quality,
        batch_issues=batch_issues,
    )
    quarantine = _quarantine(batch.frame, errors) if len(invalid_rows) else []
    records = pl.DataFrame(schema={"key": pl.String, "json": pl.String})
    digest = EMPTY_SHA256
    if status == "applied":
        records = canonical_records(valid, engine.targets)
        digest = records_digest(records)
    return BatchResult(
        status=status,
        reason=reason,
        detail=detail,
        rows_total=batch.rows,
        rows_valid=valid.height,
        rows_invalid=len(invalid_rows),
        errors=errors,
        batch_issues=batch_issues,
        quarantine=quarantine,
        canonical=valid,
        records=records,
        output_sha256=digest,
        quality=quality,
        column_metrics=column_metrics(batch.frame),
        assertions=_assertions(profile, errors, batch_issues, quality),
        lineage=[(f.target, f.source, f.describe()) for f in engine.fields],
    )


def _merge(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """All errors; a missing value caused by another error in the same cell is not repeated."""
    errors = pl.concat([no_errors(), *parts])
    if errors.height == 0:
        return errors
    other = errors.filter(pl.col("code") != "required").select("row", "field").unique()
    required = errors.filter(pl.col("code") == "required").join(
        other, on=["row", "field"], how="anti"
    )
    return pl.concat([errors.filter(pl.col("code") != "required"), required]).unique(
        maintain_order=True
    )


def _canonical_errors(canonical: pl.DataFrame, engine: MappingEngine, today: date) -> pl.DataFrame:
    """Rules of the canonical model itself, named by the DP's source fields."""
    key_source = engine.source_of(SUBJECT_KEY)
    key = canonical[SUBJECT_KEY]
    parts = [
        canonical.filter(pl.col(SUBJECT_KEY).is_null()).select(
            pl.col(ROW).alias("row"),
            pl.lit(key_source).alias("field"),
            pl.lit("required").alias("code"),
            pl.lit(f"{SUBJECT_KEY}: the subject's identifier is missing").alias("message"),
        )
    ]
    if distinct_count(key) < key.len() - key.null_count():  # counting is cheaper
        parts.append(
            canonical.filter(
                pl.col(SUBJECT_KEY).is_not_null() & pl.col(SUBJECT_KEY).is_duplicated()
            ).select(
                pl.col(ROW).alias("row"),
                pl.lit(key_source).alias("field"),
                pl.lit("duplicate").alias("code"),
                pl.lit(f"{SUBJECT_KEY}: the same subject appears in more than one row").alias(
                    "message"
                ),
            )
        )
    if "birth_date" in engine.targets:
        parts.append(
            canonical.filter(pl.col("birth_date") > today).select(
                pl.col(ROW).alias("row"),
                pl.lit(engine.source_of("birth_date")).alias("field"),
                pl.lit("future").alias("code"),
                pl.lit(f"birth_date: in the future (after {today.isoformat()})").alias("message"),
            )
        )
    return pl.concat([no_errors(), *(p.cast(no_errors().schema) for p in parts)])


def _decide(
    profile: Profile,
    *,
    total: int,
    valid: int,
    invalid: int,
    quality: QualityReport,
    batch_issues: list[Issue],
) -> tuple[Status, str | None, str]:
    if batch_issues:
        return (
            "rejected",
            "schema",
            f"the upload does not fit the schema: {batch_issues[0]['message']}",
        )
    if invalid and profile.on_invalid_rows == "reject":
        return "rejected", "invalid-rows", f"{invalid} of {total} rows are invalid"
    if invalid > QUARANTINE_CAP:
        return (
            "rejected",
            "too-many-invalid-rows",
            f"{invalid} rows are invalid, more than the {QUARANTINE_CAP} a batch may quarantine",
        )
    if valid == 0:
        return "rejected", "no-valid-rows", "no row of the batch is valid"
    if not quality["passed"]:
        return (
            "rejected",
            "quality",
            f"quality score {quality['score']:.2f} is below the provider's minimum "
            f"{quality['threshold']:.2f}",
        )
    return (
        "applied",
        None,
        f"{valid} records applied" + (f", {invalid} quarantined" if invalid else ""),
    )


def _quarantine(raw: pl.DataFrame, errors: pl.DataFrame) -> list[QuarantinedRow]:
    reasons = (
        errors.filter(pl.col("row").is_not_null())
        .group_by("row")
        .agg(pl.struct("field", "code", "message").alias("reasons"))
        .sort("row")
        .head(QUARANTINE_CAP)
    )
    values = raw.join(reasons.select(pl.col("row").alias(ROW)), on=ROW, how="semi")
    by_row = {int(r[ROW]): r for r in values.to_dicts()}
    out: list[QuarantinedRow] = []
    for row, row_reasons in reasons.iter_rows():
        record = {k: _jsonable(v) for k, v in by_row.get(row, {}).items() if k != ROW}
        out.append(QuarantinedRow(int(row), list(row_reasons), record))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def canonical_records(frame: pl.DataFrame, targets: list[str]) -> pl.DataFrame:
    """(key, json) per record, sorted by key (code point order): what is stored and digested."""
    records = frame.select(
        pl.col(SUBJECT_KEY).alias("key"),
        pl.struct(sorted(targets)).struct.json_encode().alias("json"),
    )
    packed = _packed_keys(records["key"])
    if packed is not None:
        return records.select(pl.all().gather(packed.arg_sort()))
    return records.sort("key", multithreaded=False)  # keys are unique; one thread: half the CPU


def _packed_keys(keys: pl.Series) -> pl.Series | None:
    """Short keys as integers in the same order, when every key allows it.

    Keys of at most 8 ASCII characters, none of them NUL, packed big-endian and padded with
    zero bytes, order as their code points do (a key before its own extensions), and
    integers sort for about half the CPU of arg-sorting strings.
    """
    fits = keys.to_frame("k").select(
        (pl.col("k").str.len_bytes().max() <= 8)
        & (pl.col("k").str.len_bytes() == pl.col("k").str.len_chars()).all()
        & ~pl.col("k").str.contains("\x00", literal=True).any()
        & (pl.col("k").null_count() == 0)
    )
    if keys.len() == 0 or not fits.item():
        return None
    return (
        keys.str.pad_end(8, "\x00")
        .cast(pl.Binary)
        .bin.reinterpret(dtype=pl.UInt64, endianness="big")
    )


class _HashWriter:
    """A write-only file that feeds SHA-256 (polars writes the lines straight into it)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:  # pragma: no cover - called from polars' thread
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:  # pragma: no cover - called from polars' thread
        return None


def records_digest(records: pl.DataFrame) -> str:
    """SHA-256 over each canonical record's JSON followed by a line feed, in key order.

    JSON text has no raw line breaks, so polars' unquoted one-column CSV writer emits exactly
    those bytes; ``lines_digest`` computes the same from stored rows.
    """
    writer = _HashWriter()
    records.select("json").write_csv(
        cast(IO[bytes], writer),
        include_header=False,
        quote_style="never",
        line_terminator="\n",
    )
    return writer.hash.hexdigest()


def lines_digest(lines: Iterable[str]) -> str:
    """The same digest over records read back one by one (storage, integrity checks)."""
    digest = hashlib.sha256()
    for text in lines:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def column_metrics(raw: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Counts only (never minima, maxima or samples: those would be personal data)."""
    names = [n for n in raw.columns if n != ROW]
    nulls = raw.select(pl.col(n).null_count() for n in names).row(0)
    distinct = distinct_counts(raw, names)
    return {
        name: {
            "nullCount": int(nulled),
            "distinctCount": distinct[name],
            "count": raw.height,
        }
        for name, nulled in zip(names, nulls, strict=True)
    }


def _assertions(
    profile: Profile,
    errors: pl.DataFrame,
    batch_issues: list[Issue],
    quality: QualityReport,
) -> list[dict[str, Any]]:
    failed = {
        (field_, code) for field_, code in errors.select("field", "code").unique().iter_rows()
    }
    issues = {(i.get("field"), i.get("code")) for i in batch_issues}
    out: list[dict[str, Any]] = []
    for spec in profile.record_schema.fields:
        checks: list[str] = ["type"]
        if spec.required:
            checks.append("required")
        if spec.unique or spec.name in profile.record_schema.key:
            checks.append("duplicate")
        if spec.pattern:
            checks.append("pattern")
        if spec.format == "email":
            checks.append("format")
        if spec.enum:
            checks.append("enum")
        if spec.not_future and spec.type in (FieldType.DATE, FieldType.DATETIME):
            checks.append("future")
        for check in checks:
            ok = (spec.name, check) not in failed and (spec.name, "missing-field") not in issues
            out.append({"assertion": check, "column": spec.name, "success": ok})
    out.append(
        {
            "assertion": "quality_score",
            "column": None,
            "success": bool(quality["passed"]),
            "expected": f">= {quality['threshold']}",
            "actual": str(quality["score"]),
        }
    )
    return out
