"""Compliance data validation: undeclared data categories refuse a push, naming the fields."""

from __future__ import annotations

import polars as pl
import pytest

from pavilion.ingest.compliance import check_compliance, classify_name, classify_values, snake
from pavilion.ingest.errors import UndeclaredDataCategory
from pavilion.ingest.formats import ROW, Format, RawBatch
from pavilion.ingest.schema import DataCategory, RecordSchema

SCHEMA = RecordSchema.model_validate(
    {
        "name": "c",
        "fields": [
            {"name": "student_id", "categories": ["pii"]},
            {"name": "notes"},
            {"name": "diagnosis", "categories": ["phi", "special"]},
        ],
    }
)


def _batch(**columns: list[str | None]) -> RawBatch:
    length = len(next(iter(columns.values())))
    return RawBatch(pl.DataFrame({ROW: list(range(1, length + 1)), **columns}), Format.CSV)


def test_names_are_classified() -> None:
    assert snake("nationalInsuranceNumber") == "national_insurance_number"
    assert classify_name("SSN")[0][0] is DataCategory.NATIONAL_ID
    assert classify_name("passport_no")[0][0] is DataCategory.NATIONAL_ID
    assert classify_name("primaryDiagnosis")[0][0] is DataCategory.PHI
    assert classify_name("ICD10_code")[0][0] is DataCategory.PHI
    assert classify_name("religion")[0][0] is DataCategory.SPECIAL
    assert classify_name("date_of_birth")[0][0] is DataCategory.PII
    assert classify_name("programme") == []
    assert classify_name("assignment") == []  # "sin" only as a whole word


def test_values_are_classified() -> None:
    assert classify_values(["123-45-6789", "987-65-4321"])[0][0] is DataCategory.NATIONAL_ID
    assert classify_values(["QQ 12 34 56 C", "AB123456D"])[0][0] is DataCategory.NATIONAL_ID
    assert classify_values(["J45.9", "E11.65"])[0][0] is DataCategory.PHI
    assert classify_values(["a@b.example", "c@d.example", "x"])[0][0] is DataCategory.PII
    assert classify_values(["S1234567", "A01", "hello"]) == []
    assert classify_values([]) == []


def test_an_undeclared_national_id_and_diagnosis_are_refused_naming_the_fields() -> None:
    batch = _batch(
        student_id=["S1", "S2"],
        notes=["123-45-6789", "987-65-4321"],
        ssn=["x", "y"],
        condition_code=["J45.9", None],
    )
    with pytest.raises(UndeclaredDataCategory) as caught:
        check_compliance(batch, SCHEMA)
    error = caught.value
    assert error.fields == ["condition_code", "notes", "ssn"]
    assert error.extra["fields"] == ["condition_code", "notes", "ssn"]
    found = {(e["field"], e["category"]) for e in error.findings}
    assert found == {
        ("notes", "national_id"),
        ("ssn", "national_id"),
        ("condition_code", "phi"),
    }
    messages = " ".join(e["message"] for e in error.findings)
    assert "notes declares no national_id data" in messages
    assert "ssn is not declared and carries national_id data" in messages
    assert "123-45-6789" not in messages
    assert "J45.9" not in messages
    assert error.extra["errors"] == error.findings


def test_declared_categories_pass() -> None:
    batch = _batch(student_id=["S1"], notes=["fine"], diagnosis=["J45.9"])
    check_compliance(batch, SCHEMA)
    typed = RawBatch(pl.DataFrame({ROW: [1], "student_id": ["S1"], "notes": [3]}), Format.PARQUET)
    check_compliance(typed, SCHEMA)
