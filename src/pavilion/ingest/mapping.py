"""The mapping engine: a DP's typed records into Pavilion's canonical model.

``apply_record`` maps one record with the scalar functions (dry runs, tests, the definition);
``apply_frame`` maps a whole batch with polars and computes exactly the same values (property
tests hold them equal). Conversions and normalisers that polars cannot express identically run
the scalar function once per distinct value, which keeps a million-row batch fast because
rosters repeat most values (statuses, programmes, dates, names).

Errors name the DP's own field (the mapping's source) and the canonical field it feeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import polars as pl

from pavilion.ingest.canonical import (
    CANONICAL_FIELDS,
    ENROLMENT_VOCABULARY,
    CanonicalType,
)
from pavilion.ingest.errors import Issue
from pavilion.ingest.formats import ROW
from pavilion.ingest.normalisers import (
    WHITESPACE,
    NormaliseError,
    Step,
    apply_column,
    scalar,
    trim,
    vocabulary_key,
)
from pavilion.ingest.schema import ISO_DATE, FieldType, Profile
from pavilion.ingest.validation import ERROR_SCHEMA, no_errors

CANONICAL_DTYPES: Final[dict[CanonicalType, pl.DataType]] = {
    CanonicalType.STRING: pl.String(),
    CanonicalType.DATE: pl.Date(),
    CanonicalType.LIST: pl.List(pl.String),
}


@dataclass(frozen=True)
class CompiledField:
    target: str
    source: str
    source_type: FieldType
    convert: str | None
    date_format: str
    split: str | None
    steps: tuple[Step, ...]
    vocabulary: dict[str, str] | None

    def describe(self) -> str:
        """What happens to the value, for lineage (never a value itself)."""
        parts: list[str] = []
        if self.split is not None:
            parts.append(f"split on {self.split!r}")
        if self.convert == "date":
            parts.append(
                "date from date-time"
                if self.source_type is FieldType.DATETIME
                else f"date from text ({self.date_format})"
            )
        elif self.convert == "string":
            parts.append(f"text from {self.source_type.value}")
        parts.extend(f"normalise: {step.normaliser.value}" for step in self.steps)
        if self.vocabulary is not None:
            parts.append("vocabulary")
        return "; ".join(parts) if parts else "identity"


def compile_mapping(profile: Profile) -> list[CompiledField]:
    sources = profile.record_schema.by_name
    compiled: list[CompiledField] = []
    for target, rule in profile.mapping.fields.items():
        vocabulary: dict[str, str] | None = None
        if rule.vocabulary is not None:
            vocabulary = {vocabulary_key(k): v for k, v in rule.vocabulary.items()}
        elif target == "enrolment_status":
            vocabulary = {v: v for v in ENROLMENT_VOCABULARY}
        compiled.append(
            CompiledField(
                target=target,
                source=rule.source,
                source_type=sources[rule.source].type,
                convert=rule.convert,
                date_format=rule.date_format or ISO_DATE,
                split=rule.split,
                steps=tuple(Step(n, rule.phone_region) for n in rule.normalise),
                vocabulary=vocabulary,
            )
        )
    return compiled


# -- scalar conversions (the definitions) ----------------------------------------------------


def text_of(value: Any) -> str:
    """A scalar as canonical text: JSON-style booleans, integral floats without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def date_of(value: str, fmt: str) -> date:
    try:
        return datetime.strptime(trim(value), fmt).date()
    except ValueError as exc:
        raise NormaliseError(f"not a date in the format {fmt}") from exc


def split_of(value: str, separator: str) -> list[str] | None:
    items = [item for item in (trim(part) for part in value.split(separator)) if item]
    return items or None


def _vocabulary_value(vocabulary: dict[str, str], value: str) -> str:
    found = vocabulary.get(vocabulary_key(value))
    if found is None:
        raise NormaliseError(f"not in the vocabulary ({len(vocabulary)} known terms)")
    return found


def map_value(field: CompiledField, value: Any) -> Any:
    """One canonical value from one typed source value; raises NormaliseError."""
    if value is None:
        return None
    if field.split is not None:
        return split_of(value, field.split)
    if field.convert == "date":
        if isinstance(value, datetime):  # calendar date in UTC, as the column form computes
            return (value.astimezone(UTC) if value.tzinfo else value).date()
        return date_of(value, field.date_format)
    if field.convert == "string":
        value = text_of(value)
    if isinstance(value, str):
        for step in field.steps:
            value = scalar(step.normaliser, phone_region=step.phone_region)(value)
        if field.vocabulary is not None:
            value = _vocabulary_value(field.vocabulary, value)
    return value


