"""Validation per record (lookup answers, on the hot path) and per batch (roster uploads).

Per record: the DP's JSON Schema compiled once by jsonschema-rs with the linear-time regex
engine (a DP's pattern cannot make the connector backtrack forever), with ``uniqueItems`` on
string arrays checked natively (it is the slowest keyword in the Rust validator through the
Python bridge). A failing record is then explained by the full validator, so the error names
the field exactly as before.

Per batch: every column is converted to its declared type with polars (a value that does not
convert is a row error), then a pandera schema built from the DP's declared constraints
validates the frame lazily, so every failure comes back with its row and field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import jsonschema_rs
import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from pavilion.errors import ProviderBadResponse
from pavilion.ingest.distinct import all_distinct
from pavilion.ingest.errors import Issue
from pavilion.ingest.formats import ROW, RawBatch
from pavilion.ingest.schema import FieldSpec, FieldType, RecordSchema

ERROR_SCHEMA: Final = {"row": pl.Int64, "field": pl.String, "code": pl.String, "message": pl.String}
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_TRUTHY: Final = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def no_errors() -> pl.DataFrame:
    return pl.DataFrame(schema=ERROR_SCHEMA)


def errors_frame(entries: Sequence[Issue]) -> pl.DataFrame:
    rows = [
        {
            "row": e.get("row"),
            "field": e.get("field"),
            "code": e.get("code", "invalid"),
            "message": e["message"],
        }
        for e in entries
    ]
    return pl.DataFrame(rows, schema=ERROR_SCHEMA) if rows else no_errors()


# -- per record ------------------------------------------------------------------------------


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


class RecordValidator:
    """A DP's record JSON Schema, compiled once; ``check`` raises ProviderBadResponse."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        self._full = jsonschema_rs.validator_for(self.schema)
        fast_schema, self._unique_arrays = _lift_unique_string_arrays(self.schema)
        try:
            self._fast = jsonschema_rs.validator_for(
                fast_schema, pattern_options=jsonschema_rs.RegexOptions()
            )
        except (ValueError, jsonschema_rs.ValidationError):
            # A pattern the linear-time engine does not support (look-around): the full
            # validator (fancy-regex, with its backtracking limit) decides alone.
            self._fast = self._full
            self._unique_arrays = ()

    def is_valid(self, record: Any) -> bool:
        if not self._fast.is_valid(record):
            return False
        for name in self._unique_arrays:
            items = record.get(name)
            if isinstance(items, list) and len(set(items)) != len(items):
                return False
        return True

    def check(self, record: Any) -> None:
        if self._fast.is_valid(record):  # the hot path, inlined
            for name in self._unique_arrays:
                items = record.get(name)
                if isinstance(items, list) and len(set(items)) != len(items):
                    break
            else:
                return
        self._explain(record)

    def _explain(self, record: Any) -> None:
        error = next(iter(self._full.iter_errors(record)), None)
        if error is None:  # pragma: no cover - the engines agree on every supported pattern
            return
        keyword = _camel(error.kind.name)
        where = "/".join(str(p) for p in error.instance_path)
        detail = error.kind.as_dict()
        if keyword == "required":
            where = "/".join([*map(str, error.instance_path), str(detail["property"])])
        elif keyword == "additionalProperties" and detail.get("unexpected"):
            where = "/".join([*map(str, error.instance_path), str(detail["unexpected"][0])])
        where = where or "(record)"
        raise ProviderBadResponse(
            f"the provider's record breaks its declared schema at {where}: {keyword} "
            "constraint failed",
            extra={"field": where},
        )


