"""Loading a roster: round trips, O(1) lookups, and errors that point at the broken spot."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pavilion.dpagent.records import (
    DuplicateIdentifierError,
    RecordIndex,
    RecordLoadError,
    load_records,
)
from pavilion.errors import PavilionError
from pavilion.synth.roster import ROSTER_FIELDS, RosterFormat, StudentRecord, write_roster

HEADER = ",".join(ROSTER_FIELDS)
GOOD_ROW = (
    "S1234567,Zoë,Ólafsdóttir,2001-02-03,zoe.olafsdottir@uni.example,enrolled,LLB Law,eu-west,"
)
AS_OF = datetime(2026, 1, 2, tzinfo=UTC)


def csv_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def json_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.json"
    path.write_text(text, encoding="utf-8")
    return path


def record(**changes: object) -> StudentRecord:
    base: dict[str, object] = {
        "student_id": "S7654321",
        "given_name": "Nguyễn",
        "family_name": "Trần",
        "birth_date": date(1999, 9, 9),
        "email": "Nguyen.Tran@uni.example",
        "enrolment_status": "graduated",
        "programme": "BA History",
        "region": "eu-central",
        "memberships": ("Chess Club",),
    }
    return StudentRecord(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_written_roster_loads_back_unchanged(
    tmp_path: Path, fmt: RosterFormat, dp_records: list[StudentRecord]
) -> None:
    path = tmp_path / f"roster.{fmt}"
    write_roster(dp_records, path, fmt)
    index = load_records(path, as_of=AS_OF)
    assert len(index) == len(dp_records)
    for original in dp_records:
        assert index.find({"student_id": original.student_id}) == original
        assert index.find({"email": original.email}) == original


def test_the_format_can_be_given_when_the_suffix_does_not_tell(
    tmp_path: Path, dp_records: list[StudentRecord]
) -> None:
    path = tmp_path / "roster.export"
    write_roster(dp_records, path, "json")
    assert len(load_records(path, fmt="json")) == len(dp_records)


def test_as_of_defaults_to_the_load_time_in_utc(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    index = load_records(csv_file(tmp_path, HEADER, GOOD_ROW))
    assert before <= index.as_of <= datetime.now(UTC)
    assert index.as_of.tzinfo is not None


def test_lookup_by_email_ignores_case_and_surrounding_spaces() -> None:
    subject = record()
    index = RecordIndex([subject], as_of=AS_OF)
    assert index.find({"email": "  NGUYEN.TRAN@UNI.EXAMPLE "}) == subject
    assert index.find({"student_id": " S7654321 "}) == subject


def test_lookup_by_student_id_is_exact() -> None:
    index = RecordIndex([record()], as_of=AS_OF)
    assert index.find({"student_id": "s7654321"}) is None


def test_all_given_identifiers_must_point_at_the_same_record() -> None:
    first = record()
    second = record(student_id="S1111111", email="other@uni.example")
    index = RecordIndex([first, second], as_of=AS_OF)
    assert index.find({"student_id": "S7654321", "email": "nguyen.tran@uni.example"}) == first
    assert index.find({"student_id": "S7654321", "email": "other@uni.example"}) is None
    assert index.find({"student_id": "S7654321", "email": "nobody@uni.example"}) is None
    assert index.find({"student_id": "S0000000", "email": "other@uni.example"}) is None


def test_a_lookup_needs_an_identifier() -> None:
    with pytest.raises(ValueError, match="at least one identifier"):
        RecordIndex([record()], as_of=AS_OF).find({})


@pytest.mark.parametrize(
    ("duplicate", "kind"),
    [
        (record(email="someone.else@uni.example"), "student_id"),
        (record(student_id="S1111111", email="NGUYEN.TRAN@uni.example"), "email"),
    ],
)
def test_an_identifier_can_belong_to_one_record_only(duplicate: StudentRecord, kind: str) -> None:
    index = RecordIndex([record()], as_of=AS_OF)
    with pytest.raises(DuplicateIdentifierError) as caught:
        index.add(duplicate)
    assert caught.value.kind == kind
    assert len(index) == 1
    assert index.find({"email": "someone.else@uni.example"}) is None


def test_as_of_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RecordIndex([], as_of=datetime(2026, 1, 1))


def test_csv_quirks_of_real_exports_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    text = (
        f"{HEADER},internal_note\n\n"
        "S1234567, Zoë ,Ólafsdóttir,2001-02-03,zoe@uni.example,enrolled,LLB Law,eu-west,"
        '"Chess Club; Film Society;",ignored\n'
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    subject = load_records(path).find({"student_id": "S1234567"})
    assert subject is not None
    assert subject.given_name == "Zoë"
    assert subject.memberships == ("Chess Club", "Film Society")


def test_an_empty_json_array_is_an_empty_roster(tmp_path: Path) -> None:
    assert len(load_records(json_file(tmp_path, " [ ] \n"))) == 0


CSV_ERRORS = [
    pytest.param([], 1, None, "no header row", id="empty file"),
    pytest.param(
        [HEADER.replace(",region", "")], 1, "region", "missing column", id="missing column"
    ),
    pytest.param([HEADER + ",email"], 1, "email", "repeated column", id="repeated column"),
    pytest.param(
        [HEADER, GOOD_ROW, "S7654321,Ana,Silva,2000-01-01"],
        3,
        "email",
        "expected 9 values, found 4",
        id="short row",
    ),
    pytest.param([HEADER, GOOD_ROW + ",extra"], 2, None, "found 10", id="long row"),
    pytest.param(
        [HEADER, GOOD_ROW.replace("2001-02-03", "03/02/2001")],
        2,
        "birth_date",
        "ISO date",
        id="date format",
    ),
    pytest.param(
        [HEADER, GOOD_ROW.replace("2001-02-03", "2001-02-30")],
        2,
        "birth_date",
        "not a calendar date",
        id="impossible date",
    ),
    pytest.param(
        [HEADER, GOOD_ROW.replace("enrolled", "expelled")],
        2,
        "enrolment_status",
        "one of",
        id="status",
    ),
    pytest.param(
        [HEADER, GOOD_ROW.replace("S1234567", "1234567")],
        2,
        "student_id",
        "7 digits",
        id="student id",
    ),
    pytest.param(
        [HEADER, GOOD_ROW.replace("zoe.olafsdottir@uni.example", "zoe at uni")],
        2,
        "email",
        "e-mail address",
        id="email",
    ),
    pytest.param(
        [HEADER, GOOD_ROW.replace("eu-west", "Europe")], 2, "region", "region", id="region"
    ),
    pytest.param([HEADER, GOOD_ROW.replace("Zoë", " ")], 2, "given_name", "empty", id="blank"),
    pytest.param(
        [HEADER, GOOD_ROW, GOOD_ROW.replace("zoe.olafsdottir", "zoe2")],
        3,
        "student_id",
        "already has this student_id",
        id="duplicate id",
    ),
    pytest.param(
        [HEADER, GOOD_ROW, GOOD_ROW.replace("S1234567", "S1234568").replace("zoe.", "ZOE.")],
        3,
        "email",
        "already has this email",
        id="duplicate email",
    ),
    pytest.param(
        [HEADER, GOOD_ROW[:-1] + ',"Chess Club;Chess Club"'],
        2,
        "memberships",
        "repeated club",
        id="repeated club",
    ),
    pytest.param([HEADER, GOOD_ROW, 'S1,"unterminated'], 3, None, "malformed CSV", id="quote"),
]


@pytest.mark.parametrize(("lines", "line", "field", "reason"), CSV_ERRORS)
def test_csv_errors_name_file_line_and_field(
    tmp_path: Path, lines: list[str], line: int, field: str | None, reason: str
) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    with pytest.raises(RecordLoadError) as caught:
        load_records(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, line, field)
    assert reason in error.detail
    assert error.detail.startswith(f"{path}, line {line}")
    if field is not None:
        assert f"field {field!r}" in error.detail
    assert isinstance(error, PavilionError)


def test_load_errors_never_quote_the_offending_value(tmp_path: Path) -> None:
    """Load errors reach terminals and logs; the bad value may be someone's birth date."""
    path = csv_file(tmp_path, HEADER, GOOD_ROW.replace("2001-02-03", "2001-13-45"))
    with pytest.raises(RecordLoadError) as caught:
        load_records(path)
    assert "2001-13-45" not in caught.value.detail
    assert "S1234567" not in caught.value.detail


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(f"{HEADER}\n{GOOD_ROW}\n".encode() + b"S7654321,Zo\xeb,Smith\n")
    with pytest.raises(RecordLoadError, match="not valid UTF-8") as caught:
        load_records(path)
    assert caught.value.line == 3


