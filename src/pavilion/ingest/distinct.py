"""Exact distinct counts, cheaply when every value differs (keys, e-mail addresses).

polars' ``n_unique`` on a column of long, mostly distinct strings costs ten times what
hashing the values and counting the distinct 64-bit hashes does. Equal values always hash
alike, so when the hashes are all distinct the values are too, and the count is exact; only a
column whose hashes repeat (a repeated value, or, very rarely, two values with one hash) is
counted again by value. Float columns are always counted by value: ``n_unique`` and ``hash``
need not agree on -0.0 and NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: Rows looked at first: a column that repeats a value among them is counted by value only.
_SAMPLE = 10_000
_BY_HASH = (pl.String, pl.Binary, pl.Boolean, pl.Date, pl.Datetime, pl.Time, pl.Duration)


def by_hash(dtype: PolarsDataType) -> bool:
    """Whether distinct hashes of this type prove distinct values."""
    if isinstance(dtype, pl.List | pl.Array):
        return by_hash(dtype.inner)
    return dtype.is_integer() or isinstance(dtype, _BY_HASH)


def all_distinct(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """True only if no two values (a second null included) are equal.

    For a hashed type it may, very rarely (two values with one hash), say False wrongly; use
    it where False only sends the batch to an exact check.
    """
    counted = column.hash() if by_hash(dtype) else column
    return counted.n_unique() == pl.len()


def distinct_counts(frame: pl.DataFrame, names: list[str]) -> dict[str, int]:
    """The exact number of distinct non-null values of each named column."""
    if not names:
        return {}
    hashed = [n for n in names if by_hash(frame.schema[n])]
    if hashed and frame.height > _SAMPLE:  # a value repeated early: counted by value at once
        sample = frame.head(_SAMPLE).select(
            (pl.col(n).drop_nulls().n_unique() < pl.col(n).count()).alias(n) for n in hashed
        )
        hashed = [n for n, repeats in zip(hashed, sample.row(0), strict=True) if not repeats]
    counts: dict[str, int] = {}
    if hashed:
        first = frame.select(
            *(pl.col(n).drop_nulls().hash().n_unique().alias(f"h:{n}") for n in hashed),
            *(pl.col(n).count().alias(f"c:{n}") for n in hashed),
        ).row(0, named=True)
        counts = {n: int(first[f"c:{n}"]) for n in hashed if first[f"h:{n}"] == first[f"c:{n}"]}
    again = [n for n in names if n not in counts]
    if again:
        exact = frame.select(pl.col(n).drop_nulls().n_unique() for n in again).row(0)
        counts.update(zip(again, (int(v) for v in exact), strict=True))
    return {n: counts[n] for n in names}


def distinct_count(values: pl.Series) -> int:
    """The exact number of distinct non-null values of a series."""
    return distinct_counts(values.to_frame("v"), ["v"])["v"]