def _lift_unique_string_arrays(schema: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema, ()
    lifted: list[str] = []
    fast = copy.deepcopy(schema)
    for name, prop in fast["properties"].items():
        if (
            isinstance(prop, dict)
            and prop.get("type") == "array"
            and prop.get("uniqueItems") is True
            and isinstance(prop.get("items"), dict)
            and prop["items"].get("type") == "string"
        ):
            del prop["uniqueItems"]
            lifted.append(name)
    return fast, tuple(lifted)


_validators: dict[str, RecordValidator] = {}
#: The same schema object seen again (a provider's schema held by the caller) skips even the
#: canonical-JSON key: ``id`` is safe because the entry keeps the object alive.
_by_identity: dict[int, tuple[Mapping[str, Any], RecordValidator]] = {}
_CACHE_LIMIT: Final = 256


def record_validator(schema: Mapping[str, Any]) -> RecordValidator:
    """Compiled validators, one per distinct schema (schemas rarely change)."""
    hit = _by_identity.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    key = json.dumps(schema, sort_keys=True)
    validator = _validators.get(key)
    if validator is None:
        if len(_validators) >= _CACHE_LIMIT:
            _validators.clear()
        validator = _validators[key] = RecordValidator(schema)
    if len(_by_identity) >= _CACHE_LIMIT:
        _by_identity.clear()
    _by_identity[id(schema)] = (schema, validator)
    return validator


def check_lookup_record(schema: Mapping[str, Any], record: Any) -> None:
    """Raise ProviderBadResponse naming the first field that breaks the DP's declared schema."""
    record_validator(schema).check(record)


# -- per batch: types ------------------------------------------------------------------------


def polars_type(kind: FieldType) -> pl.DataType:
    return {
        FieldType.STRING: pl.String(),
        FieldType.INTEGER: pl.Int64(),
        FieldType.NUMBER: pl.Float64(),
        FieldType.BOOLEAN: pl.Boolean(),
        FieldType.DATE: pl.Date(),
        FieldType.DATETIME: pl.Datetime("us", "UTC"),
        FieldType.LIST: pl.List(pl.String),
    }[kind]


def _from_text(spec: FieldSpec, column: pl.Expr) -> tuple[pl.Expr, str]:
    text = column.str.strip_chars()
    if spec.type is FieldType.STRING:
        return pl.when(column.str.len_bytes() == 0).then(None).otherwise(column), ""
    if spec.type is FieldType.INTEGER:
        return text.cast(pl.Int64, strict=False), "not an integer"
    if spec.type is FieldType.NUMBER:
        number = text.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite()).then(number).otherwise(None), "not a number"
    if spec.type is FieldType.BOOLEAN:
        return (
            text.str.to_lowercase().replace_strict(_TRUTHY, default=None, return_dtype=pl.Boolean),
            "not a boolean (true/false)",
        )
    if spec.type is FieldType.DATE:
        return (
            text.str.strptime(pl.Date, spec.date_format, strict=False),
            f"not a date in the format {spec.date_format}",
        )
    if spec.type is FieldType.DATETIME:
        parsed = text.str.strptime(pl.Datetime("us"), spec.date_format, strict=False)
        return parsed.dt.replace_time_zone(
            "UTC"
        ), f"not a date-time in the format {spec.date_format}"
    items = column.str.split(spec.separator).list.eval(
        pl.element().filter(pl.element().str.len_bytes() > 0)
    )
    return pl.when(items.list.len() == 0).then(None).otherwise(items), ""


