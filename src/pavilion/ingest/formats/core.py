"""What every upload reader shares: the formats and their media types, the ``RawBatch`` a
reader returns, and the row-numbering helpers."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

import polars as pl

from pavilion.errors import InvalidRequest
from pavilion.ingest.errors import Issue

ROW: Final = "__row"
LINE: Final = "__line"
BOM: Final = b"\xef\xbb\xbf"
CHUNK: Final = 1 << 20


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
    type_errors: list[Issue] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.frame.height

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW]


def numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with a 1-based ``__row`` column."""
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def iter_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk
