"""Readers of roster pushes (CSV, NDJSON, JSON, XML, Parquet) and of lookup answers.

Every reader turns a spooled file into a ``RawBatch``: a polars frame with a 1-based ``__row``
column and one column per source field (String, List(String), or Parquet's own types), plus
the type errors it found on the way (row and field). Problems that make the whole upload
unreadable (empty, wrong encoding, ragged CSV, broken JSON, an XML DTD) raise
``MalformedUpload`` naming where. Fast paths are polars; the exact but slow Python paths run
only to explain a failure.

XML is parsed by lxml with entity resolution, DTD loading and network access off and
``huge_tree`` off; a document with a DTD (where billion-laughs and external entities live) is
refused before parsing.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import defusedxml.ElementTree as safe_et  # type: ignore[import-untyped]
import msgspec
import polars as pl
from defusedxml import DefusedXmlException
from lxml import etree  # type: ignore[import-untyped]

from pavilion.errors import InvalidRequest, ProviderBadResponse
from pavilion.ingest.errors import MAX_REPORTED_ERRORS, MalformedUpload, issue
from pavilion.ingest.schema import FieldType, RecordSchema

ROW: Final = "__row"
_LINE: Final = "__line"
_UNIT_SEPARATOR: Final = "\x1f"  # cannot occur in valid JSON text; rare in CSV
_BOM: Final = b"\xef\xbb\xbf"
_PROLOG_LIMIT: Final = 1 << 20
_CHUNK: Final = 1 << 20


class Format(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    JSON = "json"
    XML = "xml"
    PARQUET = "parquet"


CONTENT_TYPES: Final[dict[str, Format]] = {
    "text/csv": Format.CSV,
    "application/csv": Format.CSV,
    "application/x-ndjson": Format.NDJSON,
    "application/ndjson": Format.NDJSON,
    "application/jsonl": Format.NDJSON,
    "application/x-jsonlines": Format.NDJSON,
    "application/json": Format.JSON,
    "application/xml": Format.XML,
    "text/xml": Format.XML,
    "application/vnd.apache.parquet": Format.PARQUET,
    "application/x-parquet": Format.PARQUET,
}
_EXTENSIONS: Final = {
    ".csv": Format.CSV,
    ".ndjson": Format.NDJSON,
    ".jsonl": Format.NDJSON,
    ".json": Format.JSON,
    ".xml": Format.XML,
    ".parquet": Format.PARQUET,
}


@dataclass(frozen=True)
class UploadType:
    format: Format
    charset: str = "utf-8"


def upload_type(content_type: str | None, filename: str | None = None) -> UploadType:
    """The format (and charset) of an upload from its Content-Type, or its file name."""
    if content_type:
        media, _, params = content_type.partition(";")
        media = media.strip().lower()
        charset = "utf-8"
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"').lower()
        fmt = CONTENT_TYPES.get(media)
        if fmt is None and not (filename and media == "application/octet-stream"):
            raise InvalidRequest(
                f"unsupported content type {media!r}; send one of: "
                + ", ".join(sorted(CONTENT_TYPES)),
                field="content-type",
            )
        if fmt is not None:
            return UploadType(fmt, _check_charset(fmt, charset))
    suffix = Path(filename or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return UploadType(_EXTENSIONS[suffix])
    raise InvalidRequest(
        "cannot tell the upload's format: give a content type or a file ending in "
        + ", ".join(sorted(_EXTENSIONS)),
        field="format",
    )


def _check_charset(fmt: Format, charset: str) -> str:
    if fmt is Format.PARQUET:
        return "utf-8"
    try:
        name = codecs.lookup(charset).name
    except LookupError as exc:
        raise InvalidRequest(f"unknown charset {charset!r}", field="content-type") from exc
    if fmt in (Format.NDJSON, Format.JSON) and name != "utf-8":
        raise InvalidRequest("JSON must be UTF-8 (RFC 8259)", field="content-type")
    return name


@dataclass
class RawBatch:
    """What a reader produced: source columns as sent, and the type errors it found."""

    frame: pl.DataFrame
    format: Format
    type_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.frame.height

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW]


def read_upload(path: Path, kind: UploadType, schema: RecordSchema) -> RawBatch:
    """Parse a spooled upload; raises MalformedUpload when the file as a whole is unreadable."""
    if path.stat().st_size == 0:
        raise MalformedUpload("the upload is empty", field="body")
    if kind.format is Format.CSV:
        if kind.charset != "utf-8":
            path = transcode_to_utf8(path, kind.charset)
        batch = read_csv(path)
    elif kind.format is Format.NDJSON:
        batch = read_ndjson(path, schema)
    elif kind.format is Format.JSON:
        batch = read_json_array(path, schema)
    elif kind.format is Format.XML:
        batch = read_xml(path, schema)
    else:
        batch = read_parquet(path)
    if batch.rows == 0:
        raise MalformedUpload("the upload holds no records", field="body")
    return batch


# -- encodings -------------------------------------------------------------------------------


def first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """(byte offset, line number) of the first byte that is not UTF-8, if any."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                return where, lines + chunk[: max(exc.start, 0)].count(b"\n")
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset, lines
    return None


