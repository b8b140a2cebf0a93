"""Canonical records come out in code point order of their keys, however the keys sort."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.ingest.canonical import SUBJECT_KEY
from pavilion.ingest.pipeline import _packed_keys, canonical_records

_SHORT = st.text(alphabet=st.sampled_from(["A", "B", "a", "0", "~", " ", "\x01"]), max_size=8)
_ANY = st.text(max_size=10)


@settings(max_examples=300, deadline=None)
@given(keys=st.one_of(st.sets(_SHORT, max_size=40), st.sets(_ANY, max_size=40)))
def test_records_sorted_by_code_point(keys: set[str]) -> None:
    ordered = sorted(keys)  # Python compares code points, as UTF-8 bytes order
    frame = pl.DataFrame(
        {SUBJECT_KEY: list(keys), "email": [f"{len(k)}@x.org" for k in keys]},
        schema={SUBJECT_KEY: pl.String, "email": pl.String},
    )
    records = canonical_records(frame, [SUBJECT_KEY, "email"])
    assert records["key"].to_list() == ordered
    decoded = [json.loads(text) for text in records["json"].to_list()]
    assert [d[SUBJECT_KEY] for d in decoded] == ordered  # each key keeps its own record
    assert [d["email"] for d in decoded] == [f"{len(k)}@x.org" for k in ordered]


def test_which_keys_pack() -> None:
    assert _packed_keys(pl.Series(["S0000001", "S2", "A"])) is not None
    assert _packed_keys(pl.Series(["S00000001"])) is None  # nine bytes
    assert _packed_keys(pl.Series(["Å"])) is None  # not ASCII
    assert _packed_keys(pl.Series(["A\x00"])) is None  # would tie with "A"
    assert _packed_keys(pl.Series(["A", None])) is None
    assert _packed_keys(pl.Series([], dtype=pl.String)) is None
