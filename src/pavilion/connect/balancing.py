"""Endpoint choice: power of two choices over peak-EWMA latency (as Finagle and Linkerd do).

Each endpoint keeps a peak-sensitive, exponentially weighted moving average of its response
times: a slower response than the current estimate replaces it at once (the "peak"), a faster
one is blended in with a weight that depends on the time since the last observation, and the
estimate decays while nothing is observed, so an endpoint that was once slow is tried again.
The load score is ``cost * (in_flight + 1) / weight``. Two distinct candidates are drawn at
random and the one with the lower score wins; ties go to a coin flip.

Pure code: the clock and the random source are arguments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class PeakEwma:
    decay_s: float = 10.0
    cost_s: float = 0.0
    stamp: float = 0.0
    observed: bool = False

    def observe(self, rtt_s: float, now: float) -> None:
        rtt_s = max(rtt_s, 0.0)
        if not self.observed:
            self.cost_s, self.stamp, self.observed = rtt_s, now, True
            return
        elapsed = max(now - self.stamp, 0.0)
        self.stamp = max(now, self.stamp)
        if rtt_s > self.cost_s:
            self.cost_s = rtt_s
        else:
            weight = math.exp(-elapsed / self.decay_s)
            self.cost_s = self.cost_s * weight + rtt_s * (1.0 - weight)

    def estimate(self, now: float) -> float | None:
        """The current cost in seconds (decayed since the last observation), or None if unknown."""
        if not self.observed:
            return None
        return self.cost_s * math.exp(-max(now - self.stamp, 0.0) / self.decay_s)


def load_score(
    ewma: PeakEwma, in_flight: int, weight: float, now: float, default_rtt_s: float
) -> float:
    estimate = ewma.estimate(now)
    cost = default_rtt_s if estimate is None else estimate
    return cost * (in_flight + 1) / weight


def power_of_two_choices(
    candidates: Sequence[T], score: Callable[[T], float], rng: random.Random
) -> T:
    """The better of two distinct random candidates (the only one when there is one)."""
    if not candidates:
        raise ValueError("power_of_two_choices needs at least one candidate")
    if len(candidates) == 1:
        return candidates[0]
    first, second = rng.sample(range(len(candidates)), 2)
    a, b = candidates[first], candidates[second]
    score_a, score_b = score(a), score(b)
    if score_a == score_b:
        return a if rng.random() < 0.5 else b
    return a if score_a < score_b else b