class MappingEngine:
    """A compiled profile mapping; apply it to one record or a whole typed frame."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.fields = compile_mapping(profile)

    @property
    def targets(self) -> list[str]:
        return [f.target for f in self.fields]

    def apply_record(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
        out: dict[str, Any] = {}
        errors: list[Issue] = []
        for field in self.fields:
            try:
                out[field.target] = map_value(field, record.get(field.source))
            except NormaliseError as exc:
                out[field.target] = None
                errors.append(
                    Issue(
                        field=field.source,
                        code="mapping",
                        message=f"{field.target}: {exc.message}",
                    )
                )
        return out, errors

    def apply_frame(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Canonical columns (every canonical field, unmapped ones null) and mapping errors."""
        columns: dict[str, pl.Series] = {ROW: frame[ROW]}
        errors: list[pl.DataFrame] = [no_errors()]
        for field in self.fields:
            values, problems = _map_column(field, frame[field.source])
            columns[field.target] = values.rename(field.target)
            failed = pl.DataFrame({"row": frame[ROW], "message": problems}).filter(
                pl.col("message").is_not_null()
            )
            if failed.height:
                errors.append(
                    failed.select(
                        pl.col("row"),
                        pl.lit(field.source).alias("field"),
                        pl.lit("mapping").alias("code"),
                        (pl.lit(f"{field.target}: ") + pl.col("message")).alias("message"),
                    ).cast(ERROR_SCHEMA)  # type: ignore[arg-type]
                )
        for name, kind in CANONICAL_FIELDS.items():
            if name not in columns:
                columns[name] = _nulls(frame.height, CANONICAL_DTYPES[kind]).rename(name)
        return pl.DataFrame(columns), pl.concat(errors)

    def source_of(self, target: str) -> str:
        for field in self.fields:
            if field.target == target:
                return field.source
        return target


def _nulls(length: int, dtype: pl.DataType = pl.String()) -> pl.Series:
    return pl.repeat(None, length, dtype=dtype, eager=True)


def _per_distinct(
    values: pl.Series, fn: Callable[[Any], Any], dtype: pl.DataType
) -> tuple[pl.Series, pl.Series]:
    """Apply a scalar function once per distinct non-null value and spread the results."""
    keys: list[Any] = []
    results: list[Any] = []
    problems: list[str | None] = []
    for value in values.drop_nulls().unique().to_list():
        keys.append(value)
        try:
            results.append(fn(value))
            problems.append(None)
        except NormaliseError as exc:
            results.append(None)
            problems.append(exc.message)
    if not keys:
        return _nulls(len(values), dtype), _nulls(len(values))
    frame = pl.DataFrame({"k": values})
    table = pl.DataFrame(
        {
            "k": pl.Series(keys, dtype=values.dtype),
            "v": pl.Series(results, dtype=dtype),
            "e": pl.Series(problems, dtype=pl.String),
        }
    )
    joined = frame.join(table, on="k", how="left", maintain_order="left")
    return joined["v"], joined["e"]


def _map_column(field: CompiledField, source: pl.Series) -> tuple[pl.Series, pl.Series]:
    length = len(source)
    errors = _nulls(length)
    if field.split is not None:
        separator = field.split
        values = (
            source.str.split(separator)
            .list.eval(pl.element().str.strip_chars(WHITESPACE))
            .list.eval(pl.element().filter(pl.element().str.len_bytes() > 0))
        )
        return pl.select(pl.when(values.list.len() > 0).then(values)).to_series(), errors
    if field.convert == "date":
        if source.dtype == pl.String:
            fmt = field.date_format
            return _per_distinct(source, lambda v: date_of(v, fmt), pl.Date())
        return source.dt.date(), errors
    values = source
    if field.convert == "string":
        if source.dtype == pl.Boolean:
            values = source.replace_strict({True: "true", False: "false"}, return_dtype=pl.String)
        elif source.dtype.is_integer():
            values = source.cast(pl.String)
        else:
            values, _ = _per_distinct(source, text_of, pl.String())
    if field.steps:
        values, errors = apply_column(values, field.steps)
    if field.vocabulary is not None:
        vocabulary = field.vocabulary
        mapped, problems = _per_distinct(
            values, lambda v: _vocabulary_value(vocabulary, v), pl.String()
        )
        errors = errors.zip_with(errors.is_not_null(), problems)
        values = mapped
    return values, errors
