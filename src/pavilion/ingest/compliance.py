"""Compliance data validation: a push may carry only the data categories the DP declared.

Each column of an upload is classified by its name and by the shape of a sample of its
values (a national ID number, a diagnosis code, an e-mail address). A category found in a
column whose declaration does not list it (or in a column that is not declared at all) refuses
the whole push before anything is stored, and names the fields; the values are never echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import polars as pl

from pavilion.ingest.errors import Issue, UndeclaredDataCategory
from pavilion.ingest.formats import ROW, RawBatch
from pavilion.ingest.schema import DataCategory, RecordSchema

SAMPLE_SIZE: Final = 1000
#: Share of sampled values that must look like a category before it is assumed.
VALUE_THRESHOLD: Final = 0.5


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?:^|_)(?:" + "|".join(alternatives) + r")(?:_|$)")


_NAME_RULES: Final[tuple[tuple[DataCategory, re.Pattern[str], str], ...]] = (
    (
        DataCategory.NATIONAL_ID,
        _words(
            "ssn", "social_security(?:_number|_no)?",
            "national_(?:id|identity|insurance)(?:_number|_no)?", "nino", "nin",
            "passport(?:_number|_no)?", "tax_id", "tin", "itin", "personnummer", "bsn", "aadhaar",
            "nric", "sin", "id_card(?:_number)?", "driver_?licen[cs]e(?:_number)?",
        ),
        "the field name suggests a national identification number",
    ),
    (
        DataCategory.PHI,
        _words(
            "diagnos[ie]s", "icd(?:_?10|_?9)?(?:_code)?", "medical(?:_\\w+)?", "medications?",
            "prescriptions?", "treatments?", "conditions?", "health(?:_\\w+)?",
            "disabilit(?:y|ies)",
            "allerg(?:y|ies)", "blood_type", "patient(?:_\\w+)?", "mrn", "clinical(?:_\\w+)?",
            "symptoms?",
        ),
        "the field name suggests health data",
    ),
    (
        DataCategory.SPECIAL,
        _words(
            "religio(?:n|us)", "ethnic(?:ity)?", "race", "sexual_orientation", "sex_life",
            "political(?:_\\w+)?", "trade_union(?:_\\w+)?", "union_membership", "biometrics?",
            "genetic(?:_\\w+)?", "beliefs?", "fingerprint",
        ),
        "the field name suggests special-category data (GDPR Art. 9)",
    ),
    (
        DataCategory.PII,
        _words(
            "e_?mail(?:_address)?", "phone(?:_number)?", "mobile", "telephone", "birth_?date",
            "date_of_birth", "dob", "address", "post_?code", "zip(?:_code)?", "given_name",
            "first_name", "last_name", "family_name", "surname", "full_name", "ip_address",
            "student_id", "employee_id", "member_id",
        ),
        "the field name suggests personal data",
    ),
)  # fmt: skip

_VALUE_RULES: Final[tuple[tuple[DataCategory, re.Pattern[str], str], ...]] = (
    (
        DataCategory.NATIONAL_ID,
        re.compile(r"^\d{3}-\d{2}-\d{4}$"),
        "the values look like US social security numbers",
    ),
    (
        DataCategory.NATIONAL_ID,
        re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]$"),
        "the values look like UK national insurance numbers",
    ),
    (
        DataCategory.PHI,
        re.compile(r"^[A-TV-Z]\d[0-9AB]\.[0-9A-TV-Z]{1,4}$"),
        "the values look like ICD-10 diagnosis codes",
    ),
    (
        DataCategory.PII,
        re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        "the values look like e-mail addresses",
    ),
)


@dataclass(frozen=True)
class Finding:
    field: str
    category: DataCategory
    reason: str
    declared: bool

    def as_issue(self) -> Issue:
        where = "declares" if self.declared else "is not declared and carries"
        return Issue(
            field=self.field,
            category=self.category.value,
            code="undeclared-category",
            message=f"{self.field} {where} no {self.category.value} data, but {self.reason}"
            if self.declared
            else f"{self.field} {where} {self.category.value} data: {self.reason}",
        )


def snake(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def classify_name(name: str) -> list[tuple[DataCategory, str]]:
    words = snake(name)
    return [(category, reason) for category, rule, reason in _NAME_RULES if rule.search(words)]


def classify_values(values: list[str]) -> list[tuple[DataCategory, str]]:
    if not values:
        return []
    found: list[tuple[DataCategory, str]] = []
    for category, rule, reason in _VALUE_RULES:
        hits = sum(1 for v in values if rule.match(v.strip()))
        if hits / len(values) >= VALUE_THRESHOLD and all(c != category for c, _ in found):
            found.append((category, reason))
    return found


def _sample(frame: pl.DataFrame, column: str) -> list[str]:
    series = frame[column]
    if series.dtype != pl.String:
        return []
    return [v for v in series.drop_nulls().head(SAMPLE_SIZE).to_list() if isinstance(v, str)]


def findings(batch: RawBatch, schema: RecordSchema) -> list[Finding]:
    declared = schema.by_name
    out: list[Finding] = []
    for column in batch.frame.columns:
        if column == ROW:
            continue
        spec = declared.get(column)
        allowed = set(spec.categories) if spec is not None else {DataCategory.PUBLIC}
        seen: set[DataCategory] = set()
        for category, reason in [
            *classify_name(column),
            *classify_values(_sample(batch.frame, column)),
        ]:
            if category in allowed or category in seen:
                continue
            seen.add(category)
            out.append(Finding(column, category, reason, spec is not None))
    return out


def check_compliance(batch: RawBatch, schema: RecordSchema) -> None:
    """Refuse a push that carries a data category the DP did not declare, naming the fields."""
    found = findings(batch, schema)
    if not found:
        return
    issues = [f.as_issue() for f in found]
    fields = sorted({f.field for f in found})
    raise UndeclaredDataCategory(
        f"the push carries data categories the provider did not declare in field(s) "
        f"{', '.join(fields)}; declare them in the schema or remove the data",
        findings=issues,
        extra={"fields": fields},
    )
