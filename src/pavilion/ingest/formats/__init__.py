"""Readers of roster uploads (CSV, NDJSON, JSON, XML, Parquet) and of lookup answers.

Every reader turns a spooled file into a ``RawBatch``: a polars frame with a 1-based ``__row``
column and one column per source field (String, List(String), or Parquet's own types), plus
the type errors it found on the way (row and field). Problems that make the whole upload
unreadable (empty, wrong encoding, ragged CSV, broken JSON, an XML DTD) raise
``MalformedUpload`` naming where. Fast paths are polars; the exact but slow Python paths run
only to explain a failure. One module per format; ``core`` holds what they share.
"""

from __future__ import annotations

from pathlib import Path

from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats.answers import parse_lookup_answer
from pavilion.ingest.formats.core import (
    CONTENT_TYPES,
    ROW,
    Format,
    RawBatch,
    UploadType,
    iter_chunks,
    upload_type,
)
from pavilion.ingest.formats.csv import read_csv
from pavilion.ingest.formats.json import read_json_array
from pavilion.ingest.formats.ndjson import read_ndjson
from pavilion.ingest.formats.parquet import read_parquet
from pavilion.ingest.formats.text import first_invalid_utf8, transcode_to_utf8
from pavilion.ingest.formats.xml import read_xml, reject_dtd
from pavilion.ingest.schema import RecordSchema

__all__ = [
    "CONTENT_TYPES",
    "ROW",
    "Format",
    "RawBatch",
    "UploadType",
    "first_invalid_utf8",
    "iter_chunks",
    "parse_lookup_answer",
    "read_csv",
    "read_json_array",
    "read_ndjson",
    "read_parquet",
    "read_upload",
    "read_xml",
    "reject_dtd",
    "upload_type",
]


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