RECORD_JSON = (
    '{"student_id": "S1234567", "given_name": "Zoë", "family_name": "Lê", '
    '"birth_date": "2001-02-03", "email": "zoe.le@uni.example", "enrolment_status": "enrolled", '
    '"programme": "LLB Law", "region": "eu-west", "memberships": []}'
)


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ('{"records": []}', 1, None, "expected a JSON array"),
        (
            "[\n" + RECORD_JSON + ",\n" + RECORD_JSON.replace('"S1234567"', "S") + "\n]",
            3,
            None,
            "invalid JSON",
        ),
        ("[\n" + RECORD_JSON + ",\n\n  42\n]", 4, None, "expected a JSON object"),
        ("[\n" + RECORD_JSON.replace('"region": "eu-west", ', "") + "\n]", 2, "region", "missing"),
        (
            "[\n" + RECORD_JSON.replace('"2001-02-03"', "20010203") + "\n]",
            2,
            "birth_date",
            "expected a string",
        ),
        (
            "[\n" + RECORD_JSON.replace('"memberships": []', '"memberships": "Chess Club"') + "]",
            2,
            "memberships",
            "list of strings",
        ),
        (
            "[\n" + RECORD_JSON.replace('"memberships": []', '"memberships": ["A;B"]') + "]",
            2,
            "memberships",
            "must not contain",
        ),
        ("[\n" + RECORD_JSON.replace(', "memberships": []', "") + "]", 2, "memberships", "missing"),
        ("[\n" + RECORD_JSON + "\n" + RECORD_JSON + "\n]", 3, None, "expected ',' or ']'"),
        ("[\n" + RECORD_JSON + "\n]\n[]", 4, None, "unexpected content after the array"),
        ("[\n" + RECORD_JSON + ",\n]", 3, None, "invalid JSON"),
    ],
)
def test_json_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, reason: str
) -> None:
    path = json_file(tmp_path, text)
    with pytest.raises(RecordLoadError) as caught:
        load_records(path)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert reason in caught.value.detail


def test_an_unknown_suffix_asks_for_the_format(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    path.write_bytes(b"")
    with pytest.raises(RecordLoadError, match=r"use \.csv or \.json"):
        load_records(path)


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(RecordLoadError, match="cannot read the file") as caught:
        load_records(tmp_path / "absent.csv")
    assert caught.value.line is None