def _not_utf8(path: Path, what: str) -> MalformedUpload:
    found = first_invalid_utf8(path)
    where = f" at byte {found[0]} (line {found[1]})" if found else ""
    return MalformedUpload(
        f"the {what} is not valid UTF-8{where}; send UTF-8 or declare the charset "
        "in the Content-Type (e.g. text/csv; charset=windows-1252)",
        field="body",
        extra={"byte_offset": found[0] if found else None, "line": found[1] if found else None},
    )


def transcode_to_utf8(path: Path, charset: str) -> Path:
    """Re-encode a text upload to UTF-8 beside it; a byte the charset cannot decode is named."""
    target = path.with_suffix(path.suffix + ".utf8")
    decoder = codecs.getincrementaldecoder(charset)()
    offset = 0
    with path.open("rb") as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            try:
                out.write(decoder.decode(chunk).encode("utf-8"))
            except UnicodeDecodeError as exc:
                raise MalformedUpload(
                    f"the upload is not valid {charset} at byte {offset + exc.start}",
                    field="body",
                ) from exc
            offset += len(chunk)
        try:
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
        except UnicodeDecodeError as exc:
            raise MalformedUpload(
                f"the upload ends inside a {charset} character", field="body"
            ) from exc
    return target


# -- CSV -------------------------------------------------------------------------------------


def _lines(path: Path) -> pl.DataFrame:
    """Every physical line of a UTF-8 text file, numbered from 1."""
    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            separator=_UNIT_SEPARATOR,
            quote_char=None,
            infer_schema=False,
            new_columns=["text"],
            empty_string_is_null=False,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.PolarsError as exc:
        if "utf-8" in str(exc).lower():
            raise _not_utf8(path, "upload") from exc
        raise MalformedUpload(  # pragma: no cover - polars reads any UTF-8 text as lines
            f"the upload cannot be read as text: {_first_line(exc)}", field="body"
        ) from exc
    return frame.with_row_index(_LINE, offset=1).with_columns(pl.col(_LINE).cast(pl.Int64))


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        text = first.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, "CSV header") from exc
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


def _ragged_rows_exact(path: Path, width: int) -> list[dict[str, Any]]:
    """Python's csv module: slow, exact, handles quoted line breaks. Only runs on suspicion."""
    problems: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row_number, row in enumerate(reader, start=1):
            if len(row) != width:
                problems.append(_ragged(row_number, len(row), width, reader.line_num))
    return problems


def _ragged(row: int, found: int, width: int, line: int) -> dict[str, Any]:
    message = (
        f"row {row} (line {line}) is blank"
        if found == 0
        else f"row {row} (line {line}) has {found} fields, the header has {width}"
    )
    entry = issue(message, row=row, code="ragged-row")
    entry["line"] = line
    return entry


