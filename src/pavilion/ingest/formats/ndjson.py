"""The NDJSON reader: one JSON object per line, decoded by polars against the declared schema.

polars would silently turn a number into a string, so lines are first probed with regular
expressions for values of the wrong JSON type and for undeclared keys; only the flagged lines
take the slow, exact path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import polars as pl

from pavilion.ingest.errors import MAX_REPORTED_ERRORS, Issue, MalformedUpload, issue
from pavilion.ingest.formats.core import LINE, ROW, Format, RawBatch, numbered
from pavilion.ingest.formats.text import lines
from pavilion.ingest.schema import FieldType, RecordSchema
from pavilion.parsing import loads_json

#: The first character of a JSON value of each declared type ('n' is null, always allowed).
_TOKEN_START: Final = {
    FieldType.STRING: '"',
    FieldType.DATE: '"',
    FieldType.DATETIME: '"',
    FieldType.INTEGER: "-0-9",
    FieldType.NUMBER: "-0-9",
    FieldType.BOOLEAN: "tf",
    FieldType.LIST: r"\[",
}
_JSON_TYPE_NAME: Final = {
    '"': "a string",
    "[": "an array",
    "{": "an object",
    "t": "a boolean",
    "f": "a boolean",
}
_KEY: Final = r'"([^"\\]*)"\s*:'


def _key_regex(name: str) -> str:
    return '"' + name.replace(".", "[.]") + r'"\s*:\s*'


def _json_dtype(schema: RecordSchema) -> pl.Struct:
    return pl.Struct(
        [
            pl.Field(f.name, pl.List(pl.String) if f.type is FieldType.LIST else pl.String)
            for f in schema.fields
        ]
    )


def read_ndjson(path: Path, schema: RecordSchema, *, row_of_line: bool = True) -> RawBatch:
    """One JSON object per line; blank lines are skipped, rows count the records."""
    text = lines(path)  # polars drops a UTF-8 byte order mark
    records = text.filter(pl.col("text").str.contains(r"\S"))
    if records.height == 0:
        raise MalformedUpload("the upload holds no records", field="body")
    records = numbered(records)
    # One regular expression over every line finds the few that need the two probes.
    try:
        candidates = records.filter(pl.col("text").str.contains(_candidate_pattern(schema)))
    except pl.exceptions.PolarsError:  # pragma: no cover - a pattern too large to compile
        candidates = records
    probes = candidates.select(
        suspect=pl.col("text").str.contains(_wrong_type_pattern(schema)),
        extra=pl.col("text").str.count_matches(_KEY)
        != pl.col("text").str.count_matches(_declared_key_pattern(schema)),
    )
    type_errors, flagged = _json_type_errors(
        candidates.filter(probes["suspect"]), schema, row_of_line=row_of_line
    )
    dtype = _json_dtype(schema)
    undeclared = _undeclared_keys(candidates.filter(probes["extra"]), schema)
    frame: pl.DataFrame | None = None
    if not flagged:  # the fast path; it skips blank lines as records does
        try:
            frame = pl.read_ndjson(path, schema=dict(dtype.to_schema()))
        except pl.exceptions.PolarsError:
            frame = None
    if frame is None:
        clean = records.filter(~pl.col(ROW).is_in(sorted(flagged)))
        try:
            frame = clean["text"].str.json_decode(dtype).struct.unnest()
        except pl.exceptions.PolarsError as exc:
            raise _json_syntax_errors(records, row_of_line=row_of_line) from exc
        frame = frame.with_columns(clean[ROW])
        if flagged:
            bad = records.filter(pl.col(ROW).is_in(sorted(flagged)))
            frame = pl.concat([frame, _decode_flagged(bad, flagged, dtype)]).sort(ROW)
    else:
        frame = frame.with_columns(records[ROW])
    if undeclared:
        # Not processed, only classified (compliance) and kept with quarantined rows: as text.
        frame = frame.with_columns(
            records.select(
                pl.col("text").str.json_path_match(_json_path(key)).alias(key) for key in undeclared
            )
        )
    return RawBatch(
        frame.select(ROW, *(c for c in frame.columns if c != ROW)), Format.NDJSON, type_errors
    )


def _decode_flagged(
    bad: pl.DataFrame, flagged: dict[int, set[str]], dtype: pl.Struct
) -> pl.DataFrame:
    """Rows with a wrongly typed value, decoded one by one; the wrong values become null."""
    rows: list[dict[str, Any]] = []
    for row, text in bad.select(ROW, "text").iter_rows():
        value = loads_json(text)
        record: dict[str, Any] = {ROW: row}
        for column in dtype.fields:
            item = value.get(column.name) if isinstance(value, dict) else None
            if column.name in flagged[row] or item is None:
                record[column.name] = None
            elif isinstance(column.dtype, pl.List):
                record[column.name] = [i if isinstance(i, str) else json.dumps(i) for i in item]
            else:
                record[column.name] = item if isinstance(item, str) else json.dumps(item)
        rows.append(record)
    return pl.DataFrame(rows, schema={**dict(dtype.to_schema()), ROW: pl.Int64}).select(
        *(c.name for c in dtype.fields), ROW
    )


def _declared_key_pattern(schema: RecordSchema) -> str:
    declared = "|".join(name.replace(".", "[.]") for name in schema.by_name)
    return f'"(?:{declared})"\\s*:'


def _undeclared_key_pattern(schema: RecordSchema) -> str:
    """Matches ``"key":`` for any key (without quote or backslash) the schema does not declare.

    Built from a trie of the declared names: at each node the key may end early (unless a
    name ends there), go on with a child's character, or with any other character. A line
    where this finds nothing has, at every position, the same ``_KEY`` and declared-key
    matches (declared names hold neither quote nor backslash), so its two key counts agree.
    """
    trie: dict[str, Any] = {}
    for name in schema.by_name:
        node = trie
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}

    def rest(node: dict[str, Any]) -> str:
        chars = sorted(k for k in node if k)
        options = [] if "" in node else ['"']
        options += [re.escape(c) + rest(node[c]) for c in chars]
        others = "".join(re.escape(c) for c in chars)
        options.append(f'[^"\\\\{others}][^"\\\\]*"')
        return "(?:" + "|".join(options) + ")"

    return '"' + rest(trie) + r"\s*:"


def _candidate_pattern(schema: RecordSchema) -> str:
    """Lines that may have a wrongly typed value or an undeclared key: a superset of both."""
    return _undeclared_key_pattern(schema) + "|" + _wrong_type_pattern(schema)


def _undeclared_keys(extra: pl.DataFrame, schema: RecordSchema) -> list[str]:
    """Keys the schema does not declare, read from the lines with more keys than declared."""
    if extra.height == 0:
        return []
    keys = (
        extra.select(pl.col("text").str.extract_all(_KEY).explode().drop_nulls().unique())
        .to_series()
        .str.extract(_KEY, 1)
        .to_list()
    )
    return sorted(k for k in keys if k is not None and k not in schema.by_name)


def _json_path(key: str) -> str:
    return "$['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _where(row: int, line: int, *, row_of_line: bool) -> str:
    return f"row {row} (line {line})" if row_of_line else f"row {row}"


def _wrong_type_pattern(schema: RecordSchema) -> str:
    """Matches a line where some declared field's value starts like another JSON type."""
    return "|".join(
        f"(?:{_key_regex(spec.name)}[^{_TOKEN_START[spec.type]}n\\s])" for spec in schema.fields
    )


