"""The NDJSON reader's one-pass candidate pattern finds every line either exact probe flags."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.ingest.formats import Format, UploadType, read_upload
from pavilion.ingest.formats.ndjson import (
    _KEY,
    _candidate_pattern,
    _declared_key_pattern,
    _wrong_type_pattern,
)
from pavilion.ingest.schema import RecordSchema

SCHEMA = RecordSchema.model_validate(
    {
        "name": "probe",
        "fields": [
            {"name": "id", "required": True},
            {"name": "id.x"},
            {"name": "ida-b"},
            {"name": "age", "type": "integer"},
            {"name": "tags", "type": "list"},
            {"name": "ok", "type": "boolean"},
        ],
    }
)
_NAMES = ["id", "id.x", "ida-b", "age", "tags", "ok"]
_KEYS = st.one_of(
    st.sampled_from(_NAMES),
    st.sampled_from(["", "i", "idx", "id.", "ida", "ida-bc", "Id", "ag", "oks", 'i"d', "t\\ags"]),
    st.text(max_size=5),
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=6),
    st.sampled_from(['"x": 1', '\\"id\\": 2', '"age" :', "nickname"]),
    st.lists(st.text(max_size=3), max_size=2),
)


@st.composite
def _lines(draw: st.DrawFn) -> str:
    record = draw(st.dictionaries(_KEYS, _VALUES, max_size=6))
    separator = draw(st.sampled_from([(", ", ": "), (",", ":"), (" , ", " : ")]))
    return json.dumps(record, separators=separator, ensure_ascii=draw(st.booleans()))


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(_lines(), min_size=1, max_size=20))
def test_candidates_cover_both_probes(lines: list[str]) -> None:
    frame = pl.DataFrame({"text": lines}).select(
        candidate=pl.col("text").str.contains(_candidate_pattern(SCHEMA)),
        suspect=pl.col("text").str.contains(_wrong_type_pattern(SCHEMA)),
        extra=pl.col("text").str.count_matches(_KEY)
        != pl.col("text").str.count_matches(_declared_key_pattern(SCHEMA)),
    )
    missed = frame.filter((pl.col("suspect") | pl.col("extra")) & ~pl.col("candidate"))
    assert missed.height == 0, [lines[i] for i in range(len(lines)) if not frame["candidate"][i]]


def test_only_lines_with_a_problem_are_candidates(tmp_path: Path) -> None:
    path = tmp_path / "upload.ndjson"
    path.write_text(
        '{"id": "A", "id.x": "1", "ida-b": null, "age": 3, "tags": ["x"], "ok": true}\n'
        '{"id": "B", "idx": "undeclared"}\n'
        '{"id": "C", "age": "old"}\n',
        encoding="utf-8",
    )
    flags = pl.read_ndjson(path, schema={"id": pl.String}).with_columns(
        text=pl.Series(path.read_text(encoding="utf-8").splitlines())
    )
    assert flags.select(
        pl.col("text").str.contains(_candidate_pattern(SCHEMA))
    ).to_series().to_list() == [
        False,
        True,
        True,
    ]
    batch = read_upload(path, UploadType(Format.NDJSON), SCHEMA)
    assert batch.frame["idx"].to_list() == [None, "undeclared", None]
    assert [(e["row"], e["field"]) for e in batch.type_errors] == [(3, "age")]
