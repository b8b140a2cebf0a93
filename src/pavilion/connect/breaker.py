"""A circuit breaker per endpoint: closed, open, half-open. Pure: time is an argument.

Closed: calls pass; the outcome of the last ``window`` calls is kept. When at least
``min_calls`` were seen and the failed share reaches ``failure_ratio``, it opens.
Open: no call passes until ``open_s`` has passed since it opened.
Half-open: up to ``half_open_trials`` trial calls at once; one success closes the breaker
(with a clean window), one failure opens it again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from pavilion.connect.config import BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerTransition:
    before: BreakerState
    after: BreakerState
    failure_ratio: float


@dataclass
class CircuitBreaker:
    config: BreakerConfig = field(default_factory=BreakerConfig)
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    trials: int = 0
    outcomes: deque[bool] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.outcomes = deque(self.outcomes, maxlen=self.config.window)

    def allows(self, now: float) -> bool:
        """Whether a call may start now (without starting it)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now - self.opened_at >= self.config.open_s
        return self.trials < self.config.half_open_trials

    def current(self, now: float) -> BreakerState:
        """The state as a reader sees it: an open breaker whose time is up shows half-open."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.config.open_s:
            return BreakerState.HALF_OPEN
        return self.state

    def on_start(self, now: float) -> BreakerTransition | None:
        transition = None
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.config.open_s:
            transition = self._move(BreakerState.HALF_OPEN)
            self.trials = 0
        if self.state is BreakerState.HALF_OPEN:
            self.trials += 1
        return transition

    def on_result(self, success: bool, now: float) -> BreakerTransition | None:
        if self.state is BreakerState.HALF_OPEN:
            self.trials = max(self.trials - 1, 0)
            if success:
                self.outcomes.clear()
                return self._move(BreakerState.CLOSED)
            return self._open(now)
        if self.state is BreakerState.OPEN:
            return None  # a call that started before the breaker opened
        self.outcomes.append(success)
        if (
            len(self.outcomes) >= self.config.min_calls
            and self.failure_ratio() >= self.config.failure_ratio
        ):
            return self._open(now)
        return None

    def on_cancel(self) -> None:
        """A call that ended without an outcome (a hedge that lost) frees its trial slot."""
        if self.state is BreakerState.HALF_OPEN:
            self.trials = max(self.trials - 1, 0)

    def failure_ratio(self) -> float:
        if not self.outcomes:
            return 0.0
        return sum(1 for ok in self.outcomes if not ok) / len(self.outcomes)

    def _open(self, now: float) -> BreakerTransition:
        self.opened_at = now
        self.trials = 0
        return self._move(BreakerState.OPEN)

    def _move(self, after: BreakerState) -> BreakerTransition:
        transition = BreakerTransition(self.state, after, round(self.failure_ratio(), 3))
        self.state = after
        return transition
