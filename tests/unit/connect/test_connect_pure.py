"""Balancing, breaker, outlier ejection, retry budget and endpoint health, without a network."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pavilion.connect.balancing import PeakEwma, load_score, power_of_two_choices
from pavilion.connect.breaker import BreakerState, CircuitBreaker
from pavilion.connect.budget import RetryBudget, RollingCounter
from pavilion.connect.config import (
    BreakerConfig,
    BudgetConfig,
    ConnectConfig,
    OutlierConfig,
    ProbeConfig,
)
from pavilion.connect.health import EndpointHealth, FailureKind, Status
from pavilion.connect.outlier import OutlierChange, OutlierState, may_eject


def test_peak_ewma_jumps_to_peaks_and_decays_towards_faster_answers() -> None:
    ewma = PeakEwma(decay_s=10.0)
    assert ewma.estimate(0.0) is None
    ewma.observe(0.010, 0.0)
    ewma.observe(0.200, 1.0)  # a slower answer replaces the estimate at once
    assert ewma.estimate(1.0) == pytest.approx(0.200)
    ewma.observe(0.010, 11.0)  # a faster one is blended in by the time since the last
    estimate = ewma.estimate(11.0)
    assert estimate is not None
    assert 0.010 < estimate < 0.200
    # Without observations the cost decays, so a once-slow endpoint is tried again.
    later = ewma.estimate(60.0)
    assert later is not None
    assert later < estimate


def test_load_score_grows_with_in_flight_and_shrinks_with_weight() -> None:
    ewma = PeakEwma()
    ewma.observe(0.02, 0.0)
    base = load_score(ewma, 0, 1.0, 0.0, 0.03)
    assert load_score(ewma, 3, 1.0, 0.0, 0.03) == pytest.approx(4 * base)
    assert load_score(ewma, 0, 2.0, 0.0, 0.03) == pytest.approx(base / 2)
    assert load_score(PeakEwma(), 0, 1.0, 0.0, 0.03) == pytest.approx(0.03)  # unknown: default


def test_power_of_two_choices_prefers_the_cheaper_of_two() -> None:
    rng = random.Random(4)
    costs = {"fast": 0.01, "slow": 1.0}
    picks = [power_of_two_choices(["fast", "slow"], costs.__getitem__, rng) for _ in range(50)]
    assert set(picks) == {"fast"}
    assert power_of_two_choices(["only"], costs.get, rng) == "only"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        power_of_two_choices([], costs.__getitem__, rng)


def test_power_of_two_choices_spreads_ties_and_never_picks_the_worst_of_many() -> None:
    rng = random.Random(1)
    ties = [power_of_two_choices(["a", "b"], lambda _: 1.0, rng) for _ in range(200)]
    assert 60 < ties.count("a") < 140
    scores = {f"e{i}": float(i) for i in range(10)}
    picks = {power_of_two_choices(list(scores), scores.__getitem__, rng) for _ in range(500)}
    assert "e9" not in picks  # the worst endpoint always loses its pairing


@given(st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=50))
def test_peak_ewma_stays_within_observed_bounds(samples: list[float]) -> None:
    ewma = PeakEwma(decay_s=1.0)
    for i, rtt in enumerate(samples):
        ewma.observe(rtt, float(i))
    estimate = ewma.estimate(float(len(samples) - 1))
    assert estimate is not None
    assert min(samples) - 1e-9 <= estimate <= max(samples) + 1e-9


def test_breaker_opens_on_failure_ratio_half_opens_then_closes_on_success() -> None:
    breaker = CircuitBreaker(BreakerConfig(window=10, min_calls=4, failure_ratio=0.5, open_s=5))
    for ok in (True, False, True):
        assert breaker.on_result(ok, 0.0) is None
    opened = breaker.on_result(False, 1.0)  # 2 of 4 failed
    assert opened is not None
    assert (opened.before, opened.after) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
    )
    assert not breaker.allows(3.0)
    assert breaker.current(3.0) is BreakerState.OPEN
    assert breaker.current(6.0) is BreakerState.HALF_OPEN
    assert breaker.allows(6.0)
    trial = breaker.on_start(6.0)
    assert trial is not None
    assert trial.after is BreakerState.HALF_OPEN
    assert not breaker.allows(6.0)  # one trial at a time
    closed = breaker.on_result(True, 6.1)
    assert closed is not None
    assert closed.after is BreakerState.CLOSED
    assert breaker.failure_ratio() == 0.0


def test_breaker_reopens_when_the_trial_fails_and_frees_cancelled_trials() -> None:
    breaker = CircuitBreaker(BreakerConfig(window=4, min_calls=2, failure_ratio=0.5, open_s=1))
    breaker.on_result(False, 0.0)
    breaker.on_result(False, 0.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.on_result(False, 0.5) is None  # a late answer from before it opened
    breaker.on_start(2.0)
    breaker.on_cancel()
    assert breaker.allows(2.0)  # the cancelled trial gave its slot back
    breaker.on_start(2.0)
    reopened = breaker.on_result(False, 2.1)
    assert reopened is not None
    assert reopened.after is BreakerState.OPEN
    assert not breaker.allows(2.5)


def test_outlier_ejection_grows_and_decays_like_envoy() -> None:
    state = OutlierState(
        OutlierConfig(consecutive_failures=3, base_ejection_s=10, max_ejection_s=25)
    )
    assert state.record(False, 0.0, may_eject=True) is None
    assert state.record(False, 0.0, may_eject=True) is None
    first = state.record(False, 0.0, may_eject=True)
    assert first is not None
    assert first.change is OutlierChange.EJECTED
    assert (first.duration_s, first.multiplier, first.consecutive_failures) == (10, 1, 3)
    assert state.is_ejected(9.9)
    assert not state.is_ejected(10.0)
    back = state.advance(10.0)
    assert back is not None
    assert back.change is OutlierChange.RETURNED
    for _ in range(3):
        second = state.record(False, 11.0, may_eject=True)
    assert second is not None
    assert second.duration_s == 20
    state.advance(31.0)
    for _ in range(3):
        third = state.record(False, 32.0, may_eject=True)
    assert third is not None
    assert third.duration_s == 25
    state.advance(57.0)
    state.advance(57.0 + 10 * 3)  # calm time lowers the multiplier again
    assert state.multiplier == 0
    assert state.ejections == 3


def test_outlier_success_resets_the_count_and_the_cap_prevents_ejection() -> None:
    state = OutlierState(OutlierConfig(consecutive_failures=2))
    state.record(False, 0.0, may_eject=True)
    state.record(True, 0.0, may_eject=True)
    assert state.record(False, 0.0, may_eject=True) is None
    assert state.record(False, 0.0, may_eject=False) is None  # the cap says no
    assert not state.is_ejected(0.0)
    ejected = state.record(False, 0.0, may_eject=True)
    assert ejected is not None
    lifted = state.lift(1.0)
    assert lifted is not None
    assert not state.is_ejected(1.0)
    assert state.lift(1.0) is None


def test_may_eject_allows_one_always_then_respects_the_percentage() -> None:
    assert may_eject(0, 2, 10.0)
    assert not may_eject(1, 2, 10.0)
    assert may_eject(1, 4, 50.0)
    assert not may_eject(2, 4, 50.0)
    assert not may_eject(0, 0, 100.0)


def test_rolling_counter_forgets_old_buckets() -> None:
    counter = RollingCounter(window_s=10.0, buckets=10)
    counter.add(0.5)
    counter.add(5.0, 2)
    assert counter.total(9.9) == 3
    assert counter.total(10.6) == 2  # the first second slid out
    assert counter.total(30.0) == 0


def test_retry_budget_keeps_retries_under_twenty_percent_under_load() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.2, window_s=10, min_per_s=0.1))
    allowed = 0
    for i in range(1000):
        now = i * 0.005  # 200 requests per second, each wanting a retry
        budget.record_request(now)
        allowed += budget.try_withdraw(now)
    assert allowed <= 0.2 * 1000 + 1  # plus the floor of one retry per window
    assert allowed >= 0.19 * 1000
    assert budget.refused == 1000 - allowed


def test_retry_budget_floor_lets_a_quiet_service_retry() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.2, window_s=10, min_per_s=0.3))
    budget.record_request(0.0)
    assert budget.try_withdraw(0.0)
    assert budget.try_withdraw(0.0)
    assert budget.try_withdraw(0.0)
    assert not budget.try_withdraw(0.0)  # floor 3 plus 0.2 of one request
    assert budget.try_withdraw(20.0)  # a new window


def _health(consecutive_failures: int = 2) -> EndpointHealth:
    config = ConnectConfig(
        outlier=OutlierConfig(consecutive_failures=consecutive_failures, base_ejection_s=5),
        breaker=BreakerConfig(window=10, min_calls=4, failure_ratio=0.5, open_s=3),
        probe=ProbeConfig(interval_s=1, healthy_threshold=2, unhealthy_threshold=2),
        hedge_min_samples=20,
    )
    return EndpointHealth(config)


def test_endpoint_health_ejects_after_consecutive_failures_and_reports_it() -> None:
    health = _health()
    assert health.status(0.0) is Status.HEALTHY
    assert health.available(0.0)
    health.start(0.0)
    assert health.in_flight == 1
    assert health.fail(FailureKind.CONNECT, 0.001, 0.0, may_eject=True) == []
    health.start(0.1)
    changes = health.fail(FailureKind.HTTP_5XX, 0.002, 0.1, may_eject=True)
    assert [c.kind for c in changes] == ["endpoint_ejected"]
    assert changes[0].data["last_failure"] == "http_5xx"
    assert health.status(1.0) is Status.EJECTED
    assert not health.available(1.0)
    assert [c.kind for c in health.advance(6.0)] == ["endpoint_returned"]
    assert health.error_rate(6.0) == 1.0
    assert (health.requests_total, health.failures_total, health.in_flight) == (2, 2, 0)


def test_endpoint_health_breaker_opens_and_shows_in_status() -> None:
    health = _health(consecutive_failures=100)
    kinds: list[str] = []
    for i, ok in enumerate([True, False, True, False]):
        kinds += [c.kind for c in health.start(float(i))]
        if ok:
            kinds += [c.kind for c in health.succeed(0.01, float(i))]
        else:
            kinds += [
                c.kind for c in health.fail(FailureKind.TIMEOUT, 0.5, float(i), may_eject=True)
            ]
    assert kinds == ["breaker_open"]
    assert health.status(4.0) is Status.OPEN
    assert health.status(7.0) is Status.HALF_OPEN
    assert [c.kind for c in health.start(7.0)] == ["breaker_half_open"]
    assert [c.kind for c in health.succeed(0.01, 7.1)] == ["breaker_closed"]
    health.start(8.0)
    health.cancel()
    assert health.in_flight == 0


def test_active_probes_mark_unhealthy_and_lift_ejections_when_healthy_again() -> None:
    health = _health()
    assert [c.kind for c in health.probed(True, 0.0)] == []  # first probe: healthy
    assert health.probe.healthy is True
    assert health.probed(False, 1.0) == []
    assert [c.kind for c in health.probed(False, 2.0)] == ["probe_unhealthy"]
    assert health.status(2.0) is Status.UNHEALTHY
    assert not health.available(2.0)
    for t in (3.0, 3.1):
        health.start(t)
        health.fail(FailureKind.CONNECT, 0.0, t, may_eject=True)
    assert health.outlier.is_ejected(3.5)
    assert health.probed(True, 4.0) == []
    assert [c.kind for c in health.probed(True, 5.0)] == ["probe_healthy", "endpoint_returned"]
    assert health.available(5.0)


def test_p95_needs_enough_samples() -> None:
    health = _health()
    for i in range(19):
        health.start(0.0)
        health.succeed(0.001 * (i + 1), 0.0)
    assert health.p95() is None
    for i in range(81):
        health.start(0.0)
        health.succeed(0.001 * (i + 20), 0.0)
    p95 = health.p95()
    assert p95 is not None
    assert p95 == pytest.approx(0.095)
