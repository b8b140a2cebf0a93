"""CPU per stage of the hot path, measured by cheap timers that stay in the code.

With stage timing enabled (``PAVILION_STAGE_TIMING``), every task the event loop creates
is wrapped so that each step of its coroutine (the CPU work between two awaits) is charged,
in thread CPU time, to the stage that task is in. A task starts in ``other``; a request
task starts in ``http`` and moves through the stages its code names with
``with stage("fetch"): ...``. A step runs uninterrupted, so nothing that another task does
while this one waits is charged to it: the totals add up to the CPU of the event loop's
thread spent inside tasks. What is spent outside any task (uvicorn parsing HTTP in its
protocol callbacks, the event loop itself, other threads) is the process's CPU minus these
totals; a benchmark that measures the process reports it as the remainder.

Disabled, ``stage()`` costs one global read and nothing is wrapped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any

#: The stages of a verification, in the order a request meets them (docs/PERFORMANCE.md).
STAGES = ("http", "admit", "plan", "fetch", "decide", "issue", "persist", "other")

#: Seconds of thread CPU charged to each stage since the process started.
_totals: dict[str, float] = dict.fromkeys(STAGES, 0.0)


class _Now:
    """The wrapped coroutine whose step is running now (one at a time per event loop thread)."""

    __slots__ = ("running",)

    def __init__(self) -> None:
        self.running: _TimedCoroutine | None = None


_now = _Now()
_clock = time.thread_time


def totals() -> dict[str, float]:
    """A copy of the CPU seconds charged per stage so far."""
    return dict(_totals)


def charge(stage_name: str, seconds: float) -> None:
    _totals[stage_name] = _totals.get(stage_name, 0.0) + seconds


class _TimedCoroutine(Coroutine[Any, Any, Any]):
    """Wraps a task's coroutine; charges each step's thread CPU to its current stage."""

    __slots__ = ("_coro", "mark", "stage")

    def __init__(self, coro: Coroutine[Any, Any, Any], stage_name: str) -> None:
        self._coro = coro
        self.stage = stage_name
        self.mark = 0.0  # thread CPU clock when this step, or its current stage, began

    def switch(self, stage_name: str) -> str:
        """Charge the step so far to the current stage and go on in ``stage_name``."""
        now = _clock()
        _totals[self.stage] = _totals.get(self.stage, 0.0) + (now - self.mark)
        self.mark = now
        previous, self.stage = self.stage, stage_name
        return previous

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, *args: Any) -> Any:
        return self._step(self._coro.throw, *args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:  # pragma: no cover - tasks call send
        return self._coro.__await__()

    def _step(self, step: Any, *args: Any) -> Any:
        outer, _now.running = _now.running, self
        self.mark = _clock()
        try:
            return step(*args)
        finally:
            _totals[self.stage] = _totals.get(self.stage, 0.0) + (_clock() - self.mark)
            _now.running = outer


def _timed_task_factory(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
) -> asyncio.Task[Any]:
    running = _now.running
    stage_name = running.stage if running is not None else "other"
    # A task started from a request (a group commit's flush, say) is charged where it starts.
    return asyncio.Task(_TimedCoroutine(coro, stage_name), loop=loop, **kwargs)


def enable(loop: asyncio.AbstractEventLoop) -> None:
    """Time every task created on ``loop`` from now on."""
    loop.set_task_factory(_timed_task_factory)  # type: ignore[arg-type]


def disable(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_task_factory(None)


def enabled(loop: asyncio.AbstractEventLoop) -> bool:
    return loop.get_task_factory() is _timed_task_factory


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Charge the CPU of the enclosed code (in this task) to stage ``name``."""
    current = _now.running
    if current is None:
        yield
        return
    previous = current.switch(name)
    try:
        yield
    finally:
        # The block may end in a later step of the same task: that task is running now.
        current.switch(previous)


def enter(name: str) -> None:
    """Move the running task to stage ``name`` until it names another (no block to close)."""
    current = _now.running
    if current is not None:
        current.switch(name)
