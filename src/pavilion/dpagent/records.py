"""Load a data provider's roster and index it by every lookup identifier.

A broken export must stop the agent at start-up with a message an operator can act on, so
every load error names the file, the line and the field. Messages never quote the offending
value: it may be personal data, and load errors end up in terminals and logs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, Literal, get_args

from pavilion.errors import PavilionError
from pavilion.synth.roster import (
    EMAIL_PATTERN,
    ENROLMENT_STATUSES,
    ISO_DATE_PATTERN,
    MEMBERSHIP_SEPARATOR,
    REGION_PATTERN,
    ROSTER_FIELDS,
    STUDENT_ID_PATTERN,
    StudentRecord,
)

#: The identifiers a lookup may name. A new kind needs an entry here and in ``_NORMALISERS``.
IdentifierKind = Literal["student_id", "email"]
IDENTIFIER_KINDS: Final[tuple[IdentifierKind, ...]] = get_args(IdentifierKind)
RecordFormat = Literal["csv", "json"]

_STUDENT_ID: Final = re.compile(STUDENT_ID_PATTERN)
_EMAIL: Final = re.compile(EMAIL_PATTERN)
_REGION: Final = re.compile(REGION_PATTERN)
_ISO_DATE: Final = re.compile(ISO_DATE_PATTERN)
_JSON_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_SUFFIX_FORMATS: Final[dict[str, RecordFormat]] = {".csv": "csv", ".json": "json"}


class RecordLoadError(PavilionError):
    """A records file the agent cannot serve from."""

    code = "record-load"
    title = "Cannot load records"

    def __init__(
        self, path: Path, reason: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = str(path) if line is None else f"{path}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(
            f"{where}: {reason}", extra={"path": str(path), "line": line, "field": field}
        )
        self.path = path
        self.line = line
        self.field = field


class DuplicateIdentifierError(ValueError):
    """Two records share an identifier, so a lookup by it would be ambiguous."""

    def __init__(self, kind: IdentifierKind) -> None:
        super().__init__(f"another record already has this {kind}")
        self.kind = kind


def normalise_email(email: str) -> str:
    """Match e-mail addresses however the user typed their case or surrounding spaces."""
    return email.strip().lower()


_NORMALISERS: Final[dict[IdentifierKind, Callable[[str], str]]] = {
    "student_id": str.strip,
    "email": normalise_email,
}


class RecordIndex:
    """Records keyed by each identifier kind, for O(1) lookups.

    ``as_of`` is when the agent last vouched for the data (load time); answers carry it so the
    connector can judge freshness.
    """

    def __init__(self, records: Iterable[StudentRecord] = (), *, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        self._as_of = as_of
        self._by_kind: dict[IdentifierKind, dict[str, StudentRecord]] = {
            kind: {} for kind in IDENTIFIER_KINDS
        }
        for record in records:
            self.add(record)

    @property
    def as_of(self) -> datetime:
        return self._as_of

    def __len__(self) -> int:
        return len(self._by_kind["student_id"])

    def __iter__(self) -> Iterator[StudentRecord]:
        """Every record once (the tag set push encodes them all; see dpagent/tag_set_push.py)."""
        return iter(list(self._by_kind["student_id"].values()))

    def add(self, record: StudentRecord) -> None:
        """Index ``record``; refuses identifiers that are already taken."""
        keys = {kind: _NORMALISERS[kind](getattr(record, kind)) for kind in IDENTIFIER_KINDS}
        for kind, key in keys.items():
            if key in self._by_kind[kind]:
                raise DuplicateIdentifierError(kind)
        for kind, key in keys.items():
            self._by_kind[kind][key] = record

    def find(self, identifiers: Mapping[IdentifierKind, str]) -> StudentRecord | None:
        """The one record that every given identifier points at, else ``None``.

        Identifiers that point at different people answer ``None`` rather than picking one: a
        lookup must never vouch for a mix of two subjects.
        """
        if not identifiers:
            raise ValueError("at least one identifier is required")
        match: StudentRecord | None = None
        for kind, value in identifiers.items():
            record = self._by_kind[kind].get(_NORMALISERS[kind](value))
            if record is None or (match is not None and record is not match):
                return None
            match = record
        return match


def load_records(
    path: Path | str, *, fmt: RecordFormat | None = None, as_of: datetime | None = None
) -> RecordIndex:
    """Load a CSV (header row, ``;``-joined memberships) or JSON (array of objects) roster.

    The format defaults to the file suffix; ``as_of`` defaults to now (UTC, whole seconds).
    """
    source = Path(path)
    if fmt is None:
        if source.suffix.lower() not in _SUFFIX_FORMATS:
            raise RecordLoadError(
                source, "cannot tell the format from the suffix: use .csv or .json"
            )
        fmt = _SUFFIX_FORMATS[source.suffix.lower()]
    text = _read_text(source)
    rows = _csv_rows(source, text) if fmt == "csv" else _json_rows(source, text)
    index = RecordIndex(as_of=as_of or datetime.now(UTC).replace(microsecond=0))
    for line, raw in rows:
        record = _parse_record(source, line, raw)
        try:
            index.add(record)
        except DuplicateIdentifierError as exc:
            raise RecordLoadError(source, str(exc), line=line, field=exc.kind) from None
    return index


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordLoadError(path, f"cannot read the file ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RecordLoadError(path, "not valid UTF-8", line=line) from None


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise RecordLoadError(path, "no header row", line=1)
        for name in ROSTER_FIELDS:
            if header.count(name) != 1:
                problem = "missing column" if name not in header else "repeated column"
                raise RecordLoadError(path, f"{problem} in the header row", line=1, field=name)
        memberships_column = header.index("memberships")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                field = header[len(row)] if len(row) < len(header) else None
                reason = f"expected {len(header)} values, found {len(row)}"
                raise RecordLoadError(path, reason, line=reader.line_num, field=field)
            raw: dict[str, object] = dict(zip(header, row, strict=True))
            raw["memberships"] = row[memberships_column].split(MEMBERSHIP_SEPARATOR)
            yield reader.line_num, raw
    except csv.Error as exc:
        raise RecordLoadError(path, f"malformed CSV ({exc})", line=reader.line_num) from None


def _json_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Decode a top-level array element by element, to know each record's line."""
    decoder = json.JSONDecoder()
    line, done = 1, 0

    def skip_whitespace(pos: int) -> int:
        match = _JSON_WHITESPACE.match(text, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def line_at(pos: int) -> int:
        nonlocal line, done
        line += text.count("\n", done, pos)
        done = pos
        return line

    pos = skip_whitespace(0)
    if not text.startswith("[", pos):
        raise RecordLoadError(path, "expected a JSON array of records", line=line_at(pos))
    pos = skip_whitespace(pos + 1)
    closed = text.startswith("]", pos)
    while not closed:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise RecordLoadError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        if not isinstance(value, dict):
            raise RecordLoadError(path, "expected a JSON object", line=line_at(pos))
        yield line_at(pos), value
        pos = skip_whitespace(end)
        closed = text.startswith("]", pos)
        if not closed:
            if not text.startswith(",", pos):
                raise RecordLoadError(path, "expected ',' or ']' after a record", line=line_at(pos))
            pos = skip_whitespace(pos + 1)
    pos = skip_whitespace(pos + 1)
    if pos < len(text):
        raise RecordLoadError(path, "unexpected content after the array", line=line_at(pos))


def _parse_record(path: Path, line: int, raw: Mapping[str, object]) -> StudentRecord:
    def fail(field: str, reason: str) -> RecordLoadError:
        return RecordLoadError(path, reason, line=line, field=field)

    def text(field: str, pattern: re.Pattern[str] | None = None, expected: str = "") -> str:
        if field not in raw:
            raise fail(field, "missing")
        value = raw[field]
        if not isinstance(value, str):
            raise fail(field, "expected a string")
        value = value.strip()
        if not value:
            raise fail(field, "must not be empty")
        if pattern is not None and not pattern.fullmatch(value):
            raise fail(field, f"expected {expected}")
        return value

    birth_text = text("birth_date", _ISO_DATE, "an ISO date (YYYY-MM-DD)")
    try:
        birth_date = date.fromisoformat(birth_text)
    except ValueError:
        raise fail("birth_date", "not a calendar date") from None
    status = text("enrolment_status")
    if status not in ENROLMENT_STATUSES:
        raise fail("enrolment_status", f"expected one of {', '.join(ENROLMENT_STATUSES)}")
    return StudentRecord(
        student_id=text("student_id", _STUDENT_ID, "'S' followed by 7 digits"),
        given_name=text("given_name"),
        family_name=text("family_name"),
        birth_date=birth_date,
        email=text("email", _EMAIL, "an e-mail address"),
        enrolment_status=status,
        programme=text("programme"),
        region=text("region", _REGION, "a region such as 'eu-west'"),
        memberships=_memberships(raw, fail),
    )


def _memberships(
    raw: Mapping[str, object], fail: Callable[[str, str], RecordLoadError]
) -> tuple[str, ...]:
    if "memberships" not in raw:
        raise fail("memberships", "missing")
    value = raw["memberships"]
    if not isinstance(value, list) or not all(isinstance(club, str) for club in value):
        raise fail("memberships", "expected a list of strings")
    clubs = [club.strip() for club in value if club.strip()]
    if any(MEMBERSHIP_SEPARATOR in club for club in clubs):
        raise fail("memberships", f"a club name must not contain {MEMBERSHIP_SEPARATOR!r}")
    if len(set(clubs)) != len(clubs):
        raise fail("memberships", "repeated club")
    return tuple(clubs)
