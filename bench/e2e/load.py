"""Load and measurement: request shapes, workers that send back-to-back requests for a fixed
time, and the figures of one measured phase (latencies, errors, CPU per process, stage CPU).

Each worker has its own ``httpx.AsyncClient`` holding one HTTP/1.1 keep-alive connection: one
pool shared by all workers costs O(pool size) per request in httpcore's bookkeeping, which at
concurrency 100 made the load generator eat CPU the servers need.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

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


Send = Callable[[httpx.AsyncClient, Case], Awaitable[httpx.Response]]


async def drive(
    send: Send,
    cases: Sequence[Case],
    clients: Sequence[httpx.AsyncClient],
    seconds: float,
    result: LevelResult,
) -> None:
    """One worker per client, each sending back-to-back requests until ``seconds`` have passed."""
    deadline = time.perf_counter() + seconds

    async def worker(number: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(SEED * 1000 + number)
        while time.perf_counter() < deadline:
            case = cases[rng.randrange(len(cases))]
            started = time.perf_counter()
            try:
                response = await send(client, case)
            except httpx.HTTPError as exc:
                result.error(type(exc).__name__, str(exc) or repr(exc))
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if 200 <= response.status_code < 300:
                result.ok(elapsed_ms)
                if result.target != "direct":
                    result.decisions[str(response.json().get("outcome"))] += 1
            else:
                result.error(f"HTTP {response.status_code}", response.text)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n, client) for n, client in enumerate(clients)))
    result.elapsed_s = time.perf_counter() - started


#: CPU seconds per process (or per group of processes, any value that subtracts to seconds).
Snapshot = Callable[[], dict[str, Any]]
StageScrape = Callable[[], dict[str, float]]


async def run_level(
    target: str,
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
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()  # one for all (plain HTTP, but each client would build one)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S, verify=tls)
            )
            for _ in range(concurrency)
        ]
        await drive(send, cases, clients, warmup_s, LevelResult(target, concurrency))
        result = LevelResult(target, concurrency)
        stages_before = stages() if stages else {}
        before = snapshot()
        await drive(send, cases, clients, seconds, result)
        after = snapshot()
        stages_after = stages() if stages else {}
    for who in before:
        b, a = before[who], after.get(who)
        result.cpu_ms[who] = None if a is None or b is None else (a - b) * 1000
    result.stage_ms = {
        name: (stages_after[name] - stages_before.get(name, 0.0)) * 1000 for name in stages_after
    }
    return result
