"""Validation per record (lookups) and per batch (pushes): every error has its row and field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from ingest_support import roster
from pavilion.errors import ProviderBadResponse
from pavilion.ingest.formats import ROW, Format, RawBatch, UploadType, read_upload
from pavilion.ingest.formats.core import numbered
from pavilion.ingest.schema import RecordSchema
from pavilion.ingest.validation import (
    BatchSchema,
    RecordValidator,
    check_lookup_record,
    coerce,
    record_validator,
    rule_errors,
    rule_results,
)
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA

NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)
TODAY = date(2026, 1, 2)

SCHEMA = RecordSchema.model_validate(
    {
        "name": "typed",
        "key": ["id", "term"],
        "fields": [
            {"name": "id", "required": True, "pattern": "[A-Z][0-9]{2}"},
            {"name": "term", "type": "integer", "required": True, "minimum": 1, "maximum": 4},
            {"name": "score", "type": "number", "minimum": 0},
            {"name": "active", "type": "boolean"},
            {"name": "born", "type": "date", "format": "%d/%m/%Y", "not_future": True},
            {"name": "seen", "type": "datetime", "not_future": True},
            {"name": "mail", "format": "email"},
            {"name": "level", "enum": ["a", "b"]},
            {"name": "code", "min_length": 2, "max_length": 3},
            {"name": "tags", "type": "list", "separator": "|"},
            {"name": "start", "type": "date"},
            {"name": "end", "type": "date"},
        ],
        "rules": [
            {"left": "end", "op": ">=", "right": "start", "severity": "error"},
            {"left": "start", "op": "!=", "right": "end", "name": "same day"},
        ],
    }
)


def _csv(tmp: Path, text: str) -> RawBatch:
    path = tmp / "u.csv"
    path.write_text(text, encoding="utf-8")
    return read_upload(path, UploadType(Format.CSV), SCHEMA)


HEADER = "id,term,score,active,born,seen,mail,level,code,tags,start,end\n"


def _errors(frame: pl.DataFrame) -> set[tuple[int, str, str]]:
    return {(r, f, c) for r, f, c in frame.select("row", "field", "code").iter_rows()}


def test_types_convert_or_fail_with_row_and_field(tmp_path: Path) -> None:
    batch = _csv(
        tmp_path,
        HEADER
        + "A01,1,2.5,yes,01/02/2000,2025-06-01T10:00:00,a@b.co,a,xy,p|q||,2020-01-01,2021-01-01\n"
        + "A02,two,nan,maybe,2000-02-01,yesterday,,,,,,\n"
        + "A03,3,,,,,,,,|,,\n",
    )
    typed = coerce(batch, SCHEMA)
    assert typed.missing_required == []
    assert _errors(typed.errors) == {
        (2, "term", "type"),
        (2, "score", "type"),
        (2, "active", "type"),
        (2, "born", "type"),
        (2, "seen", "type"),
    }
    messages = dict(typed.errors.select("field", "message").iter_rows())
    assert messages["born"] == "not a date in the format %d/%m/%Y"
    assert messages["active"] == "not a boolean (true/false)"
    first = typed.frame.row(0, named=True)
    assert first["term"] == 1
    assert first["active"] is True
    assert first["born"] == date(2000, 2, 1)
    assert first["seen"] == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert first["tags"] == ["p", "q"]
    assert typed.frame["tags"].to_list()[2] is None  # "|" holds no item


def test_typed_sources_and_missing_columns() -> None:
    frame = pl.DataFrame(
        {
            ROW: [1, 2],
            "id": ["A01", "A02"],
            "term": pl.Series([1, 2], dtype=pl.Int16),
            "score": [1, 2],
            "seen": pl.Series(
                [datetime(2025, 1, 1, 12, tzinfo=ZoneInfo("Europe/Paris")), None],
                dtype=pl.Datetime("us", "Europe/Paris"),
            ),
            "start": [datetime(2025, 1, 1), None],
            "level": pl.Series(["a", "b"], dtype=pl.Categorical),
            "tags": [[1, 2], []],
        }
    )
    typed = coerce(RawBatch(frame, Format.PARQUET), SCHEMA)
    assert typed.frame.schema["term"] == pl.Int64
    assert typed.frame["seen"].to_list()[0] == datetime(2025, 1, 1, 11, tzinfo=UTC)
    assert typed.frame["tags"].to_list() == [["1", "2"], None]
    assert typed.frame["level"].to_list() == ["a", "b"]
    assert _errors(typed.errors) == {(1, "start", "type")}
    assert "the column holds Datetime" in typed.errors["message"][0]
    naive = coerce(
        RawBatch(
            pl.DataFrame({ROW: [1], "id": ["A01"], "seen": [datetime(2025, 1, 1)]}), Format.PARQUET
        ),
        SCHEMA,
    )
    assert naive.frame["seen"].to_list() == [datetime(2025, 1, 1, tzinfo=UTC)]
    assert naive.missing_required == ["term"]


def test_constraints_are_checked_lazily_every_failure_reported(tmp_path: Path) -> None:
    batch = _csv(
        tmp_path,
        HEADER
        + "A01,1,1,true,01/02/2000,2025-01-01T00:00:00,a@b.co,a,ab,,2020-01-01,2019-01-01\n"
        + "A01,1,-1,,01/02/2099,2099-01-01T00:00:00,nope,z,abcd,,2020-01-01,2020-01-01\n"
        + "b1,9,,,,,,,a,,,\n"
        + ",2,,,,,,,,,,\n",
    )
    typed = coerce(batch, SCHEMA)
    found = BatchSchema(SCHEMA, today=TODAY, now=NOW).validate(typed.frame)
    assert _errors(found) == {
        (1, "id, term", "duplicate"),
        (2, "id, term", "duplicate"),
        (2, "score", "minimum"),
        (2, "born", "future"),
        (2, "seen", "future"),
        (2, "mail", "format"),
        (2, "level", "enum"),
        (2, "code", "length"),
        (3, "id", "pattern"),
        (3, "term", "maximum"),
        (3, "code", "length"),
        (4, "id", "required"),
    }
    messages = {(r, f): m for r, f, m in found.select("row", "field", "message").iter_rows()}
    assert messages[(3, "id")] == "does not match the pattern [A-Z][0-9]{2}"
    assert messages[(2, "born")] == "in the future (after 2026-01-02)"
    assert messages[(2, "level")] == "not one of the allowed values (a, b)"
    results = rule_results(typed.frame, SCHEMA)
    assert results["rule0"].to_list() == [False, True, None, None]
    assert _errors(rule_errors(results, SCHEMA)) == {(1, "end", "rule")}
    assert BatchSchema(SCHEMA, today=TODAY, now=NOW).validate(typed.frame.head(1)).height == 0


def test_single_unique_fields_and_long_enums(tmp_path: Path) -> None:
    schema = RecordSchema.model_validate(
        {
            "name": "u",
            "key": ["id"],
            "fields": [
                {"name": "id", "required": True},
                {"name": "mail", "unique": True},
                {"name": "n", "enum": [str(i) for i in range(12)]},
            ],
        }
    )
    path = tmp_path / "u.csv"
    path.write_text("id,mail,n\nA,x,1\nA,x,99\nB,,\n")
    typed = coerce(read_upload(path, UploadType(Format.CSV), schema), schema)
    found = BatchSchema(schema, today=TODAY, now=NOW).validate(typed.frame)
    assert _errors(found) == {
        (1, "id", "duplicate"),
        (2, "id", "duplicate"),
        (1, "mail", "duplicate"),
        (2, "mail", "duplicate"),
        (2, "n", "enum"),
    }
    assert "..." in found.filter(pl.col("code") == "enum")["message"][0]


_POOLS: dict[str, list[str | None]] = {
    "id": ["A01", "A02", "b1", "", None],
    "term": ["1", "4", "9", "x", None],
    "score": ["1.5", "-1", "nan", None],
    "active": ["yes", "no", None],
    "born": ["01/02/2000", "01/02/2099", None],
    "seen": ["2025-01-01T00:00:00", "2099-01-01T00:00:00", None],
    "mail": ["a@b.co", "nope", None],
    "level": ["a", "z", None],
    "code": ["ab", "a", "abcd", None],
    "tags": ["p|q", None],
    "start": ["2020-01-01", None],
    "end": ["2020-01-01", "2019-01-01", None],
}


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries({name: st.sampled_from(pool) for name, pool in _POOLS.items()}),
        min_size=1,
        max_size=6,
    )
)
def test_the_one_pass_check_sends_every_faulty_batch_to_pandera(
    rows: list[dict[str, str | None]],
) -> None:
    frame = pl.DataFrame(rows, schema=dict.fromkeys(_POOLS, pl.String))
    typed = coerce(RawBatch(numbered(frame), Format.CSV), SCHEMA).frame
    checks = BatchSchema(SCHEMA, today=TODAY, now=NOW)
    try:
        checks.pandera.validate(typed, lazy=True)
        faulty = False
    except SchemaErrors:
        faulty = True
    assert checks._all_pass(typed) is not faulty
    assert (checks.validate(typed).height > 0) is faulty


def test_a_missing_number_is_null_or_nan_and_a_wrong_type_goes_to_pandera() -> None:
    schema = RecordSchema.model_validate(
        {"name": "n", "fields": [{"name": "x", "type": "number", "required": True}]}
    )
    checks = BatchSchema(schema, today=TODAY, now=NOW)
    nan = pl.DataFrame({ROW: [1, 2], "x": [1.0, float("nan")]})
    assert not checks._all_pass(nan)
    assert _errors(checks.validate(nan)) == {(2, "x", "required")}
    assert checks._all_pass(nan.head(1))
    wrong_type = nan.head(1).with_columns(pl.col("x").cast(pl.Int64))
    assert not checks._all_pass(wrong_type)
    free = RecordSchema.model_validate({"name": "f", "fields": [{"name": "x"}]})
    anything = pl.DataFrame({ROW: [1, 2], "x": ["a", None]})
    assert BatchSchema(free, today=TODAY, now=NOW).validate(anything).height == 0


# -- per record ------------------------------------------------------------------------------

RECORDS = [r.as_json() for r in roster(30)]
MUTATIONS: list[tuple[str, Any]] = [
    ("student_id", 5),
    ("student_id", "X1"),
    ("birth_date", "yesterday"),
    ("email", "nope"),
    ("enrolment_status", "alumnus"),
    ("memberships", ["Chess Club", "Chess Club"]),
    ("memberships", "Chess Club"),
    ("memberships", ["a;b"]),
    ("given_name", ""),
    ("extra", "x"),
    ("region", None),
]


@given(
    base=st.sampled_from(RECORDS),
    mutations=st.lists(st.sampled_from(MUTATIONS), max_size=3),
    drop=st.sets(st.sampled_from(sorted(ROSTER_RECORD_SCHEMA["required"])), max_size=2),
)
@settings(max_examples=300)
def test_fast_validator_agrees_with_python_jsonschema(
    base: dict[str, Any], mutations: list[tuple[str, Any]], drop: set[str]
) -> None:
    record = {k: v for k, v in base.items() if k not in drop}
    for key, value in mutations:
        record[key] = value
    reference = jsonschema.Draft202012Validator(ROSTER_RECORD_SCHEMA)
    expected = list(reference.iter_errors(record))
    validator = record_validator(ROSTER_RECORD_SCHEMA)
    assert validator.is_valid(record) == (not expected)
    if not expected:
        check_lookup_record(ROSTER_RECORD_SCHEMA, record)
        return
    with pytest.raises(ProviderBadResponse) as caught:
        check_lookup_record(ROSTER_RECORD_SCHEMA, record)
    named = caught.value.extra["field"]
    fields = {"/".join(map(str, e.absolute_path)) for e in expected}
    fields |= {
        e.message.split("'")[1]
        for e in expected
        if e.validator in ("required", "additionalProperties")
    }
    assert named in fields, (named, fields)
    assert f"at {named}:" in caught.value.detail


def test_record_errors_name_the_field() -> None:
    record = dict(RECORDS[0])
    record["birth_date"] = "yesterday"
    with pytest.raises(ProviderBadResponse) as caught:
        check_lookup_record(ROSTER_RECORD_SCHEMA, record)
    assert caught.value.extra == {"field": "birth_date"}
    assert caught.value.detail == (
        "the provider's record breaks its declared schema at birth_date: pattern constraint failed"
    )
    missing = {k: v for k, v in RECORDS[0].items() if k != "email"}
    with pytest.raises(ProviderBadResponse, match="at email: required"):
        check_lookup_record(ROSTER_RECORD_SCHEMA, missing)
    with pytest.raises(ProviderBadResponse, match=r"at \(record\): type"):
        check_lookup_record(ROSTER_RECORD_SCHEMA, ["not", "an", "object"])  # type: ignore[arg-type]


def test_look_around_patterns_fall_back_to_the_full_validator() -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(?!X)"}}}
    validator = RecordValidator(schema)
    assert validator.is_valid({"id": "A1"})
    with pytest.raises(ProviderBadResponse, match="at id: pattern"):
        validator.check({"id": "X1"})
    assert RecordValidator({"type": "object"}).is_valid({"a": 1})
    assert record_validator(schema) is record_validator(dict(schema))


def test_the_compiled_validator_cache_is_bounded() -> None:
    from pavilion.ingest import validation

    for n in range(260):
        record_validator({"type": "object", "maxProperties": n})
    assert 0 < len(validation._validators) <= 257
