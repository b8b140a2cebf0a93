"""Wait for a condition, with a deadline: never for a fixed time that races the work.

A test that orders work (a background refresh, a probe loop, a queued job) polls the state it
waits for; the deadline is only there so that a hang fails with a message instead of hanging.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE_S = 10.0
_POLL_S = 0.005


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE_S, what: str = "") -> None:
    """Block until ``condition()`` holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s: {what or condition}")
        time.sleep(_POLL_S)


async def until(condition: Callable[[], bool], timeout: float = DEADLINE_S, what: str = "") -> None:
    """Yield to the event loop until ``condition()`` holds; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s: {what or condition}")
        await asyncio.sleep(_POLL_S)
