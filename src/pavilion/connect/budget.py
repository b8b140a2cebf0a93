"""A retry budget per provider (after Finagle's RetryBudget), in time buckets. Pure code.

Every request deposits ``ratio`` of a retry; every retry or hedge withdraws one. Over the
sliding ``window_s`` a retry is allowed while ``retries + 1 <= ratio * requests + floor``,
where the floor is ``min_per_s * window_s``. Under load that keeps retries under 20% of
requests, so a failing DP cannot be hit by a retry storm; when quiet, the floor still lets
the first failures be retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pavilion.connect.config import BudgetConfig


@dataclass
class RollingCounter:
    """Counts events in the last ``window_s`` seconds, in ``buckets`` slices."""

    window_s: float
    buckets: int
    _epochs: list[int] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._epochs = [-1] * self.buckets
        self._counts = [0] * self.buckets

    def _epoch(self, now: float) -> int:
        return int(now * self.buckets / self.window_s)

    def add(self, now: float, amount: int = 1) -> None:
        epoch = self._epoch(now)
        slot = epoch % self.buckets
        if self._epochs[slot] != epoch:
            self._epochs[slot], self._counts[slot] = epoch, 0
        self._counts[slot] += amount

    def total(self, now: float) -> int:
        epoch = self._epoch(now)
        return sum(
            count
            for e, count in zip(self._epochs, self._counts, strict=True)
            if epoch - self.buckets < e <= epoch
        )


@dataclass
class RetryBudget:
    config: BudgetConfig = field(default_factory=BudgetConfig)
    requests: RollingCounter = field(init=False)
    retries: RollingCounter = field(init=False)
    refused: int = 0

    def __post_init__(self) -> None:
        self.requests = RollingCounter(self.config.window_s, self.config.buckets)
        self.retries = RollingCounter(self.config.window_s, self.config.buckets)

    def record_request(self, now: float) -> None:
        self.requests.add(now)

    def allowance(self, now: float) -> float:
        floor = self.config.min_per_s * self.config.window_s
        return self.config.ratio * self.requests.total(now) + floor

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget if it has one."""
        if self.retries.total(now) + 1 <= self.allowance(now):
            self.retries.add(now)
            return True
        self.refused += 1
        return False