def _from_typed(spec: FieldSpec, column: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    target = polars_type(spec.type)
    if spec.type is FieldType.LIST and isinstance(dtype, pl.List):
        items = column.list.eval(pl.element().cast(pl.String))
        return pl.when(column.list.len() == 0).then(None).otherwise(items), ""
    if dtype == target:
        return column, ""
    if spec.type is FieldType.INTEGER and dtype.is_integer():
        return column.cast(pl.Int64), ""
    if spec.type is FieldType.NUMBER and dtype.is_numeric():
        return column.cast(pl.Float64), ""
    if spec.type is FieldType.DATETIME and isinstance(dtype, pl.Datetime):
        zone = dtype.time_zone
        converted = (
            column.dt.convert_time_zone("UTC") if zone else column.dt.replace_time_zone("UTC")
        )
        return converted.cast(target), ""
    return pl.lit(None, dtype=target), f"expected {spec.type.value}, the column holds {dtype}"


@dataclass
class Typed:
    """The batch with every declared column in its declared type."""

    frame: pl.DataFrame
    errors: pl.DataFrame
    missing_required: list[str]


def coerce(batch: RawBatch, schema: RecordSchema) -> Typed:
    """Convert each declared column; a value that does not convert is a (row, field) error."""
    frame = batch.frame
    exprs: list[pl.Expr] = [pl.col(ROW)]
    failures: list[pl.Expr] = []
    messages: dict[str, str] = {}
    missing_required: list[str] = []
    for spec in schema.fields:
        target = polars_type(spec.type)
        if spec.name not in frame.columns:
            if spec.required:
                missing_required.append(spec.name)
            exprs.append(pl.lit(None, dtype=target).alias(spec.name))
            continue
        column = pl.col(spec.name)
        dtype = frame.schema[spec.name]
        if dtype == pl.String:
            converted, message = _from_text(spec, column)
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            converted, message = _from_text(spec, column.cast(pl.String))
        else:
            converted, message = _from_typed(spec, column, dtype)
        exprs.append(converted.cast(target).alias(spec.name))
        if message:
            messages[spec.name] = message
            failures.append(
                column.is_not_null().alias(spec.name)
                if dtype != pl.String
                else (column.is_not_null() & (column.str.len_bytes() > 0)).alias(spec.name)
            )
    typed = frame.select(exprs)
    errors = no_errors()
    if failures:
        # A value sent that came out null did not convert (each conversion runs once, above).
        sent = frame.select(pl.col(ROW), *failures)
        flags = sent.with_columns(pl.col(name) & typed[name].is_null() for name in messages)
        parts = [
            flags.filter(pl.col(name)).select(
                pl.col(ROW).alias("row"),
                pl.lit(name).alias("field"),
                pl.lit("type").alias("code"),
                pl.lit(message).alias("message"),
            )
            for name, message in messages.items()
        ]
        errors = pl.concat([errors, *parts])
    return Typed(typed, errors, missing_required)


# -- per batch: constraints ------------------------------------------------------------------


@dataclass(frozen=True)
class _CheckInfo:
    code: str
    message: str


class BatchSchema:
    """A pandera (polars) schema built from the DP's declared constraints.

    ``validate`` first evaluates the same checks as one polars query (each check as pandera
    computes it: a null outcome passes, a required column has no nulls, a unique one no
    duplicates); only a frame that fails it, or that the query cannot evaluate, goes through
    pandera, which names every failing row and field.
    """

    def __init__(self, schema: RecordSchema, *, today: date, now: datetime) -> None:
        self.schema = schema
        self._checks: dict[tuple[str, int], _CheckInfo] = {}
        self._passes: list[pl.Expr] = []
        self._dtypes = {spec.name: polars_type(spec.type) for spec in schema.fields}
        columns: dict[str, pa.Column] = {}
        single_key = schema.key[0] if len(schema.key) == 1 else None
        for spec in schema.fields:
            checks = self._column_checks(spec, today=today, now=now)
            column = pl.col(spec.name)
            if spec.required:  # pandera counts NaN as missing too
                present = column.is_not_null()
                if spec.type is FieldType.NUMBER:
                    present = present & column.is_not_nan()
                self._passes.append(present.all())
            if spec.unique or spec.name == single_key:
                self._passes.append(all_distinct(column, self._dtypes[spec.name]))
            columns[spec.name] = pa.Column(
                polars_type(spec.type),
                checks=checks,
                nullable=not spec.required,
                unique=spec.unique or spec.name == single_key,
                required=True,
            )
        if len(schema.key) > 1:
            self._passes.append(pl.struct(schema.key).n_unique() == pl.len())
        self.pandera = pa.DataFrameSchema(
            columns,
            unique=list(schema.key) if len(schema.key) > 1 else None,
            strict=False,
            report_duplicates="all",
        )

    def _column_checks(self, spec: FieldSpec, *, today: date, now: datetime) -> list[pa.Check]:
        checks: list[tuple[pa.Check, _CheckInfo]] = []
        column = pl.col(spec.name)
        outcomes: list[pl.Expr] = []
        if spec.pattern is not None:
            outcomes.append(column.str.contains(f"^(?:{spec.pattern})$"))
            checks.append(
                (
                    pa.Check.str_contains(f"^(?:{spec.pattern})$"),
                    _CheckInfo("pattern", f"does not match the pattern {spec.pattern}"),
                )
            )
        if spec.format == "email":
            outcomes.append(column.str.contains(EMAIL_PATTERN))
            checks.append(
                (
                    pa.Check.str_contains(EMAIL_PATTERN),
                    _CheckInfo("format", "not an e-mail address"),
                )
            )
        if spec.enum is not None:
            allowed = ", ".join(spec.enum[:10]) + (", ..." if len(spec.enum) > 10 else "")
            outcomes.append(column.is_in(spec.enum))
            checks.append(
                (
                    pa.Check.isin(spec.enum),
                    _CheckInfo("enum", f"not one of the allowed values ({allowed})"),
                )
            )
        if spec.min_length is not None or spec.max_length is not None:
            chars = column.str.len_chars()
            outcomes.append(
                chars.ge(spec.min_length)
                if spec.max_length is None
                else chars.le(spec.max_length)
                if spec.min_length is None
                else chars.is_between(spec.min_length, spec.max_length)
            )
            checks.append(
                (
                    pa.Check.str_length(spec.min_length, spec.max_length),
                    _CheckInfo(
                        "length",
                        f"length outside {spec.min_length or 0}..{spec.max_length or 'any'}",
                    ),
                )
            )
        if spec.minimum is not None:
            outcomes.append(column.ge(spec.minimum))
            checks.append(
                (pa.Check.ge(spec.minimum), _CheckInfo("minimum", f"below {spec.minimum:g}"))
            )
        if spec.maximum is not None:
            outcomes.append(column.le(spec.maximum))
            checks.append(
                (pa.Check.le(spec.maximum), _CheckInfo("maximum", f"above {spec.maximum:g}"))
            )
        if spec.not_future:
            limit: date | datetime = now if spec.type is FieldType.DATETIME else today
            outcomes.append(column.le(limit))
            checks.append(
                (
                    pa.Check.le(limit),
                    _CheckInfo("future", f"in the future (after {limit.isoformat()})"),
                )
            )
        for number, (_, info) in enumerate(checks):
            self._checks[(spec.name, number)] = info
        self._passes.extend((outcome | outcome.is_null()).all() for outcome in outcomes)
        return [check for check, _ in checks]

    def _all_pass(self, frame: pl.DataFrame) -> bool:
        """Whether pandera would find nothing: the same checks, one pass, no row numbers."""
        if any(frame.schema.get(name) != dtype for name, dtype in self._dtypes.items()):
            return False
        if not self._passes:
            return True
        try:
            outcome = frame.select(e.alias(f"pass{n}") for n, e in enumerate(self._passes))
        except pl.exceptions.PolarsError:  # pragma: no cover - profiles fit checks to types
            return False
        return all(outcome.row(0))

    def validate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Every failure as (row, field, code, message); values are never copied out."""
        if self._all_pass(frame):
            return no_errors()
        try:
            self.pandera.validate(frame, lazy=True)
        except SchemaErrors as exc:
            return self._explain(exc.failure_cases, frame)
        return no_errors()  # pragma: no cover - the one pass is as strict as pandera, no more

    def _explain(self, cases: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame[ROW]
        out: list[Issue] = []
        key = ", ".join(self.schema.key)
        for column, check, number, index in cases.select(
            "column", "check", "check_number", "index"
        ).iter_rows():
            if index is None:  # pragma: no cover - every declared column exists after coerce
                continue
            row = int(rows[int(index)])
            if check == "not_nullable":
                out.append(_e(row, column, "required", "a required value is missing"))
            elif check == "field_uniqueness":
                out.append(_e(row, column, "duplicate", "the value appears in more than one row"))
            elif check == "multiple_fields_uniqueness":
                out.append(
                    _e(row, key, "duplicate", f"the key ({key}) appears in more than one row")
                )
            else:
                info = self._checks.get((column, int(number)) if number is not None else ("", -1))
                if info is None:  # pragma: no cover - every check we add is registered
                    info = _CheckInfo("invalid", str(check))
                out.append(_e(row, column, info.code, info.message))
        return errors_frame(out)


def _e(row: int, field: str, code: str, message: str) -> Issue:
    return Issue(row=row, field=field, code=code, message=message)


_OPS: Final = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def rule_results(frame: pl.DataFrame, schema: RecordSchema) -> pl.DataFrame:
    """One boolean column per rule: true passes, false breaks, null when a side is missing."""
    columns = [pl.col(ROW)]
    for number, rule in enumerate(schema.rules):
        columns.append(_OPS[rule.op](pl.col(rule.left), pl.col(rule.right)).alias(f"rule{number}"))
    return frame.select(columns)


def rule_errors(results: pl.DataFrame, schema: RecordSchema) -> pl.DataFrame:
    parts = [no_errors()]
    for number, rule in enumerate(schema.rules):
        if rule.severity != "error":
            continue
        parts.append(
            results.filter(pl.col(f"rule{number}") == False).select(  # noqa: E712 - polars expression
                pl.col(ROW).alias("row"),
                pl.lit(rule.left).alias("field"),
                pl.lit("rule").alias("code"),
                pl.lit(f"breaks the rule {rule.label}").alias("message"),
            )
        )
    return pl.concat(parts)


def today_utc(now: datetime) -> date:
    return now.astimezone(UTC).date()
