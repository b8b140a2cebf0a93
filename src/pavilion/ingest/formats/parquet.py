"""The Parquet reader: polars reads the file with its own column types."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats.core import Format, RawBatch, first_line, numbered


def read_parquet(path: Path) -> RawBatch:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise MalformedUpload(
            f"the upload is not a readable Parquet file: {first_line(exc)}", field="body"
        ) from exc
    return RawBatch(numbered(frame), Format.PARQUET)
