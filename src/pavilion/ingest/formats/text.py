"""Text uploads: UTF-8 checks, transcoding a declared charset to UTF-8, and reading a file as
numbered physical lines (what the CSV and NDJSON readers start from)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Final

import polars as pl

from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats.core import CHUNK, LINE, first_line
from pavilion.ingest.scratch import beside

_UNIT_SEPARATOR: Final = "\x1f"  # cannot occur in valid JSON text; rare in CSV


def first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """(byte offset, line number) of the first byte that is not UTF-8, if any."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
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


def not_utf8(path: Path, what: str) -> MalformedUpload:
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
    target = beside(path, ".utf8")
    decoder = codecs.getincrementaldecoder(charset)()
    offset = 0
    with path.open("rb") as source, target.open("wb") as out:
        while chunk := source.read(CHUNK):
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


def lines(path: Path) -> pl.DataFrame:
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
            raise not_utf8(path, "upload") from exc
        raise MalformedUpload(  # pragma: no cover - polars reads any UTF-8 text as lines
            f"the upload cannot be read as text: {first_line(exc)}", field="body"
        ) from exc
    return frame.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
