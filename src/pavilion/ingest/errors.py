"""Errors of the data pipeline; each is a subclass of the project's one exception tree.

InvalidRequest
├── MalformedUpload           the bytes cannot be read as the declared format      422
└── BatchRejected             rows or the batch break the DP's schema               422
    └── QualityBelowThreshold the batch's quality score is under the DP's minimum  422
PolicyDenied
└── UndeclaredDataCategory    a field carries a data category the DP did not declare 403
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

from pavilion.errors import InvalidRequest, PavilionError, PolicyDenied

#: At most this many errors are listed in a report; the counts always cover every error.
MAX_REPORTED_ERRORS = 1000


class Issue(TypedDict):
    """One entry of an error report: what is wrong, and in which field, row or line (never
    the value). Entries an exception made from a single field carry no ``code``."""

    message: str
    code: NotRequired[str]
    field: NotRequired[str]
    row: NotRequired[int]
    line: NotRequired[int]
    category: NotRequired[str]


class MalformedUpload(InvalidRequest):
    code = "malformed-upload"
    title = "Malformed upload"


class BatchRejected(InvalidRequest):
    code = "batch-rejected"
    title = "Roster batch rejected"


class QualityBelowThreshold(BatchRejected):
    code = "quality-below-threshold"
    title = "Roster batch quality below the provider's threshold"


class UndeclaredDataCategory(PolicyDenied):
    code = "undeclared-data-category"
    title = "Undeclared data category"

    def __init__(
        self,
        detail: str,
        *,
        findings: list[Issue],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, extra={**(extra or {}), "errors": findings})
        self.findings = findings
        self.fields = sorted({str(f["field"]) for f in findings})


def issue(
    message: str, *, field: str | None = None, row: int | None = None, code: str = "invalid"
) -> Issue:
    """One entry of an error report: what is wrong, in which field and at which row."""
    entry = Issue(code=code, message=message)
    if field is not None:
        entry["field"] = field
    if row is not None:
        entry["row"] = row
    return entry


def reported_issues(exc: PavilionError) -> list[Issue]:
    """The error report entries an exception carries (its ``errors``), copied."""
    errors = getattr(exc, "errors", None) or exc.extra.get("errors") or []
    return [cast(Issue, dict(e)) for e in errors]
