"""What the connector knows about one DP endpoint's health, and the changes worth reporting.

Pure code: every method takes the time (``now``, monotonic seconds) and returns the
:class:`HealthChange` records it caused, which the I/O edge turns into audit entries,
metrics and logs. An endpoint is *available* for new calls when it is not ejected, its
breaker lets a call through, and active probes have not marked it unhealthy.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pavilion.connect.balancing import PeakEwma, load_score
from pavilion.connect.breaker import BreakerState, BreakerTransition, CircuitBreaker
from pavilion.connect.budget import RollingCounter
from pavilion.connect.config import ConnectConfig
from pavilion.connect.outlier import OutlierChange, OutlierState, OutlierTransition


class Status(StrEnum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    OPEN = "open"
    HALF_OPEN = "half-open"
    UNHEALTHY = "unhealthy"


class FailureKind(StrEnum):
    """Why a call failed; every one counts against the endpoint's health."""

    CONNECT = "unreachable"
    TIMEOUT = "timeout"
    HTTP_5XX = "http_5xx"
    GARBAGE = "bad_response"
    TLS = "tls_error"


@dataclass(frozen=True)
class HealthChange:
    """A state change of one endpoint: ``kind`` names it, ``data`` holds ids and numbers only."""

    kind: str
    data: dict[str, Any]


@dataclass
class ProbeState:
    healthy: bool | None = None  # None: not probed yet
    successes: int = 0
    failures: int = 0
    last_probe_at: float | None = None


LATENCY_SAMPLES = 256
ERROR_WINDOW_S = 60.0


@dataclass
class EndpointHealth:
    config: ConnectConfig
    ewma: PeakEwma = field(init=False)
    outlier: OutlierState = field(init=False)
    breaker: CircuitBreaker = field(init=False)
    probe: ProbeState = field(default_factory=ProbeState)
    in_flight: int = 0
    requests_total: int = 0
    failures_total: int = 0
    last_used: float = 0.0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    _calls: RollingCounter = field(init=False)
    _failures: RollingCounter = field(init=False)
    _p95_cache: tuple[int, float] | None = None
    _samples_seen: int = 0

    def __post_init__(self) -> None:
        self.ewma = PeakEwma(decay_s=self.config.balancer.decay_s)
        self.outlier = OutlierState(self.config.outlier)
        self.breaker = CircuitBreaker(self.config.breaker)
        self._calls = RollingCounter(ERROR_WINDOW_S, 12)
        self._failures = RollingCounter(ERROR_WINDOW_S, 12)

    # --- reading -------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        return (
            not self.outlier.is_ejected(now)
            and self.breaker.allows(now)
            and self.probe.healthy is not False
        )

    def status(self, now: float) -> Status:
        if self.outlier.is_ejected(now):
            return Status.EJECTED
        breaker = self.breaker.current(now)
        if breaker is BreakerState.OPEN:
            return Status.OPEN
        if self.probe.healthy is False:
            return Status.UNHEALTHY
        if breaker is BreakerState.HALF_OPEN:
            return Status.HALF_OPEN
        return Status.HEALTHY

    def score(self, weight: float, now: float) -> float:
        return load_score(
            self.ewma, self.in_flight, weight, now, self.config.balancer.default_rtt_s
        )

    def error_rate(self, now: float) -> float:
        calls = self._calls.total(now)
        return self._failures.total(now) / calls if calls else 0.0

    def p95(self) -> float | None:
        """The 95th percentile of recent latencies, once there are enough samples to hedge on."""
        if len(self.latencies) < self.config.hedge_min_samples:
            return None
        if self._p95_cache is None or self._samples_seen - self._p95_cache[0] >= 16:
            ordered = sorted(self.latencies)
            rank = max(math.ceil(0.95 * len(ordered)) - 1, 0)
            self._p95_cache = (self._samples_seen, ordered[rank])
        return self._p95_cache[1]

    # --- calls ---------------------------------------------------------------------------

    def start(self, now: float) -> list[HealthChange]:
        self.in_flight += 1
        self.last_used = now
        change = self._breaker_change(self.breaker.on_start(now))
        return [change] if change else []

    def cancel(self) -> None:
        self.in_flight = max(self.in_flight - 1, 0)
        self.breaker.on_cancel()

    def succeed(self, latency_s: float, now: float) -> list[HealthChange]:
        self.in_flight = max(self.in_flight - 1, 0)
        self.requests_total += 1
        self._calls.add(now)
        self.ewma.observe(latency_s, now)
        self.latencies.append(latency_s)
        self._samples_seen += 1
        changes = [
            self._breaker_change(self.breaker.on_result(True, now)),
            self._outlier_change(self.outlier.record(True, now, may_eject=False)),
        ]
        return [c for c in changes if c is not None]

    def fail(
        self, kind: FailureKind, latency_s: float, now: float, *, may_eject: bool
    ) -> list[HealthChange]:
        self.in_flight = max(self.in_flight - 1, 0)
        self.requests_total += 1
        self.failures_total += 1
        self._calls.add(now)
        self._failures.add(now)
        # A failure counts as at least as slow as it took, so the balancer shies away from it.
        self.ewma.observe(max(latency_s, self.config.balancer.default_rtt_s), now)
        changes = [
            self._breaker_change(self.breaker.on_result(False, now)),
            self._outlier_change(self.outlier.record(False, now, may_eject=may_eject), kind),
        ]
        return [c for c in changes if c is not None]

    def advance(self, now: float) -> list[HealthChange]:
        """Changes due to time alone: an ejection that ran out."""
        change = self._outlier_change(self.outlier.advance(now))
        return [change] if change else []

    # --- active probes -------------------------------------------------------------------

    def probed(self, ok: bool, now: float) -> list[HealthChange]:
        probe = self.probe
        probe.last_probe_at = now
        changes: list[HealthChange] = []
        if ok:
            probe.successes, probe.failures = probe.successes + 1, 0
            if probe.healthy is None:
                probe.healthy = True
            elif probe.healthy is False and probe.successes >= self.config.probe.healthy_threshold:
                # Recovery seen by the probes (down, then up again) lifts an ejection at once;
                # a probe that never failed is no evidence against the failures that ejected.
                probe.healthy = True
                changes.append(HealthChange("probe_healthy", {}))
                lifted = self._outlier_change(self.outlier.lift(now))
                if lifted is not None:
                    changes.append(lifted)
        else:
            probe.failures, probe.successes = probe.failures + 1, 0
            threshold = self.config.probe.unhealthy_threshold
            if probe.failures >= threshold and probe.healthy is not False:
                probe.healthy = False
                changes.append(HealthChange("probe_unhealthy", {"failures": probe.failures}))
        return changes

    # --- helpers -------------------------------------------------------------------------

    def _breaker_change(self, transition: BreakerTransition | None) -> HealthChange | None:
        if transition is None:
            return None
        return HealthChange(
            "breaker_" + transition.after.value.replace("-", "_"),
            {
                "from": transition.before.value,
                "to": transition.after.value,
                "failure_ratio": transition.failure_ratio,
            },
        )

    def _outlier_change(
        self, transition: OutlierTransition | None, kind: FailureKind | None = None
    ) -> HealthChange | None:
        if transition is None:
            return None
        if transition.change is OutlierChange.EJECTED:
            return HealthChange(
                "endpoint_ejected",
                {
                    "consecutive_failures": transition.consecutive_failures,
                    "last_failure": kind.value if kind else None,
                    "ejection_s": transition.duration_s,
                    "multiplier": transition.multiplier,
                },
            )
        return HealthChange("endpoint_returned", {"multiplier": transition.multiplier})
