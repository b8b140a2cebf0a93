"""Fault injection: slow, failing and nonsensical answers on demand.

The connector must survive a data provider that is slow, down or broken; these faults let its
tests and demos provoke each case. Draws come from one injected ``random.Random`` so a seeded
run misbehaves the same way every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pavilion.dpagent.config import FaultConfig
from pavilion.errors import PavilionError

#: Bodies served with status 200 and ``Content-Type: application/json`` by a garbage fault.
#: None is a valid lookup answer: some are not JSON at all, the rest break the schema.
GARBAGE_BODIES: Final[tuple[bytes, ...]] = (
    b'{"found": true, "record": {"student_id": "S12',
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b'{"found": "maybe"}',
    b'{"found": true, "record": {"student_id": 1234567}, "as_of": "yesterday"}',
    b"[]",
)


class InjectedFault(PavilionError):
    """The 500 answer of an ``error_rate`` fault."""

    code = "injected-fault"
    title = "Injected fault"


class Outcome(StrEnum):
    NORMAL = "normal"
    ERROR = "error"
    GARBAGE = "garbage"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """How one request misbehaves: first wait ``delay_s``, then answer per ``outcome``."""

    delay_s: float = 0.0
    outcome: Outcome = Outcome.NORMAL
    garbage: bytes = b""


class FaultInjector:
    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng

    def decide(self) -> FaultDecision:
        """Draw the fate of one request; draws nothing when no fault is configured."""
        config = self._config
        if not config.enabled:
            return FaultDecision()
        delay_ms = config.latency_ms
        if config.latency_jitter_ms:
            delay_ms += self._rng.uniform(0.0, config.latency_jitter_ms)
        if not (config.error_rate or config.garbage_rate):
            return FaultDecision(delay_s=delay_ms / 1000)
        draw = self._rng.random()
        if draw < config.error_rate:
            return FaultDecision(delay_s=delay_ms / 1000, outcome=Outcome.ERROR)
        if draw < config.error_rate + config.garbage_rate:
            garbage = self._rng.choice(GARBAGE_BODIES)
            return FaultDecision(delay_ms / 1000, Outcome.GARBAGE, garbage)
        return FaultDecision(delay_s=delay_ms / 1000)
