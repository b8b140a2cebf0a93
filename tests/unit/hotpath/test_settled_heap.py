"""A serving process settles its heap: start-up objects frozen, young passes rarer."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator

import pytest

from pavilion import serving


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The test process's collector as it was (thresholds, nothing left frozen)."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Garbage:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_settle_heap_freezes_start_up_and_raises_the_young_threshold(restored_gc: None) -> None:
    before = gc.get_freeze_count()
    serving.settle_heap()
    assert gc.get_freeze_count() > before
    assert gc.get_threshold() == serving.GC_THRESHOLDS
    # Cycles made after start-up are still found and freed.
    _Garbage()
    assert gc.collect() >= 1


def test_the_foreground_server_settles_the_heap_before_serving(
    restored_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    monkeypatch.setattr(serving, "settle_heap", lambda: order.append("settled"))

    class Server:
        started = False
        should_exit = False

        def run(self, sockets: list[socket.socket] | None = None) -> None:
            order.append("served")

    serving.serve_in_foreground(Server(), "127.0.0.1", 0)
    assert order == ["settled", "served"]
