"""The configuration cache: TTL, single flight, invalidation that beats an in-flight load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from pavilion.store.config_cache import ConfigCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_value_is_loaded_once_then_served_until_it_expires() -> None:
    clock = Clock()
    cache = ConfigCache(2.0, timer=clock)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await cache.get("t1", "k", load) == 1
    clock.now = 1.9
    assert await cache.get("t1", "k", load) == 1
    clock.now = 2.1
    assert await cache.get("t1", "k", load) == 2
    assert cache.loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    cache = ConfigCache(2.0)
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return "value"

    first = asyncio.create_task(cache.get("t1", "k", load))
    await started.wait()
    others = [asyncio.create_task(cache.get("t1", "k", load)) for _ in range(5)]
    release.set()
    assert await asyncio.gather(first, *others) == ["value"] * 6
    assert calls == 1


async def test_invalidation_drops_the_tenants_entries_only() -> None:
    cache = ConfigCache(60.0)
    values = iter(range(100))

    async def load() -> int:
        return next(values)

    a = await cache.get("t1", "k", load)
    b = await cache.get("t2", "k", load)
    cache.invalidate("t1")
    assert await cache.get("t1", "k", load) != a
    assert await cache.get("t2", "k", load) == b


async def test_a_load_that_began_before_an_invalidation_is_not_kept() -> None:
    cache = ConfigCache(60.0)
    release = asyncio.Event()
    values = iter(["stale", "fresh"])

    async def load() -> str:
        value = next(values)
        if value == "stale":
            await release.wait()
        return value

    pending = asyncio.create_task(cache.get("t1", "k", load))
    await asyncio.sleep(0)
    cache.invalidate("t1")  # the configuration changed while the stale read was in flight
    release.set()
    assert await pending == "stale"  # that caller asked before the change
    assert await cache.get("t1", "k", load) == "fresh"


async def test_a_failed_load_is_not_cached_and_reaches_every_waiter() -> None:
    cache = ConfigCache(60.0)
    attempts = 0

    async def load() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise LookupError("no such provider")
        return 7

    results = await asyncio.gather(
        cache.get("t1", "k", load), cache.get("t1", "k", load), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert await cache.get("t1", "k", load) == 7


async def test_ttl_zero_never_keeps_a_value() -> None:
    cache = ConfigCache(0)
    values = iter(range(10))

    async def load() -> int:
        return next(values)

    assert [await cache.get("t", "k", load) for _ in range(3)] == [0, 1, 2]


@pytest.mark.parametrize("count", [3])
async def test_the_cache_empties_past_its_bound(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr("pavilion.store.config_cache.MAX_ENTRIES", count)
    cache = ConfigCache(60.0)

    async def load() -> str:
        return "v"

    for key in range(count + 1):
        await cache.get("t", key, load)
    assert cache.loads == count + 1
    await cache.get("t", count, load)  # the newest survives the purge
    assert cache.loads == count + 1


async def test_a_caller_after_an_invalidation_does_not_share_the_load_in_flight() -> None:
    cache = ConfigCache(60.0)
    release = asyncio.Event()
    values = iter(["before the change", "after the change"])

    async def slow_load() -> str:
        value = next(values)
        if value == "before the change":
            await release.wait()
        return value

    early = asyncio.create_task(cache.get("t1", "k", slow_load))
    await asyncio.sleep(0)  # the first load is in flight
    cache.invalidate("t1")
    late = await cache.get("t1", "k", slow_load)  # starts its own load: it sees the change
    release.set()
    assert await early == "before the change"
    assert late == "after the change"
    assert await cache.get("t1", "k", slow_load) == "after the change"  # the late one is kept


def slow_second_load(release: asyncio.Event) -> Callable[[], Awaitable[str]]:
    """Loads "first", then "second" only once ``release`` is set: a slow database that
    nobody may wait for."""
    values = iter(["first", "second"])

    async def load() -> str:
        value = next(values)
        if value == "second":
            await release.wait()
        return value

    return load


async def test_an_ageing_entry_is_reloaded_behind_while_callers_keep_the_value() -> None:
    clock = Clock()
    cache = ConfigCache(2.0, timer=clock)
    release = asyncio.Event()
    load = slow_second_load(release)

    assert await cache.get("t1", "k", load) == "first"
    clock.now = 1.6  # within the second half of the ttl
    assert await cache.get("t1", "k", load) == "first"  # answered at once, reload started
    assert await cache.get("t1", "k", load) == "first"  # one reload, not one per caller
    await asyncio.sleep(0)
    assert cache.loads == 2
    release.set()
    await cache.aclose()  # the reload in the background has finished
    clock.now = 3.0  # past the first value's expiry: the reloaded one serves
    assert await cache.get("t1", "k", load) == "second"
    assert cache.loads == 2


async def test_a_value_is_never_served_past_its_ttl_even_while_a_reload_runs() -> None:
    clock = Clock()
    cache = ConfigCache(2.0, timer=clock)
    release = asyncio.Event()
    load = slow_second_load(release)

    await cache.get("t1", "k", load)
    clock.now = 1.8
    await cache.get("t1", "k", load)  # the reload is now in flight, and slow
    clock.now = 2.5  # "first" expired: a caller waits for the reload in flight
    waiting = asyncio.create_task(cache.get("t1", "k", load))
    await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    assert await waiting == "second"
    assert cache.loads == 2


async def test_a_failed_reload_behind_keeps_the_value_until_it_expires() -> None:
    clock = Clock()
    cache = ConfigCache(2.0, timer=clock)
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 2:
            raise ConnectionError("database unreachable")
        return f"value {attempts}"

    assert await cache.get("t1", "k", load) == "value 1"
    clock.now = 1.6
    assert await cache.get("t1", "k", load) == "value 1"
    await cache.aclose()  # the reload failed in the background
    assert attempts == 2
    assert await cache.get("t1", "k", load) == "value 1"  # not expired yet: still served
    clock.now = 2.1
    assert await cache.get("t1", "k", load) == "value 3"  # expired: loaded again in line
