"""Time rules shared by the credential formats: XML Schema date-time stamps, NumericDate."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pavilion.credentials.report import Check, CheckFailed, CheckName, failed, passed

#: xsd:dateTimeStamp: a date-time WITH a time zone (VC Data Model 2.0 requires one).
_DATE_TIME_STAMP = re.compile(
    r"^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)

#: Clock skew tolerated between issuer, holder and verifier.
DEFAULT_LEEWAY = timedelta(seconds=60)


def iso(moment: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: the form every credential here carries."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_date_time_stamp(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not _DATE_TIME_STAMP.match(value):
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_date_time",
            f"{field} must be an XML Schema dateTimeStamp with a time zone, e.g. "
            "2026-01-01T00:00:00Z",
        )
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError as exc:
        raise CheckFailed(
            CheckName.SCHEMA, "bad_date_time", f"{field} is not a valid date-time: {exc}"
        ) from exc


def numeric_date(claims: dict[str, object], name: str) -> datetime | None:
    """A JWT NumericDate claim (RFC 7519 section 2) as a UTC datetime, if present."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CheckFailed(
            CheckName.SCHEMA, "bad_numeric_date", f"{name} must be a NumericDate (seconds)"
        )
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise CheckFailed(CheckName.SCHEMA, "bad_numeric_date", f"{name} is out of range") from exc


def validity_check(
    not_before: datetime | None,
    not_after: datetime | None,
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
    *,
    what: str = "credential",
) -> Check:
    """Pass when ``now`` is inside [not_before, not_after], give or take the leeway."""
    if not_after is not None and now > not_after + leeway:
        return failed(CheckName.VALIDITY, "expired", f"the {what} expired at {iso(not_after)}")
    if not_before is not None and now < not_before - leeway:
        return failed(
            CheckName.VALIDITY,
            "not_yet_valid",
            f"the {what} is not valid before {iso(not_before)}",
        )
    if not_after is None:
        return passed(CheckName.VALIDITY, f"the {what} has no expiry and is valid now")
    return passed(CheckName.VALIDITY, f"the {what} is valid until {iso(not_after)}")
