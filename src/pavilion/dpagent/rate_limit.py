"""Per-tenant token buckets that bound how many OPRF evaluations a connector tenant may ask for.

Each evaluation lets the caller test one guess against the DP's roster, so the bucket counts
evaluated elements, not requests: a batch of 500 costs 500 tokens. A bucket holds at most
``burst`` tokens and refills at ``rate`` tokens per second; the clock is injected for tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

#: Buckets kept at most; the least recently used is forgotten first (a forgotten bucket
#: starts full again, so this bounds memory, not the guarantee for active tenants).
MAX_TENANTS: Final = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TenantRateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, tenant: str, cost: int) -> float | None:
        """Spend ``cost`` tokens; ``None`` when allowed, else seconds until it would be."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(tenant, None) or _Bucket(float(self.burst), now)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
            self._buckets[tenant] = bucket
            while len(self._buckets) > MAX_TENANTS:
                self._buckets.popitem(last=False)
            if cost > self.burst:
                return math.inf
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return None
            return (cost - bucket.tokens) / self.rate

    def remaining(self, tenant: str) -> float:
        with self._lock:
            bucket = self._buckets.get(tenant)
        if bucket is None:
            return float(self.burst)
        return min(float(self.burst), bucket.tokens + (self._clock() - bucket.updated) * self.rate)
