"""Distinct counts by hash agree exactly with polars' ``n_unique`` by value."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavilion.ingest.distinct import all_distinct, by_hash, distinct_count, distinct_counts

_TEXT = st.one_of(st.none(), st.sampled_from(["", "a", "b", "ab", "é", " a"]), st.text(max_size=4))


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(_TEXT, max_size=30),
    floats=st.lists(
        st.one_of(st.none(), st.sampled_from([0.0, -0.0, float("nan"), 1.5]), st.floats()),
        max_size=30,
    ),
    lists=st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["x", "y"]), max_size=2))),
)
def test_counts_equal_n_unique(
    texts: list[str | None], floats: list[float | None], lists: list[list[str] | None]
) -> None:
    for series in (
        pl.Series("t", texts, dtype=pl.String),
        pl.Series("f", floats, dtype=pl.Float64),
        pl.Series("l", lists, dtype=pl.List(pl.String)),
        pl.Series("i", [len(t) if t is not None else None for t in texts], dtype=pl.Int64),
    ):
        exact = series.drop_nulls().n_unique()
        assert distinct_count(series) == exact
        verdict = series.to_frame().select(all_distinct(pl.col(series.name), series.dtype)).item()
        assert verdict == (series.n_unique() == len(series))


def test_all_distinct_and_repeated_columns_in_one_frame() -> None:
    frame = pl.DataFrame(
        {
            "key": ["S1", "S2", None, "S3"],
            "status": ["a", "a", "b", None],
            "score": [0.0, -0.0, float("nan"), float("nan")],
        }
    )
    assert distinct_counts(frame, ["key", "status", "score"]) == {
        "key": 3,
        "status": 2,
        "score": frame["score"].n_unique(),
    }
    assert distinct_counts(frame, []) == {}


def test_a_hash_collision_is_counted_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes that repeat send the column to the exact count, so a collision cannot undercount
    (and ``all_distinct`` errs only towards the exact check)."""
    frame = pl.DataFrame({"key": ["S1", "S2", "S3"]})
    original = pl.Expr.hash

    def colliding(self: pl.Expr, *args: object, **kwargs: object) -> pl.Expr:
        return original(self, *args, **kwargs) * 0  # type: ignore[arg-type]

    monkeypatch.setattr(pl.Expr, "hash", colliding)
    assert distinct_counts(frame, ["key"]) == {"key": 3}
    assert frame.select(all_distinct(pl.col("key"), pl.String())).item() is False


def test_floats_are_never_counted_by_hash() -> None:
    assert not by_hash(pl.Float64())
    assert not by_hash(pl.List(pl.Float32()))
    assert by_hash(pl.List(pl.String()))
    assert by_hash(pl.Date())
    assert by_hash(pl.Int32())
    assert by_hash(pl.Datetime("us", "UTC"))


def test_a_column_repeating_early_is_counted_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pavilion.ingest.distinct._SAMPLE", 3)
    frame = pl.DataFrame(
        {
            "early": ["a", "a", "b", "c", "d", None],  # repeats within the first three rows
            "late": ["a", "b", "c", "d", "a", None],  # repeats only after them
            "never": ["a", "b", "c", "d", "e", "f"],
        }
    )
    assert distinct_counts(frame, ["early", "late", "never"]) == {
        "early": 4,
        "late": 4,
        "never": 6,
    }
