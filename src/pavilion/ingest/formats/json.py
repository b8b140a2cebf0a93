"""The JSON reader: an array of record objects, rewritten as NDJSON and read by that reader."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pavilion.ingest.errors import MalformedUpload
from pavilion.ingest.formats.core import BOM, Format, RawBatch
from pavilion.ingest.formats.ndjson import read_ndjson
from pavilion.ingest.schema import RecordSchema
from pavilion.ingest.scratch import beside
from pavilion.parsing import MAX_NESTING


def read_json_array(path: Path, schema: RecordSchema) -> RawBatch:
    """A JSON array of record objects; rows are the array's elements, counted from 1."""
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        elements = msgspec.json.decode(data, type=list[msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise MalformedUpload(
            "the upload must be a JSON array of record objects", field="body"
        ) from exc
    except msgspec.DecodeError as exc:
        raise MalformedUpload(f"the upload is not valid JSON: {exc}", field="body") from exc
    except RecursionError:  # msgspec recurses once per level, even over a Raw element
        raise MalformedUpload(
            f"the upload nests deeper than the parser's stack allows (at most {MAX_NESTING} "
            "levels are taken)",
            field="body",
        ) from None
    if not elements:
        raise MalformedUpload("the upload holds no records", field="body")
    # Outside strings JSON whitespace may be replaced freely; inside strings a raw line break
    # is not allowed at all, so this keeps every element on one line.
    lines = beside(path, ".ndjson")
    with lines.open("wb") as out:
        for element in elements:
            out.write(bytes(element).replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
    batch = read_ndjson(lines, schema, row_of_line=False)
    return RawBatch(batch.frame, Format.JSON, batch.type_errors)
