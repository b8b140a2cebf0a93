"""When to try a failed PKCS#11 token again: exponential backoff, one attempt at a time.

:class:`Recovery` is the pure state a :class:`~pavilion.keystore.pkcs11.token.Pkcs11Token`
keeps about its own health. The signing path reads one attribute (:attr:`Recovery.failed`) in
the happy path; everything else runs only after a failure:

* :meth:`failure` records that the token could not sign and schedules the next attempt
  (``initial_s``, doubled after every failed attempt, at most ``max_s``);
* :meth:`claim` answers whether the caller may make that attempt now, and hands it out to one
  caller at a time (the others fail over, or fail fast, until the attempt is settled);
* :meth:`success` clears the failure; :meth:`retry_after_s` is the ``Retry-After`` to answer.

The clock is injected (``time.monotonic`` by default) so that unit tests drive it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Recovery:
    """Backoff state of one token (thread-safe; the happy path only reads ``failed``)."""

    __slots__ = (
        "_attempting",
        "_clock",
        "_delay",
        "_initial",
        "_lock",
        "_max",
        "_next_at",
        "failed",
        "failures",
        "last_error",
    )

    def __init__(
        self,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self._initial = initial_s
        self._max = max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._delay = initial_s
        self._next_at = 0.0
        self._attempting = False
        #: True from the first failure until a call through the token succeeds again.
        self.failed = False
        #: Consecutive failed attempts (0 when healthy).
        self.failures = 0
        #: ``Type: detail`` of the last failure, for logs and diagnostics.
        self.last_error = ""

    def failure(self, error: str) -> None:
        """The token could not do its work: wait before the next attempt (longer each time)."""
        with self._lock:
            if self.failed:
                self._delay = min(self._delay * 2, self._max)
            else:
                self._delay = self._initial
            self.failed = True
            self.failures += 1
            self.last_error = error
            self._next_at = self._clock() + self._delay
            self._attempting = False

    def claim(self) -> bool:
        """True if the caller may try the failed token now (then it must report the outcome)."""
        with self._lock:
            if not self.failed or self._attempting or self._clock() < self._next_at:
                return False
            self._attempting = True
            return True

    def release(self) -> None:
        """A claimed attempt ended without an outcome (cancelled): let another caller try."""
        with self._lock:
            self._attempting = False

    def success(self) -> None:
        with self._lock:
            self.failed = False
            self.failures = 0
            self.last_error = ""
            self._delay = self._initial
            self._attempting = False

    def retry_after_s(self) -> int:
        """Whole seconds until the next attempt (at least 1): the ``Retry-After`` to answer."""
        with self._lock:
            return max(1, math.ceil(self._next_at - self._clock()))
