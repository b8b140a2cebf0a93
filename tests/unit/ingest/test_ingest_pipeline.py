"""A batch end to end in the pure core: read, check, score, map, decide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest_support import NOW, body_of, csv_bytes, profile, roster
from pavilion.ingest.errors import MalformedUpload, UndeclaredDataCategory
from pavilion.ingest.formats import Format, UploadType
from pavilion.ingest.pipeline import (
    EMPTY_SHA256,
    QUARANTINE_CAP,
    lines_digest,
    process_file,
    records_digest,
)
from pavilion.ingest.schema import validate_profile
from pavilion.synth.roster import ROSTER_FIELDS

RECORDS = roster(30)


def _run(tmp: Path, data: bytes, fmt: str = "csv", document: dict[str, Any] | None = None) -> Any:
    path = tmp / f"batch.{fmt}"
    path.write_bytes(data)
    return process_file(
        path, UploadType(Format(fmt)), validate_profile(document or profile()), now=NOW, as_of=NOW
    )


def _csv(rows: list[list[str]]) -> bytes:
    lines = [",".join(ROSTER_FIELDS), *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_every_format_yields_the_same_canonical_roster(tmp_path: Path) -> None:
    digests = set()
    for fmt in ("csv", "ndjson", "json", "xml", "parquet"):
        result = _run(tmp_path, body_of(fmt, RECORDS, tmp_path), fmt)
        assert result.status == "applied", (fmt, result.detail)
        assert result.rows_valid == 30
        assert result.rows_invalid == 0
        digests.add(result.output_sha256)
    assert len(digests) == 1
    assert result.records.height == 30
    keys = result.records["key"].to_list()
    assert keys == sorted(keys)
    assert records_digest(result.records.head(7)) == lines_digest(
        result.records["json"].head(7).to_list()
    )
    assert lines_digest(result.records["json"].to_list()) == result.output_sha256
    first = json.loads(result.records["json"][0])
    record = next(r for r in RECORDS if r.student_id == first["subject_id"])
    assert first["given_name"] == record.given_name.casefold()
    assert first["enrolment_status"] == record.enrolment_status
    assert first["birth_date"] == record.birth_date.isoformat()
    assert result.quality["passed"]
    assert set(result.column_metrics) == set(ROSTER_FIELDS)
    assert result.summary()["rows"]["applied"] == 30


def test_bad_rows_refuse_the_batch_and_are_quarantined_with_reasons(tmp_path: Path) -> None:
    good = RECORDS[0].as_csv_row()
    rows = [
        good,
        [*good[:3], "2099-01-01", *good[4:]],  # duplicate key, birth date in the future
        ["S7654321", "", "X", "1990-13-01", "bad", "alumnus", "P", "eu-west", ""],
        ["s7654322", "Ana", "Lee", "1990-01-01", "a@b.example", "enrolled", "", "", ""],
    ]
    result = _run(tmp_path, _csv(rows))
    assert result.status == "rejected"
    assert result.reason == "invalid-rows"
    assert result.detail == "4 of 4 rows are invalid"
    assert result.output_sha256 == EMPTY_SHA256
    assert result.records.height == 0
    report = {(e["row"], e["field"], e["code"]) for e in result.report_errors()}
    assert report == {
        (1, "student_id", "duplicate"),
        (2, "student_id", "duplicate"),
        (2, "birth_date", "future"),
        (3, "given_name", "required"),
        (3, "birth_date", "type"),
        (3, "email", "format"),
        (3, "email", "mapping"),
        (3, "enrolment_status", "enum"),
        (3, "enrolment_status", "mapping"),
        (4, "student_id", "pattern"),
    }
    quarantined = {q.row: q for q in result.quarantine}
    assert sorted(quarantined) == [1, 2, 3, 4]
    assert quarantined[3].values["student_id"] == "S7654321"
    assert {r["field"] for r in quarantined[3].reasons} == {
        "given_name",
        "birth_date",
        "email",
        "enrolment_status",
    }
    assert result.quality["fields"]["email"]["validity"] < 100


def test_quarantine_mode_applies_the_valid_rows(tmp_path: Path) -> None:
    good = [r.as_csv_row() for r in RECORDS[:5]]
    bad = ["S0000001", "Ana", "Lee", "1990-01-01", "not-an-email", "enrolled", "", "", ""]
    document = profile(on_invalid_rows="quarantine", quality={"min_score": 50})
    result = _run(tmp_path, _csv([*good, bad]), document=document)
    assert result.status == "applied"
    assert result.detail == "5 records applied, 1 quarantined"
    assert result.rows_valid == 5
    assert len(result.quarantine) == 1
    assert result.quarantine[0].row == 6
    assert "S0000001" not in result.records["key"].to_list()


def test_schema_level_problems(tmp_path: Path) -> None:
    missing = b"student_id,given_name\nS1234567,Ana\n"
    result = _run(tmp_path, missing)
    assert result.status == "rejected"
    assert result.reason == "schema"
    issues = [e for e in result.report_errors() if "row" not in e]
    assert {e["field"] for e in issues} == {"family_name", "birth_date", "enrolment_status"}
    assert issues[0]["code"] == "missing-field"
    extra = _csv([RECORDS[0].as_csv_row()]).replace(b"memberships\n", b"memberships,nickname\n")
    extra = extra.replace(b"\n", b",Bo\n").replace(
        b"memberships,nickname,Bo\n", b"memberships,nickname\n"
    )
    undeclared = _run(tmp_path, extra)
    assert undeclared.reason == "schema"
    assert undeclared.batch_issues[0]["field"] == "nickname"
    schema = dict(profile()["schema"], extra_fields="ignore")
    assert _run(tmp_path, extra, document=profile(schema=schema)).status == "applied"


def test_other_decisions(tmp_path: Path) -> None:
    low = _run(tmp_path, csv_bytes(RECORDS), document=profile(quality={"min_score": 100}))
    assert low.status == "rejected"
    assert low.reason == "quality"
    duplicates_after_normalising = _csv(
        [RECORDS[0].as_csv_row(), [RECORDS[0].student_id.lower(), *RECORDS[0].as_csv_row()[1:]]]
    )
    schema = dict(profile()["schema"], key=[])
    schema["fields"] = [
        dict(f, pattern=None) if f["name"] == "student_id" else f for f in schema["fields"]
    ]
    document = profile(schema=schema, on_invalid_rows="quarantine")
    result = _run(tmp_path, duplicates_after_normalising, document=document)
    assert result.status == "rejected"
    assert result.reason == "no-valid-rows"
    messages = {e["message"] for e in result.report_errors()}
    assert "subject_id: the same subject appears in more than one row" in messages


def test_too_many_invalid_rows_for_the_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pavilion.ingest.pipeline.QUARANTINE_CAP", 2)
    rows = [
        ["S000000" + str(i), "A", "B", "1990-01-01", "bad", "enrolled", "", "", ""]
        for i in range(3)
    ]
    result = _run(tmp_path, _csv(rows), document=profile(on_invalid_rows="quarantine"))
    assert result.reason == "too-many-invalid-rows"
    assert len(result.quarantine) == 2  # only as many as the cap are kept
    assert QUARANTINE_CAP == 10_000


def test_unreadable_and_non_compliant_uploads_raise(tmp_path: Path) -> None:
    with pytest.raises(MalformedUpload):
        _run(tmp_path, b"")
    data = csv_bytes(RECORDS[:3]).replace(b"memberships\n", b"memberships,ssn\n", 1)
    lines = data.split(b"\n")
    data = b"\n".join([lines[0]] + [line + b",123-45-6789" for line in lines[1:] if line]) + b"\n"
    with pytest.raises(UndeclaredDataCategory) as caught:
        _run(tmp_path, data)
    assert caught.value.fields == ["ssn"]


def test_quarantined_values_keep_typed_columns_readable(tmp_path: Path) -> None:
    import polars as pl

    rows = [r.as_json() for r in RECORDS[:3]]
    rows[1]["email"] = "not-an-email"
    path = tmp_path / "batch.parquet"
    pl.DataFrame(rows).with_columns(pl.col("birth_date").str.to_date()).write_parquet(path)
    result = process_file(
        path, UploadType(Format.PARQUET), validate_profile(profile()), now=NOW, as_of=NOW
    )
    assert result.status == "rejected"
    assert result.quarantine[0].values["birth_date"] == RECORDS[1].birth_date.isoformat()
    assert result.quarantine[0].values["memberships"] == list(RECORDS[1].memberships)
