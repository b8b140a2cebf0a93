"""The CSV reader: a UTF-8 file with a header row, every column read as text."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from pavilion.ingest.errors import MAX_REPORTED_ERRORS, Issue, MalformedUpload, issue
from pavilion.ingest.formats.core import BOM, Format, RawBatch, first_line, numbered
from pavilion.ingest.formats.text import lines, not_utf8


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        text = first.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, "CSV header") from exc
    header = next(csv.reader([text]), [])
    if not header or not any(h.strip() for h in header):
        raise MalformedUpload("the CSV has no header row", field="body")
    names = [h.strip() for h in header]
    blanks = [i + 1 for i, n in enumerate(names) if not n]
    if blanks:
        raise MalformedUpload(
            f"the CSV header has an empty column name at position {blanks[0]}", field="header"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MalformedUpload(
            f"the CSV header names {', '.join(duplicates)} more than once", field=duplicates[0]
        )
    return names


def _ragged_rows_exact(path: Path, width: int) -> list[Issue]:
    """Python's csv module: slow, exact, handles quoted line breaks. Only runs on suspicion."""
    problems: list[Issue] = []
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row_number, row in enumerate(reader, start=1):
            if len(row) != width:
                problems.append(_ragged(row_number, len(row), width, reader.line_num))
    return problems


def _ragged(row: int, found: int, width: int, line: int) -> Issue:
    message = (
        f"row {row} (line {line}) is blank"
        if found == 0
        else f"row {row} (line {line}) has {found} fields, the header has {width}"
    )
    entry = issue(message, row=row, code="ragged-row")
    entry["line"] = line
    return entry


def _ragged_rows(path: Path, width: int) -> list[Issue]:
    """Rows whose field count differs from the header's (polars fills short rows silently).

    Lines without quotes are counted by their commas; the few with quotes have their quoted
    parts removed first. Anything suspicious (a count that differs, a quoted line break, a
    stray U+001F the line reader splits on) is settled by the exact reader.
    """
    body = lines(path).slice(1)
    flags = body.select(
        commas=pl.col("text").str.count_matches(",", literal=True),
        quoted=pl.col("text").str.contains('"', literal=True),
    )
    if (~flags["quoted"] & (flags["commas"] != width - 1)).any():
        return _ragged_rows_exact(path, width)
    quoted = body.filter(flags["quoted"])
    if quoted.height:
        stats = quoted.select(
            odd=pl.col("text").str.count_matches('"', literal=True) % 2 == 1,
            fields=pl.col("text").str.replace_all(r'"[^"]*"', "").str.count_matches(",") + 1,
        )
        if (stats["odd"] | (stats["fields"] != width)).any():
            return _ragged_rows_exact(path, width)
    return []


def read_csv(path: Path) -> RawBatch:
    """A UTF-8 CSV with a header row; every column read as text (empty means missing)."""
    names = _csv_header(path)
    ragged = _ragged_rows(path, len(names))
    if ragged:
        raise MalformedUpload(
            f"{len(ragged)} CSV row(s) do not have {len(names)} fields; first: "
            f"{ragged[0]['message']}",
            field="body",
            errors=ragged[:MAX_REPORTED_ERRORS],
            extra={"ragged_rows": len(ragged)},
        )
    try:
        frame = pl.read_csv(
            path,
            infer_schema=False,
            new_columns=names,
            encoding="utf8",
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:  # pragma: no cover - the checks above catch it
        raise MalformedUpload(f"the CSV cannot be parsed: {first_line(exc)}", field="body") from exc
    return RawBatch(numbered(frame), Format.CSV)
