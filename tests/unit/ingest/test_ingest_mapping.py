"""The mapping engine: one record and a whole frame give the same canonical values."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_support import profile
from pavilion.ingest.formats import ROW
from pavilion.ingest.mapping import MappingEngine, date_of, split_of, text_of
from pavilion.ingest.normalisers import NormaliseError
from pavilion.ingest.schema import validate_profile

FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m.%d.%y", "%Y%m%d", "%d %b %Y", "%B %d, %Y", "%Y-%j"]

WIDE: dict[str, Any] = {
    "schema": {
        "name": "wide",
        "fields": [
            {"name": "id", "type": "string", "categories": ["pii"]},
            {"name": "first", "type": "string", "categories": ["pii"]},
            {"name": "born", "type": "string", "categories": ["pii"]},
            {"name": "seen", "type": "datetime"},
            {"name": "mail", "type": "string", "categories": ["pii"]},
            {"name": "tel", "type": "string", "categories": ["pii"]},
            {"name": "land", "type": "string"},
            {"name": "state", "type": "string"},
            {"name": "clubs", "type": "string"},
            {"name": "year", "type": "integer"},
            {"name": "flag", "type": "boolean"},
            {"name": "score", "type": "number"},
        ],
    },
    "mapping": {
        "fields": {
            "subject_id": {"from": "id", "normalise": ["identifier"]},
            "given_name": {"from": "first", "normalise": ["name"]},
            "birth_date": {"from": "born", "convert": "date", "date_format": "%d/%m/%Y"},
            "valid_until": {"from": "seen", "convert": "date"},
            "email": {"from": "mail", "normalise": ["email"]},
            "phone": {"from": "tel", "normalise": ["phone"], "phone_region": "GB"},
            "country": {"from": "land", "normalise": ["country"]},
            "enrolment_status": {
                "from": "state",
                "vocabulary": {"Current": "enrolled", "Alumni": "graduated", "left": "withdrawn"},
            },
            "memberships": {"from": "clubs", "split": "|"},
            "programme": {"from": "year", "convert": "string"},
            "region": {"from": "score", "convert": "string"},
            "family_name": {"from": "flag", "convert": "string"},
        }
    },
}
SCHEMA = {
    "id": pl.String,
    "first": pl.String,
    "born": pl.String,
    "seen": pl.Datetime("us", "UTC"),
    "mail": pl.String,
    "tel": pl.String,
    "land": pl.String,
    "state": pl.String,
    "clubs": pl.String,
    "year": pl.Int64,
    "flag": pl.Boolean,
    "score": pl.Float64,
}

words = st.text(
    alphabet=string.ascii_letters + "ÉéøØß  \t-'\uff46", max_size=12
)  # U+FF46: fullwidth f
records = st.fixed_dictionaries(
    {
        "id": st.one_of(st.none(), st.text(alphabet="sS0123456789 ", max_size=10)),
        "first": st.one_of(st.none(), words),
        "born": st.one_of(
            st.none(),
            st.dates(date(1900, 1, 1), date(2030, 12, 31)).map(lambda d: d.strftime("%d/%m/%Y")),
            st.sampled_from(["31/02/2000", "2000-01-01", "", "1/2/2003", " 05/06/2007 "]),
        ),
        "seen": st.one_of(
            st.none(),
            st.datetimes(
                datetime(2000, 1, 1),
                datetime(2030, 1, 1),
                timezones=st.sampled_from(
                    [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-8))]
                ),
            ),
        ),
        "mail": st.one_of(
            st.none(), st.sampled_from(["A@B.example", "bad", " Zoë@Bücher.de ", "x@y@z.com"])
        ),
        "tel": st.one_of(st.none(), st.sampled_from(["020 7946 0958", "+14155552671", "12"])),
        "land": st.one_of(st.none(), st.sampled_from(["gb", "Germany", "XX", "840"])),
        "state": st.one_of(st.none(), st.sampled_from(["current", " ALUMNI ", "left", "gone"])),
        "clubs": st.one_of(st.none(), st.text(alphabet="ab |", max_size=10)),
        "year": st.one_of(st.none(), st.integers(-(10**12), 10**12)),
        "flag": st.one_of(st.none(), st.booleans()),
        "score": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64)),
    }
)


def engine(document: dict[str, Any] | None = None) -> MappingEngine:
    return MappingEngine(validate_profile(document or WIDE))


@given(batch=st.lists(records, min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_frame_and_record_mapping_agree(batch: list[dict[str, Any]]) -> None:
    mapper = engine()
    frame = pl.DataFrame(batch, schema=SCHEMA).with_row_index(ROW, offset=1)
    frame = frame.with_columns(pl.col(ROW).cast(pl.Int64))
    canonical, errors = mapper.apply_frame(frame)
    failed = {(r, f) for r, f in errors.select("row", "field").iter_rows()}
    for row_number, record in enumerate(batch, start=1):
        expected, problems = mapper.apply_record(record)
        got = canonical.filter(pl.col(ROW) == row_number).to_dicts()[0]
        for target, value in expected.items():
            assert got[target] == value, (target, record, got[target], value)
        assert {(row_number, p["field"]) for p in problems} == {
            (r, f) for r, f in failed if r == row_number
        }


@given(day=st.dates(date(1000, 1, 1), date(9999, 12, 31)), fmt=st.sampled_from(FORMATS))
def test_date_formats_round_trip(day: date, fmt: str) -> None:
    if "%y" in fmt and not 1969 <= day.year <= 2068:
        return  # two-digit years are ambiguous outside one century
    assert date_of(day.strftime(fmt), fmt) == day


@given(parts=st.lists(st.text(alphabet="ab ç", max_size=5), max_size=6))
def test_split_drops_blank_items_and_trims(parts: list[str]) -> None:
    result = split_of(";".join(parts), ";")
    expected = [p.strip() for p in parts if p.strip()]
    assert result == (expected or None)


@given(source=st.text(alphabet=string.ascii_letters, min_size=1, max_size=8))
def test_renames_carry_values_unchanged(source: str) -> None:
    document = {
        "schema": {"name": "r", "fields": [{"name": source, "type": "string"}]},
        "mapping": {"fields": {"subject_id": {"from": source}}},
    }
    mapper = engine(document)
    out, errors = mapper.apply_record({source: "Keep  Me "})
    assert out == {"subject_id": "Keep  Me "}
    assert errors == []
    assert mapper.source_of("subject_id") == source
    assert mapper.source_of("email") == "email"


def test_scalar_conversions() -> None:
    assert text_of(True) == "true"
    assert text_of(3.0) == "3"
    assert text_of(2.5) == "2.5"
    assert text_of(7) == "7"
    with pytest.raises(NormaliseError, match="%d/%m/%Y"):
        date_of("2000-01-01", "%d/%m/%Y")


def test_mapping_errors_name_the_source_field_and_the_canonical_one() -> None:
    mapper = engine()
    out, problems = mapper.apply_record(
        {"id": "s1", "mail": "bad", "state": "gone", "born": "31/02/2000", "tel": "12"}
    )
    assert out["subject_id"] == "S1"
    by_field = {p["field"]: p["message"] for p in problems}
    assert by_field["mail"].startswith("email: ")
    assert by_field["state"] == "enrolment_status: not in the vocabulary (3 known terms)"
    assert by_field["born"] == "birth_date: not a date in the format %d/%m/%Y"
    assert by_field["tel"].startswith("phone: ")


def test_an_unmapped_enrolment_status_must_already_be_canonical() -> None:
    mapper = engine(profile())
    out, problems = mapper.apply_record({"student_id": "s1", "enrolment_status": "Enrolled "})
    assert out["enrolment_status"] == "enrolled"
    _, problems = mapper.apply_record({"student_id": "s1", "enrolment_status": "alumnus"})
    assert problems[0]["field"] == "enrolment_status"


def test_lineage_descriptions_say_what_happens() -> None:
    described = {f.target: f.describe() for f in engine().fields}
    assert described["birth_date"] == "date from text (%d/%m/%Y)"
    assert described["valid_until"] == "date from date-time"
    assert described["memberships"] == "split on '|'"
    assert described["enrolment_status"] == "vocabulary"
    assert described["programme"] == "text from integer"
    assert described["email"] == "normalise: email"
    assert engine(profile()).fields[3].describe() == "identity"
