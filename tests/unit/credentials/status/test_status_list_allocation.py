"""Index allocation: random, never a used index, a typed error when the list is full."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pavilion.credentials.status import StatusListError, StatusListFull, allocate_index
from pavilion.errors import InvalidRequest, PavilionError


@st.composite
def lists(draw: st.DrawFn) -> tuple[int, set[int]]:
    size = draw(st.integers(min_value=1, max_value=300))
    used = draw(st.sets(st.integers(min_value=0, max_value=size - 1), max_size=size - 1))
    return size, used


@given(lists(), st.integers(min_value=0, max_value=8), st.randoms(use_true_random=False))
def test_never_returns_a_used_index(
    case: tuple[int, set[int]], max_attempts: int, rng: random.Random
) -> None:
    size, used = case
    from_set = allocate_index(size, used, rng=rng, max_attempts=max_attempts)
    from_predicate = allocate_index(
        size, lambda index: index in used, rng=rng, max_attempts=max_attempts
    )
    for index in (from_set, from_predicate):
        assert 0 <= index < size
        assert index not in used


def test_filling_a_list_uses_every_index_once_then_raises() -> None:
    used: set[int] = set()
    rng = random.Random(7)
    for _ in range(50):
        used.add(allocate_index(50, used, rng=rng))
    assert used == set(range(50))
    with pytest.raises(StatusListFull) as info:
        allocate_index(50, used, rng=rng)
    assert info.value.extra == {"size": 50}
    assert isinstance(info.value, PavilionError)
    assert not isinstance(info.value, InvalidRequest)
    assert info.value.code == "status-list-full"


def test_full_by_predicate() -> None:
    with pytest.raises(StatusListFull):
        allocate_index(1000, lambda _: True)


def test_nearly_full_list_falls_back_to_a_scan() -> None:
    calls: list[int] = []

    def is_used(index: int) -> bool:
        calls.append(index)
        return index != 777

    assert allocate_index(1000, is_used, rng=random.Random(1), max_attempts=4) == 777
    assert len(calls) == 4 + 1000  # four random draws, then one full scan


@pytest.mark.parametrize("max_attempts", [0, 64])
def test_uniform_over_the_free_indices(max_attempts: int) -> None:
    rng = random.Random(12345)
    used = {0, 1, 2, 3, 4}
    counts = Counter(
        allocate_index(10, used, rng=rng, max_attempts=max_attempts) for _ in range(5000)
    )
    assert set(counts) == {5, 6, 7, 8, 9}
    assert all(850 < count < 1150 for count in counts.values())  # 1000 each expected


def test_default_rng_is_the_system_csprng() -> None:
    draws = {allocate_index(1 << 40, set()) for _ in range(20)}
    assert len(draws) == 20
    assert allocate_index(1, set()) == 0


@pytest.mark.parametrize(
    ("size", "max_attempts", "field"),
    [
        (0, 64, "size"),
        (-1, 64, "size"),
        (True, 64, "size"),
        (2.0, 64, "size"),
        (5, -1, "max_attempts"),
    ],
)
def test_bad_arguments(size: Any, max_attempts: int, field: str) -> None:
    with pytest.raises(StatusListError) as info:
        allocate_index(size, set(), max_attempts=max_attempts)
    assert info.value.field == field
