"""Load and measurement: request shapes, workers that send back-to-back requests for a fixed
time, and the figures of one measured phase (latencies, errors, CPU per process, stage CPU).

Each worker holds one raw HTTP/1.1 keep-alive connection (``e2e.rawhttp``: tens of microseconds
of CPU per request). The load generator shares this 2-core machine with the servers it measures:
with httpx (about 1 ms of CPU per request, 0.4 of a core at 390 requests/s) it took CPU the
servers needed, and the figures measured the client as much as the connector.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from e2e.rawhttp import Connection, collector_paused
from pavilion.synth.roster import StudentRecord

SEED: Final = 20240611
UNKNOWN_SHARE: Final = 0.10
RESIDENCY: Final = "EU"
PURPOSE: Final = "benchmark: student discount eligibility"
REQUEST_TIMEOUT_S: Final = 30.0
ERROR_SAMPLES: Final = 5


@dataclass(frozen=True)
class Case:
    """One request shape: the connector's body and the agent's body for the same subject."""

    verification: bytes
    lookup: bytes


def unknown_student_id(rng: random.Random, taken: set[str]) -> str:
    while (candidate := f"S{rng.randrange(10**7):07d}") in taken:
        pass
    return candidate


def build_cases(records: Sequence[StudentRecord], count: int, provider_id: str) -> list[Case]:
    """``count`` request shapes: current students mostly, some subjects nobody has."""
    rng = random.Random(SEED)
    current = [r for r in records if r.enrolment_status == "enrolled"]
    taken = {r.student_id for r in records}
    cases = []
    for _ in range(count):
        if rng.random() < UNKNOWN_SHARE:
            claim: dict[str, Any] = {"type": "student_status"}
            identifiers = {"student_id": unknown_student_id(rng, taken)}
        else:
            record = rng.choice(current)
            if rng.random() < 0.5:
                claim, identifiers = {"type": "student_status"}, {"student_id": record.student_id}
            else:
                claim, identifiers = {"type": "age_over", "threshold": 18}, {"email": record.email}
        body = {
            "provider_id": provider_id,
            "claim": claim,
            "subject": {"identifiers": identifiers, "residency": RESIDENCY},
            "purpose": PURPOSE,
            "format": "jwt_vc",
        }
        cases.append(
            Case(
                verification=json.dumps(body).encode(),
                lookup=json.dumps({"identifiers": identifiers}).encode(),
            )
        )
    return cases


@dataclass
class LevelResult:
    """One measured phase against one target at one concurrency."""

    target: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    #: CPU milliseconds used during the phase: loadgen, agent, connector (its process tree),
    #: postgres (every PostgreSQL server process), machine (all cores, everything).
    cpu_ms: dict[str, float | None] = field(default_factory=dict)
    #: Stage CPU milliseconds charged during the phase (stage timing on), from /metrics.
    stage_ms: dict[str, float] = field(default_factory=dict)

    def ok(self, ms: float) -> None:
        self.latencies_ms.append(ms)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail[:300]}")

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors.total()

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of successful latencies (NaN when there are none)."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def cpu_per_request(self, who: str) -> float | None:
        total = self.cpu_ms.get(who)
        return None if total is None or not self.requests else total / self.requests

    @property
    def other_cores(self) -> float | None:
        """Cores that processes other than these (and PostgreSQL) kept busy meanwhile."""
        machine = self.cpu_ms.get("machine")
        ours = [self.cpu_ms.get(w) for w in ("loadgen", "agent", "connector", "postgres")]
        if machine is None or not self.elapsed_s:
            return None
        return max(0.0, machine - sum(o or 0.0 for o in ours)) / 1000 / self.elapsed_s

    def stages_per_request(self) -> dict[str, float] | None:
        """CPU ms per request per stage, plus ``outside`` (the process's CPU outside any
        task: HTTP parsing in protocol callbacks, the loop, other threads) and ``total``."""
        connector = self.cpu_ms.get("connector")
        if not self.stage_ms or connector is None or not self.requests:
            return None
        per = {name: ms / self.requests for name, ms in self.stage_ms.items()}
        total = connector / self.requests
        per["outside"] = total - sum(per.values())
        per["total"] = total
        return per


#: One request of a shape on a connection: the answer's status and body.
Send = Callable[[Connection, Case], Awaitable[tuple[int, bytes]]]


async def drive(
    send: Send,
    cases: Sequence[Case],
    connections: list[Connection],
    port: int,
    seconds: float,
    result: LevelResult,
) -> None:
    """One worker per connection, each sending back-to-back requests until ``seconds`` have
    passed; a worker whose connection fails counts the error and opens a new one."""
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        rng = random.Random(SEED * 1000 + number)
        while time.perf_counter() < deadline:
            case = cases[rng.randrange(len(cases))]
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, body = await send(connections[number], case)
            except (OSError, TimeoutError) as exc:
                result.error(type(exc).__name__, str(exc) or repr(exc))
                connections[number].close()
                connections[number] = await Connection.open("127.0.0.1", port)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if 200 <= status < 300:
                result.ok(elapsed_ms)
                if result.target != "direct":
                    result.decisions[str(json.loads(body).get("outcome"))] += 1
            else:
                result.error(f"HTTP {status}", body.decode(errors="replace"))

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(len(connections))))
    result.elapsed_s = time.perf_counter() - started


#: CPU seconds per process (or per group of processes, any value that subtracts to seconds).
Snapshot = Callable[[], dict[str, Any]]
StageScrape = Callable[[], dict[str, float]]


async def run_level(
    target: str,
    port: int,
    send: Send,
    cases: Sequence[Case],
    concurrency: int,
    warmup_s: float,
    seconds: float,
    snapshot: Snapshot,
    stages: StageScrape | None = None,
) -> LevelResult:
    """Warm up, then measure. ``snapshot`` reads CPU seconds per process; ``stages``, when
    given, the connector's stage totals (read outside the CPU window: the scrape's own cost
    stays out of the process figures)."""
    connections = [await Connection.open("127.0.0.1", port) for _ in range(concurrency)]
    with collector_paused():
        try:
            await drive(send, cases, connections, port, warmup_s, LevelResult(target, concurrency))
            result = LevelResult(target, concurrency)
            stages_before = stages() if stages else {}
            before = snapshot()
            await drive(send, cases, connections, port, seconds, result)
            after = snapshot()
            stages_after = stages() if stages else {}
        finally:
            for connection in connections:
                connection.close()
    for who in before:
        b, a = before[who], after.get(who)
        result.cpu_ms[who] = None if a is None or b is None else (a - b) * 1000
    result.stage_ms = {
        name: (stages_after[name] - stages_before.get(name, 0.0)) * 1000 for name in stages_after
    }
    return result
