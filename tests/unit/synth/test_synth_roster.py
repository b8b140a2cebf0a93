"""The synthetic roster: reproducible, unique, schema-valid and realistic enough for demos."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pavilion.synth.roster import (
    CLUBS,
    EMAIL_DOMAIN,
    ENROLMENT_STATUSES,
    FORMER_STATUSES,
    MAX_AGE,
    MAX_ROSTER_SIZE,
    MIN_AGE,
    REGIONS,
    ROSTER_FIELDS,
    ROSTER_RECORD_SCHEMA,
    RosterFormat,
    StudentRecord,
    age_on,
    email_local_part,
    generate_roster,
    iter_roster,
    pick_examples,
    write_roster,
    years_before,
)

REFERENCE = date(2026, 1, 1)
VALIDATOR = Draft202012Validator(
    ROSTER_RECORD_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


@pytest.fixture(scope="module")
def big_roster() -> list[StudentRecord]:
    return generate_roster(20_000, seed=11, reference_date=REFERENCE)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_same_seed_and_count_give_identical_bytes(tmp_path: Path, fmt: RosterFormat) -> None:
    first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    write_roster(generate_roster(500, 42, REFERENCE), first, fmt)
    write_roster(iter_roster(500, 42, REFERENCE), second, fmt)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_different_seed_gives_different_bytes(tmp_path: Path, fmt: RosterFormat) -> None:
    first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    write_roster(generate_roster(100, 42, REFERENCE), first, fmt)
    write_roster(generate_roster(100, 43, REFERENCE), second, fmt)
    assert first.read_bytes() != second.read_bytes()


def test_a_larger_roster_starts_with_the_smaller_one() -> None:
    """Demos can grow a roster without the first subjects changing identity."""
    small = generate_roster(10, 5, REFERENCE)
    assert [r.given_name for r in generate_roster(20, 5, REFERENCE)[:10]] == [
        r.given_name for r in small
    ]


def test_student_ids_and_emails_are_unique(big_roster: list[StudentRecord]) -> None:
    assert len({r.student_id for r in big_roster}) == len(big_roster)
    assert len({r.email for r in big_roster}) == len(big_roster)


def test_emails_are_lowercase_ascii_and_derived_from_the_name(
    big_roster: list[StudentRecord],
) -> None:
    for record in big_roster:
        local, _, domain = record.email.partition("@")
        assert record.email == record.email.lower()
        assert record.email.isascii()
        assert domain == EMAIL_DOMAIN
        assert local.startswith(
            f"{email_local_part(record.given_name)}.{email_local_part(record.family_name)}"
        )


def test_every_record_matches_the_published_schema(big_roster: list[StudentRecord]) -> None:
    Draft202012Validator.check_schema(ROSTER_RECORD_SCHEMA)
    for record in big_roster:
        VALIDATOR.validate(record.as_json())


@pytest.mark.parametrize(
    "change",
    [
        {"student_id": "12345678"},
        {"birth_date": "01/02/2003"},
        {"email": "not an address"},
        {"enrolment_status": "expelled"},
        {"memberships": "Chess Club"},
        {"memberships": ["Chess Club", "Chess Club"]},
        {"nickname": "Zo"},
    ],
)
def test_schema_rejects_answers_that_break_the_contract(change: dict[str, object]) -> None:
    """The connector relies on the schema to spot a provider's bad answers."""
    record = dict(generate_roster(1, 1, REFERENCE)[0].as_json()) | change
    assert list(VALIDATOR.iter_errors(record))


def test_schema_requires_every_field() -> None:
    record = dict(generate_roster(1, 1, REFERENCE)[0].as_json())
    for field in ROSTER_FIELDS:
        partial = {k: v for k, v in record.items() if k != field}
        assert list(VALIDATOR.iter_errors(partial)), field


def test_values_come_from_the_documented_vocabularies(big_roster: list[StudentRecord]) -> None:
    statuses = Counter(r.enrolment_status for r in big_roster)
    assert set(statuses) == set(ENROLMENT_STATUSES)
    assert statuses["enrolled"] > len(big_roster) / 2
    assert {r.region for r in big_roster} == set(REGIONS)
    clubs = [club for r in big_roster for club in r.memberships]
    assert set(clubs) <= set(CLUBS)
    assert any(not r.memberships for r in big_roster)
    assert any(len(r.memberships) > 1 for r in big_roster)