def _json_type_errors(
    suspects: pl.DataFrame, schema: RecordSchema, *, row_of_line: bool
) -> tuple[list[Issue], dict[int, set[str]]]:
    """Values of the wrong JSON type in the suspect lines (polars would silently turn a
    number into a string)."""
    if suspects.height == 0:
        return [], {}
    errors: list[Issue] = []
    flagged: dict[int, set[str]] = {}
    for spec in schema.fields:
        found = suspects.select(
            pl.col(ROW),
            pl.col(LINE),
            token=pl.col("text").str.extract(_key_regex(spec.name) + r"(\S)", 1),
        ).filter(
            pl.col("token").is_not_null()
            & ~pl.col("token").str.contains(f"^[{_TOKEN_START[spec.type]}n]$")
        )
        for row, line, token in found.iter_rows():
            flagged.setdefault(row, set()).add(spec.name)
            got = _JSON_TYPE_NAME.get(token, "a number")
            errors.append(
                issue(
                    f"{_where(row, line, row_of_line=row_of_line)}: expected "
                    f"{_expected(spec.type)}, got {got}",
                    field=spec.name,
                    row=row,
                    code="type",
                )
            )
    return sorted(errors, key=lambda e: (e["row"], e["field"])), flagged


def _expected(kind: FieldType) -> str:
    if kind is FieldType.LIST:
        return "an array of strings"
    if kind in (FieldType.INTEGER, FieldType.NUMBER):
        return "a number"
    if kind is FieldType.BOOLEAN:
        return "a boolean"
    return "a string"


def _json_syntax_errors(records: pl.DataFrame, *, row_of_line: bool) -> MalformedUpload:
    problems: list[Issue] = []
    for row, line, text in records.select(ROW, LINE, "text").iter_rows():
        try:
            value = loads_json(text)
        except ValueError as exc:
            message = f"not valid JSON: {exc.msg} at column {exc.colno}"  # type: ignore[attr-defined]
        else:
            if isinstance(value, dict):
                continue
            message = f"expected a JSON object, got {type(value).__name__}"
        entry = issue(
            f"{_where(row, line, row_of_line=row_of_line)}: {message}", row=row, code="syntax"
        )
        if row_of_line:
            entry["line"] = line
        problems.append(entry)
        if len(problems) >= MAX_REPORTED_ERRORS:
            break
    first = problems[0]["message"] if problems else "the records are not JSON objects"
    return MalformedUpload(
        f"the upload is not valid {'NDJSON' if row_of_line else 'JSON'}: {first}",
        field="body",
        errors=problems,
    )
