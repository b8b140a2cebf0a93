"""Tenant configuration served from memory on the hot path, with invalidation.

A verification needs its provider, the provider's endpoints and the tenant's residency
adequacy lists: reading them from the database on every request cost a transaction and
four statements. They change rarely and only through this service, so each worker keeps
what it read for ``ttl`` seconds. A change made through this worker drops the tenant's
entries at once (the service that writes calls ``invalidate``); a change made through
another worker or node is seen within ``ttl``.

Concurrent misses of one key share one load (single flight), and a load that started
before an invalidation is neither stored nor shared with callers that come after it, so a
stale value never outlives the change.

An entry is reloaded ahead of its expiry: a read in the second half of its ``ttl`` starts one
reload in the background and is answered from memory, so on a busy worker nobody waits for the
database when an entry ages out (at 100 requests in flight, every request of the tenant queued
behind that one reload: a stall of a few hundred milliseconds every ``ttl``). The bound holds:
a value is never served more than ``ttl`` after it was read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

T = TypeVar("T")
log = structlog.stdlib.get_logger(__name__)

#: Entries kept at most; past it the cache is emptied (tenants x providers stays far below).
MAX_ENTRIES = 50_000
#: The share of ``ttl`` after which a read starts a reload in the background.
REFRESH_AHEAD = 0.5


@dataclass
class _Entry:
    value: Any
    expires: float
    refresh_at: float


class ConfigCache:
    def __init__(self, ttl: float, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._timer = timer
        self._entries: dict[tuple[str, Hashable], _Entry] = {}
        self._loading: dict[tuple[str, Hashable], asyncio.Future[Any]] = {}
        self._generation: dict[str, int] = {}
        #: Loads that went to the database (for tests and the benchmark).
        self.loads = 0
        self._reloads: set[asyncio.Task[None]] = set()

    async def get(self, tenant_id: str, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``key`` for ``tenant_id``, loaded by ``load`` when missing."""
        full = (tenant_id, key)
        entry = self._entries.get(full)
        if entry is not None:
            now = self._timer()
            if entry.expires > now:
                if now >= entry.refresh_at and full not in self._loading:
                    self._reload_behind(full, load)
                value: T = entry.value
                return value
        pending = self._loading.get(full)
        if pending is not None:
            shared: T = await asyncio.shield(pending)
            return shared
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[full] = future
        loaded: T = await self._load(full, load, future)
        return loaded

    async def _load(
        self, full: tuple[str, Hashable], load: Callable[[], Awaitable[T]], future: Any
    ) -> T:
        """Run ``load`` for the callers sharing ``future``; keep the value unless the tenant's
        configuration changed meanwhile."""
        tenant_id = full[0]
        generation = self._generation.get(tenant_id, 0)
        try:
            self.loads += 1
            loaded = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a load nobody else awaited must not warn
            raise
        finally:
            if self._loading.get(full) is future:
                del self._loading[full]
        future.set_result(loaded)
        if self.ttl > 0 and self._generation.get(tenant_id, 0) == generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            now = self._timer()
            self._entries[full] = _Entry(loaded, now + self.ttl, now + self.ttl * REFRESH_AHEAD)
        return loaded

    def _reload_behind(
        self, full: tuple[str, Hashable], load: Callable[[], Awaitable[Any]]
    ) -> None:
        """Reload ``full`` in a task of its own; callers keep the current value meanwhile."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[full] = future

        async def reload() -> None:
            try:
                await self._load(full, load, future)
            except Exception as exc:  # the entry expires as it would have; a caller reloads
                log.warning("configuration reload failed", error=type(exc).__name__)

        task = asyncio.get_running_loop().create_task(reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def aclose(self) -> None:
        """Wait for the reloads running in the background (before the database closes)."""
        await asyncio.gather(*self._reloads, return_exceptions=True)

    def invalidate(self, tenant_id: str) -> None:
        """Forget everything cached for ``tenant_id`` (its configuration just changed)."""
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        for full in [k for k in self._entries if k[0] == tenant_id]:
            del self._entries[full]
        # A load in flight began before the change: callers from now on start their own.
        for full in [k for k in self._loading if k[0] == tenant_id]:
            del self._loading[full]