def _ragged_rows(path: Path, width: int) -> list[dict[str, Any]]:
    """Rows whose field count differs from the header's (polars fills short rows silently).

    Lines without quotes are counted by their commas; the few with quotes have their quoted
    parts removed first. Anything suspicious (a count that differs, a quoted line break, a
    stray U+001F the line reader splits on) is settled by the exact reader.
    """
    lines = _lines(path).slice(1)
    flags = lines.select(
        commas=pl.col("text").str.count_matches(",", literal=True),
        quoted=pl.col("text").str.contains('"', literal=True),
    )
    if (~flags["quoted"] & (flags["commas"] != width - 1)).any():
        return _ragged_rows_exact(path, width)
    quoted = lines.filter(flags["quoted"])
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
        raise MalformedUpload(
            f"the CSV cannot be parsed: {_first_line(exc)}", field="body"
        ) from exc
    return RawBatch(_numbered(frame), Format.CSV)


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- NDJSON and JSON -------------------------------------------------------------------------

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
    lines = _lines(path)  # polars drops a UTF-8 byte order mark
    records = lines.filter(pl.col("text").str.contains(r"\S"))
    if records.height == 0:
        raise MalformedUpload("the upload holds no records", field="body")
    records = _numbered(records)
    # One pass over the lines for both probes (polars evaluates the two in parallel).
    probes = records.select(
        suspect=pl.col("text").str.contains(_wrong_type_pattern(schema)),
        extra=pl.col("text").str.count_matches(_KEY)
        != pl.col("text").str.count_matches(_declared_key_pattern(schema)),
    )
    type_errors, flagged = _json_type_errors(
        records.filter(probes["suspect"]), schema, row_of_line=row_of_line
    )
    dtype = _json_dtype(schema)
    undeclared = _undeclared_keys(records.filter(probes["extra"]), schema)
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
        value = json.loads(text)
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
) -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """Values of the wrong JSON type in the suspect lines (polars would silently turn a
    number into a string)."""
    if suspects.height == 0:
        return [], {}
    errors: list[dict[str, Any]] = []
    flagged: dict[int, set[str]] = {}
    for spec in schema.fields:
        found = suspects.select(
            pl.col(ROW),
            pl.col(_LINE),
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
    problems: list[dict[str, Any]] = []
    for row, line, text in records.select(ROW, _LINE, "text").iter_rows():
        try:
            value = json.loads(text)
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


def read_json_array(path: Path, schema: RecordSchema) -> RawBatch:
    """A JSON array of record objects; rows are the array's elements, counted from 1."""
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        elements = msgspec.json.decode(data, type=list[msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise MalformedUpload(
            "the upload must be a JSON array of record objects", field="body"
        ) from exc
    except msgspec.DecodeError as exc:
        raise MalformedUpload(f"the upload is not valid JSON: {exc}", field="body") from exc
    if not elements:
        raise MalformedUpload("the upload holds no records", field="body")
    # Outside strings JSON whitespace may be replaced freely; inside strings a raw line break
    # is not allowed at all, so this keeps every element on one line.
    lines = path.with_suffix(path.suffix + ".ndjson")
    with lines.open("wb") as out:
        for element in elements:
            out.write(bytes(element).replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
    batch = read_ndjson(lines, schema, row_of_line=False)
    return RawBatch(batch.frame, Format.JSON, batch.type_errors)


# -- XML -------------------------------------------------------------------------------------

_DOCTYPE: Final = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
_ROOT_START: Final = re.compile(rb"<[A-Za-z_]|<\x00[A-Za-z_]|\x00<\x00[A-Za-z_]")


def _xml_parser_options() -> dict[str, Any]:
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "dtd_validation": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }


def reject_dtd(head: bytes) -> None:
    """Refuse a document type declaration: where entity bombs and external entities live."""
    start = _ROOT_START.search(head)
    prolog = head[: start.start()] if start else head
    if any(marker in prolog for marker in _DOCTYPE):
        raise MalformedUpload(
            "XML with a document type declaration (DTD) is refused: entity expansion "
            "(billion laughs) and external entities are not allowed",
            field="body",
            extra={"reason": "xml-dtd"},
        )
    if start is None and len(head) >= _PROLOG_LIMIT:
        raise MalformedUpload("the XML prolog is longer than 1 MiB", field="body")


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def _record_tag(path: Path, schema: RecordSchema) -> str | None:
    if schema.record_element is not None:
        return schema.record_element
    depth = 0
    for event, element in etree.iterparse(
        str(path), events=("start", "end"), **_xml_parser_options()
    ):
        if event == "start":
            depth += 1
            if depth == 2:
                return _local(element.tag)
        else:
            depth -= 1
    return None


def read_xml(path: Path, schema: RecordSchema) -> RawBatch:
    """``<root><record><field>text</field>...</record>...</root>``; fields may be attributes.

    A list field is an element with one child per item (``<memberships><m>A</m></memberships>``)
    or text split by the field's separator.
    """
    with path.open("rb") as handle:
        reject_dtd(handle.read(_PROLOG_LIMIT))
    try:
        return _read_xml(path, schema)
    except etree.XMLSyntaxError as exc:
        line, message = _xml_error(exc)
        raise MalformedUpload(
            f"not well-formed XML at line {line}: {message}", field="body", extra={"line": line}
        ) from exc


def _xml_error(exc: etree.XMLSyntaxError) -> tuple[int, str]:
    """lxml's own message can be vague ("no element found"); its error log is precise."""
    for entry in exc.error_log:
        return int(entry.line), str(entry.message)
    return int(exc.lineno or 0), str(exc.msg)  # pragma: no cover - the log is never empty


def _read_xml(path: Path, schema: RecordSchema) -> RawBatch:
    tag = _record_tag(path, schema)
    if tag is None:
        raise MalformedUpload("the XML document holds no records", field="body")
    reader = _XmlColumns(schema)
    root: Any = None
    for _, element in etree.iterparse(
        str(path), events=("end",), tag="{*}" + tag, **_xml_parser_options()
    ):
        if root is None:
            root = element.getroottree().getroot()
        if element.getparent() is not root:
            raise MalformedUpload(
                f"XML records must be children of the root: <{tag}> at line "
                f"{element.sourceline} is nested deeper",
                field="body",
                extra={"line": element.sourceline},
            )
        previous = element.getprevious()
        if previous is not None:
            _unexpected(previous, tag)
        reader.add(element)
        element.clear()
        del root[0]
    if root is not None:
        for leftover in root:
            _unexpected(leftover, tag)
    if reader.rows == 0:
        raise MalformedUpload(f"the XML document holds no <{tag}> records", field="body")
    return RawBatch(reader.frame(), Format.XML, reader.type_errors)


def _unexpected(element: Any, tag: str) -> None:
    raise MalformedUpload(
        f"unexpected element <{_local(element.tag)}> at line {element.sourceline} "
        f"(records are <{tag}> elements)",
        field="body",
        extra={"line": element.sourceline},
    )


class _XmlColumns:
    """Record elements into columns: one list per field, padded where a record lacks it."""

    def __init__(self, schema: RecordSchema) -> None:
        self.fields = schema.by_name
        self.lists = {f.name: f.separator for f in schema.fields if f.type is FieldType.LIST}
        self.columns: dict[str, list[Any]] = {}
        self.names: dict[str, str] = {}
        self.type_errors: list[dict[str, Any]] = []
        self.rows = 0

    def _column(self, name: str, index: int) -> list[Any]:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = []
        if len(column) < index:
            column.extend([None] * (index - len(column)))
        return column

    def _set(self, name: str, index: int, value: Any) -> None:
        column = self._column(name, index)
        if len(column) > index:  # the same field twice in one record
            column[index] = None
            self._error(index, name, f"<{name}> appears more than once")
        else:
            column.append(value)

    def _error(self, index: int, name: str, message: str) -> None:
        row = index + 1
        self.type_errors.append(issue(f"row {row}: {message}", field=name, row=row, code="type"))

    def add(self, element: Any) -> None:
        index = self.rows
        self.rows += 1
        for key, value in element.attrib.items():
            self._set(_local(key), index, value)
        names = self.names
        columns = self.columns
        for child in element:
            tag = child.tag
            name = names.get(tag)
            if name is None:
                name = names[tag] = _local(tag)
            text = child.text
            if text and not text.isspace():  # the common case, inlined: a field with text
                column = columns.get(name)
                if column is not None and len(column) == index:
                    column.append(text)
                else:
                    self._set(name, index, text)
            elif len(child):
                if name in self.lists:
                    self._set(name, index, [item.text or "" for item in child])
                elif name in self.fields:
                    self._set(name, index, None)
                    self._error(index, name, f"<{name}> holds nested elements, expected text")
                else:
                    self._set(name, index, "".join(child.itertext()))
            else:
                self._set(name, index, text or None)

    def frame(self) -> pl.DataFrame:
        data: dict[str, pl.Series] = {ROW: pl.Series(ROW, range(1, self.rows + 1), dtype=pl.Int64)}
        for name, column in self.columns.items():
            column.extend([None] * (self.rows - len(column)))
            separator = self.lists.get(name)
            if separator is None:
                data[name] = pl.Series(name, column, dtype=pl.String)
                continue
            values = [v.split(separator) if isinstance(v, str) else v for v in column]
            data[name] = pl.Series(name, values, dtype=pl.List(pl.String))
        return pl.DataFrame(data)


# -- Parquet ---------------------------------------------------------------------------------


def read_parquet(path: Path) -> RawBatch:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise MalformedUpload(
            f"the upload is not a readable Parquet file: {_first_line(exc)}", field="body"
        ) from exc
    return RawBatch(_numbered(frame), Format.PARQUET)


# -- Lookup answers --------------------------------------------------------------------------


def parse_lookup_answer(
    body: bytes, content_type: str | None, record_schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A DP's lookup answer, JSON or XML, as ``{"found": bool, "record": {...}, "as_of": ...}``.

    XML: ``<lookup found="true" as_of="..."><record><field>..</field>...</record></lookup>``;
    a field with child elements is a list; scalar values are converted to the JSON types the
    record schema declares. A DTD is refused, and nothing is fetched.
    """
    media = (content_type or "application/json").partition(";")[0].strip().lower()
    if media in ("application/xml", "text/xml"):
        return _xml_answer(body, record_schema or {})
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ProviderBadResponse("the provider answered with invalid JSON") from exc
    if not isinstance(answer, dict):
        raise ProviderBadResponse("the provider's answer is not a JSON object")
    return answer


def _xml_answer(body: bytes, record_schema: dict[str, Any]) -> dict[str, Any]:
    try:
        reject_dtd(body[:_PROLOG_LIMIT])
        root = safe_et.fromstring(body, forbid_dtd=True)
    except (MalformedUpload, DefusedXmlException) as exc:
        raise ProviderBadResponse(
            "the provider's XML answer has a DTD (entities are refused)"
        ) from exc
    except safe_et.ParseError as exc:
        raise ProviderBadResponse(f"the provider's XML answer is not well-formed: {exc}") from exc
    found_text = root.attrib.get("found", "").strip().lower()
    if found_text not in ("true", "false"):
        raise ProviderBadResponse('the provider\'s XML answer has no found="true|false"')
    answer: dict[str, Any] = {"found": found_text == "true"}
    if "as_of" in root.attrib:
        answer["as_of"] = root.attrib["as_of"]
    record_element = next((c for c in root if _local(c.tag) == "record"), None)
    if record_element is not None:
        properties = record_schema.get("properties", {})
        record: dict[str, Any] = {}
        for child in record_element:
            name = _local(child.tag)
            if len(child):
                record[name] = [item.text or "" for item in child]
            else:
                record[name] = _typed(child.text or "", _json_type(properties.get(name, {})))
        answer["record"] = record
    return answer


def _json_type(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, str):
        return kind
    for option in prop.get("anyOf", []):
        if isinstance(option, dict) and option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _typed(text: str, kind: str) -> Any:
    value = text.strip()
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return text
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "array":
        return [text] if text else []
    return text


def iter_chunks(path: Path, size: int = _CHUNK) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk
