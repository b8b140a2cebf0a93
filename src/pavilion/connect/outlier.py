"""Passive outlier detection in the manner of Envoy's: eject after consecutive failures.

An endpoint that fails ``consecutive_failures`` calls in a row (connection errors, timeouts,
5xx, garbage) is ejected from balancing for ``base_ejection_s * n`` seconds, n being its
ejection multiplier, which grows by one per ejection and shrinks by one for every
``base_ejection_s`` the endpoint then spends un-ejected; the time is capped at
``max_ejection_s``. A passing active health check lifts an ejection early. Pure code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pavilion.connect.config import OutlierConfig


class OutlierChange(StrEnum):
    EJECTED = "ejected"
    RETURNED = "returned"


@dataclass(frozen=True)
class OutlierTransition:
    change: OutlierChange
    multiplier: int
    duration_s: float
    consecutive_failures: int


@dataclass
class OutlierState:
    config: OutlierConfig
    consecutive_failures: int = 0
    ejected_until: float | None = None
    multiplier: int = 0
    ejections: int = 0
    calm_since: float = 0.0

    def is_ejected(self, now: float) -> bool:
        return self.ejected_until is not None and now < self.ejected_until

    def advance(self, now: float) -> OutlierTransition | None:
        """Time-based changes: an ejection that ran out returns the endpoint; calm time decays n."""
        if self.ejected_until is not None:
            if now < self.ejected_until:
                return None
            self.ejected_until = None
            self.calm_since = now
            return OutlierTransition(OutlierChange.RETURNED, self.multiplier, 0.0, 0)
        base = self.config.base_ejection_s
        while self.multiplier > 0 and now - self.calm_since >= base:
            self.multiplier -= 1
            self.calm_since += base
        return None

    def record(self, success: bool, now: float, *, may_eject: bool) -> OutlierTransition | None:
        """Count one call's outcome; ``may_eject`` is False when the ejection cap is reached."""
        change = self.advance(now)
        if success:
            self.consecutive_failures = 0
            return change
        self.consecutive_failures += 1
        if (
            self.consecutive_failures >= self.config.consecutive_failures
            and not self.is_ejected(now)
            and may_eject
        ):
            return self._eject(now)
        return change

    def lift(self, now: float) -> OutlierTransition | None:
        """An active health check passed: return an ejected endpoint at once."""
        if not self.is_ejected(now):
            return None
        self.ejected_until = None
        self.consecutive_failures = 0
        self.calm_since = now
        return OutlierTransition(OutlierChange.RETURNED, self.multiplier, 0.0, 0)

    def _eject(self, now: float) -> OutlierTransition:
        failures = self.consecutive_failures
        self.multiplier += 1
        self.ejections += 1
        duration = min(self.config.base_ejection_s * self.multiplier, self.config.max_ejection_s)
        self.ejected_until = now + duration
        self.consecutive_failures = 0
        return OutlierTransition(OutlierChange.EJECTED, self.multiplier, duration, failures)


def may_eject(ejected: int, total: int, max_percent: float) -> bool:
    """Whether one more of ``total`` endpoints may be ejected with ``ejected`` already out."""
    if total <= 0:
        return False
    if ejected == 0:
        return True  # as Envoy: at least one endpoint may always be ejected
    return (ejected + 1) * 100.0 <= max_percent * total
