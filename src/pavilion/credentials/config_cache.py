"""The short-lived cache of configuration the credentials domain reads from the database.

Issuer keys, trust anchors and template defaults are reused for :data:`CACHE_SECONDS` (like
verified tokens), at most :data:`CACHE_MAX_ENTRIES` of them; a change on this node drops the
tenant's entries at once, another node sees it within the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache

#: How long trust material and defaults read from the database are reused (like tokens).
CACHE_SECONDS = 10.0
CACHE_MAX_ENTRIES = 10_000


class ConfigCache:
    """Configuration reads (issuer keys, trust anchors, defaults) for ``CACHE_SECONDS``.

    At most ``CACHE_MAX_ENTRIES`` entries: the least recently used one makes room.
    """

    def __init__(
        self, ttl: float = CACHE_SECONDS, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: TTLCache[Any, Any] = TTLCache(CACHE_MAX_ENTRIES, ttl, timer=timer)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> Any:
        return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value

    def drop(self, predicate: Callable[[Any], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            self._items.pop(key, None)
