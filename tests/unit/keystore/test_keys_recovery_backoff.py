"""When a failed HSM token is tried again: backoff that doubles, one attempt at a time."""

from __future__ import annotations

import pytest

from pavilion.keystore.pkcs11.recovery import Recovery


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_healthy_token_is_never_claimed_for_recovery() -> None:
    recovery = Recovery(1.0, 8.0, Clock())
    assert not recovery.failed
    assert not recovery.claim()


def test_attempts_wait_longer_after_each_failure_up_to_the_maximum() -> None:
    clock = Clock()
    recovery = Recovery(1.0, 4.0, clock)
    recovery.failure("DeviceError")
    assert (recovery.failed, recovery.failures, recovery.last_error) == (True, 1, "DeviceError")
    assert recovery.retry_after_s() == 1
    assert not recovery.claim()  # not due yet: callers fail fast (or fail over)
    waits = []
    for _ in range(4):
        clock.now += 10
        assert recovery.claim()
        assert not recovery.claim()  # one attempt at a time
        recovery.failure("TokenNotPresent")
        waits.append(recovery.retry_after_s())
    assert waits == [2, 4, 4, 4]
    clock.now += 3.5
    assert recovery.retry_after_s() == 1  # never 0: Retry-After says "later", not "now"


def test_success_clears_the_failure_and_restarts_the_backoff() -> None:
    clock = Clock()
    recovery = Recovery(0.5, 4.0, clock)
    recovery.failure("x")
    clock.now += 1
    assert recovery.claim()
    recovery.success()
    assert (recovery.failed, recovery.failures, recovery.last_error) == (False, 0, "")
    recovery.failure("y")
    assert recovery.retry_after_s() == 1
    clock.now += 0.5
    assert recovery.claim()


def test_an_abandoned_attempt_lets_the_next_caller_try() -> None:
    clock = Clock()
    recovery = Recovery(1.0, 4.0, clock)
    recovery.failure("x")
    clock.now += 1
    assert recovery.claim()
    recovery.release()  # the caller was cancelled before it knew the outcome
    assert recovery.claim()


@pytest.mark.parametrize(("initial", "maximum"), [(0, 1), (2, 1), (-1, 5)])
def test_backoff_bounds_are_checked(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="0 < initial_s <= max_s"):
        Recovery(initial, maximum)
