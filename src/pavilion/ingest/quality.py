"""Quality scores, 0-100, per field and per batch, with the breakdown that explains them.

Dimensions (each a share of values, times 100; ``None`` where it does not apply):

- completeness: values present among all rows;
- validity: present values that convert to the declared type and meet every declared
  constraint and mapping rule (pattern, format, vocabulary, range, not in the future);
- uniqueness: distinct values among present ones, for unique and key fields;
- consistency: rows that pass the schema's cross-field rules the field takes part in;
- timeliness: values within ``max_age_days`` of now for dated fields, and the batch's as-of
  date against the DP's ``quality.max_age_days``.

A field's score is the weighted mean of its applicable dimensions; a batch's dimension is the
mean over the mapped fields (the ones Pavilion uses); the batch score is their weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypedDict

import polars as pl

from pavilion.ingest.distinct import distinct_count
from pavilion.ingest.schema import Dimension, FieldType, Profile, QualityPolicy

#: Error codes that count against validity (the rest count against other dimensions).
_NOT_VALIDITY: Final = frozenset({"required", "duplicate", "rule"})


class FieldQualityView(TypedDict):
    """A field's score, each dimension (null where it does not apply), and its counts."""

    score: float | None
    completeness: float | None
    validity: float | None
    uniqueness: float | None
    consistency: float | None
    timeliness: float | None
    present: int
    invalid: int


class QualityReport(TypedDict):
    """A batch's quality: score against the threshold, dimensions, weights, every field."""

    score: float
    threshold: float
    passed: bool
    dimensions: dict[str, float | None]
    weights: dict[str, float]
    fields: dict[str, FieldQualityView]
    as_of: str
    age_days: float
    rows: int


@dataclass(frozen=True)
class FieldQuality:
    present: int
    invalid: int
    dimensions: dict[Dimension, float | None]
    score: float | None

    def as_dict(self) -> FieldQualityView:
        dims = {d.value: v for d, v in self.dimensions.items()}
        return FieldQualityView(
            score=self.score,
            completeness=dims["completeness"],
            validity=dims["validity"],
            uniqueness=dims["uniqueness"],
            consistency=dims["consistency"],
            timeliness=dims["timeliness"],
            present=self.present,
            invalid=self.invalid,
        )


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 2)


def weighted(
    values: dict[Dimension, float | None], weights: dict[Dimension, float]
) -> float | None:
    total = sum(weights.get(d, 0.0) for d, v in values.items() if v is not None)
    if total <= 0:
        return None
    return round(
        sum(weights.get(d, 0.0) * v for d, v in values.items() if v is not None) / total, 2
    )


def freshness(as_of: datetime, now: datetime, max_age_days: int) -> float:
    """100 while the batch is at most ``max_age_days`` old, falling linearly to 0 at twice that."""
    age = (now - as_of).total_seconds() / 86_400
    if age <= max_age_days:
        return 100.0
    if max_age_days == 0:
        return 0.0
    return round(max(0.0, 100.0 * (1 - (age - max_age_days) / max_age_days)), 2)


def score_batch(
    raw: pl.DataFrame,
    typed: pl.DataFrame,
    errors: pl.DataFrame,
    rules: pl.DataFrame,
    profile: Profile,
    *,
    now: datetime,
    as_of: datetime,
) -> QualityReport:
    """The batch's quality report: score, dimensions, weights and every field's breakdown."""
    schema = profile.record_schema
    policy: QualityPolicy = profile.quality
    rows = typed.height
    invalid_by_field = dict(
        errors.filter(pl.col("row").is_not_null() & ~pl.col("code").is_in(list(_NOT_VALIDITY)))
        .group_by("field")
        .agg(pl.col("row").n_unique())
        .iter_rows()
    )
    key_unique: float | None = None
    if len(schema.key) > 1:
        keyed = typed.select(schema.key).drop_nulls()
        key_unique = _share(keyed.n_unique(), keyed.height)
    fields: dict[str, FieldQuality] = {}
    for spec in schema.fields:
        present = _present(raw, spec.name)
        invalid = int(invalid_by_field.get(spec.name, 0))
        dims: dict[Dimension, float | None] = {
            Dimension.COMPLETENESS: _share(present, rows),
            Dimension.VALIDITY: _share(max(present - invalid, 0), present),
            Dimension.UNIQUENESS: None,
            Dimension.CONSISTENCY: None,
            Dimension.TIMELINESS: None,
        }
        values = typed[spec.name].drop_nulls()
        if spec.unique or schema.key == [spec.name]:
            dims[Dimension.UNIQUENESS] = _share(distinct_count(values), len(values))
        elif spec.name in schema.key:
            dims[Dimension.UNIQUENESS] = key_unique
        involved = [
            f"rule{n}" for n, r in enumerate(schema.rules) if spec.name in (r.left, r.right)
        ]
        if involved:
            shares = []
            for column in involved:
                outcome = rules[column].drop_nulls()
                shares.append(_share(int(outcome.sum()), len(outcome)))
            known = [s for s in shares if s is not None]
            dims[Dimension.CONSISTENCY] = round(sum(known) / len(known), 2) if known else None
        if spec.max_age_days is not None and spec.type in (FieldType.DATE, FieldType.DATETIME):
            limit = now - timedelta(days=spec.max_age_days)
            boundary: Any = limit.date() if spec.type is FieldType.DATE else limit
            dims[Dimension.TIMELINESS] = _share(int((values >= boundary).sum()), len(values))
        fields[spec.name] = FieldQuality(present, invalid, dims, weighted(dims, policy.weights))

    mapped = {rule.source for rule in profile.mapping.fields.values()}
    counted = [q for name, q in fields.items() if name in mapped] or list(fields.values())
    batch: dict[Dimension, float | None] = {}
    for dimension in Dimension:
        values_of = [
            q.dimensions[dimension] for q in counted if q.dimensions[dimension] is not None
        ]
        batch[dimension] = round(sum(values_of) / len(values_of), 2) if values_of else None  # type: ignore[arg-type]
    fresh = freshness(as_of, now, policy.max_age_days)
    timely = batch[Dimension.TIMELINESS]
    batch[Dimension.TIMELINESS] = fresh if timely is None else round((timely + fresh) / 2, 2)
    score = weighted(batch, policy.weights)
    return QualityReport(
        score=score if score is not None else 0.0,
        threshold=policy.min_score,
        passed=score is not None and score >= policy.min_score,
        dimensions={d.value: v for d, v in batch.items()},
        weights={d.value: w for d, w in policy.weights.items()},
        fields={name: q.as_dict() for name, q in fields.items()},
        as_of=as_of.isoformat(),
        age_days=round((now - as_of).total_seconds() / 86_400, 2),
        rows=rows,
    )


def _present(raw: pl.DataFrame, name: str) -> int:
    """Values sent, whatever the format: an empty string or list is no value."""
    if name not in raw.columns:
        return 0
    column = raw[name]
    if column.dtype == pl.String:
        return int((column.str.len_bytes() > 0).sum())
    if isinstance(column.dtype, pl.List):
        return int((column.list.len() > 0).sum())
    return len(column) - column.null_count()