def test_names_include_non_ascii_spellings(big_roster: list[StudentRecord]) -> None:
    names = {r.given_name for r in big_roster} | {r.family_name for r in big_roster}
    assert {"Zoë", "Ólafsdóttir", "Nguyễn"} <= names


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("Zoë", "zoe"),
        ("Ólafsdóttir", "olafsdottir"),
        ("Nguyễn", "nguyen"),
        ("Ó Súilleabháin", "osuilleabhain"),
        ("Þorsteinsson", "thorsteinsson"),
        ("Yılmaz", "yilmaz"),  # noqa: RUF001 - the dotless i is the point
        ("Łukasz", "lukasz"),
        ("Søren", "soren"),
        ("O'Brien", "obrien"),
        ("Min-jun", "minjun"),
    ],
)
def test_email_local_part_folds_names_to_ascii(name: str, local: str) -> None:
    assert email_local_part(name) == local


@given(
    reference=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    seed=st.integers(min_value=0, max_value=2**32),
)
@settings(max_examples=60, deadline=None)
def test_ages_stay_within_bounds_on_the_reference_date(reference: date, seed: int) -> None:
    for record in generate_roster(40, seed, reference):
        assert MIN_AGE <= age_on(record.birth_date, reference) <= MAX_AGE


def test_birth_dates_follow_the_reference_date_not_the_clock() -> None:
    early = generate_roster(5, 9, date(2020, 6, 1))
    late = generate_roster(5, 9, date(2030, 6, 1))
    assert [r.birth_date.year + 10 for r in early] == [r.birth_date.year for r in late]


def test_years_before_maps_29_february_to_the_28th() -> None:
    assert years_before(date(2024, 2, 29), 1) == date(2023, 2, 28)
    assert years_before(date(2024, 2, 29), 4) == date(2020, 2, 29)


@pytest.mark.parametrize("count", [-1, MAX_ROSTER_SIZE + 1])
def test_counts_out_of_range_are_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count must be between"):
        generate_roster(count, 1, REFERENCE)


@pytest.mark.parametrize(
    ("fmt", "expected"), [("json", "[]\n"), ("csv", ",".join(ROSTER_FIELDS) + "\n")]
)
def test_an_empty_roster_is_still_a_valid_file(
    tmp_path: Path, fmt: RosterFormat, expected: str
) -> None:
    path = tmp_path / f"empty.{fmt}"
    assert write_roster([], path, fmt) == 0
    assert path.read_text(encoding="utf-8") == expected


def test_json_output_is_an_array_with_one_readable_record_per_line(tmp_path: Path) -> None:
    records = generate_roster(3, 2, REFERENCE)
    path = tmp_path / "roster.json"
    assert write_roster(records, path, "json") == 3
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == [r.as_json() for r in records]
    assert len(text.splitlines()) == 5
    assert "\\u" not in text


def test_csv_joins_memberships_with_semicolons(tmp_path: Path) -> None:
    record = next(r for r in generate_roster(200, 2, REFERENCE) if len(r.memberships) > 1)
    path = tmp_path / "roster.csv"
    write_roster([record], path, "csv")
    assert ";".join(record.memberships) in path.read_text(encoding="utf-8")


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("previous\n", encoding="utf-8")

    def failing() -> Iterator[StudentRecord]:
        yield from generate_roster(2, 1, REFERENCE)
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError, match="generator broke"):
        write_roster(failing(), path, "csv")
    assert path.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["roster.csv"]


def test_pick_examples_gives_a_current_a_former_and_an_unknown_subject() -> None:
    records = generate_roster(100, 4, REFERENCE)
    examples = pick_examples(records)
    assert examples.current.enrolment_status == "enrolled"
    assert examples.former.enrolment_status in FORMER_STATUSES
    assert examples.unknown_student_id not in {r.student_id for r in records}
    assert examples.unknown_email not in {r.email for r in records}
    assert examples == pick_examples(records)


def test_pick_examples_skips_identifiers_that_exist() -> None:
    clash = StudentRecord(
        student_id="S0000000",
        given_name="No",
        family_name="Such",
        birth_date=date(2000, 1, 1),
        email=f"no.such.student0@{EMAIL_DOMAIN}",
        enrolment_status="suspended",
        programme="BA History",
        region="eu-west",
    )
    examples = pick_examples([*generate_roster(60, 4, REFERENCE), clash])
    assert examples.unknown_student_id == "S0000001"
    assert examples.unknown_email == f"no.such.student1@{EMAIL_DOMAIN}"


def test_pick_examples_needs_both_a_current_and_a_former_student() -> None:
    enrolled_only = [
        r for r in generate_roster(50, 4, REFERENCE) if r.enrolment_status == "enrolled"
    ]
    with pytest.raises(ValueError, match="at least one enrolled and one former"):
        pick_examples(enrolled_only)
