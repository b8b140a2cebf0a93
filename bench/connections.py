"""DP connection benchmark: the connector's DP client against plain httpx, same run, loopback.

DP agents run as separate processes (``pavilion.dpagent``, uvicorn, HTTP/1.1 keep-alive) on
127.0.0.1. This process drives load with asyncio, closed loop: N workers send back-to-back
lookups for a fixed time after a warm-up. Every figure is measured twice in the same run:
through ``pavilion.connect.ProviderClient`` (pooled clients per endpoint, P2C over peak EWMA,
health, breakers, retry budget, metrics) and through plain ``httpx.AsyncClient``s, one per
agent, taken in turn (no health, no retries): the baseline of direct DP calls.

1. Added latency: p50/p99 of the connector's lookups minus the baseline's, at concurrency 100
   and 1,000, over all agents.
2. Failover: steady load on a provider with two home-region agents and two in another
   allowed region; the home agents are killed (SIGKILL) mid-load. Prints failed lookups and
   the time from the kill (the first failure) to the first lookup served by the other region.
   The baseline (plain httpx on the home agents, restarted on the same ports) has no failover.
3. Scale: the concurrency-1,000 run over >= 10 agents: p99.9, errors, and the peak number of
   established client connections to the agents (counted from /proc/net/tcp), with the file
   descriptor limit raised first.

The machine has 2 cores shared by the agents and the load generator: at concurrency 1,000 the
latency is CPU queueing (concurrency / throughput) for both clients alike, which the baseline
shows. Headline figures come last, one per line, as ``name: value unit (target ...)``.

    .venv/bin/python bench/connections.py [--quick] [--agents 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.connect.config import ConnectConfig, PoolConfig, ProbeConfig
from pavilion.connect.events import MemorySink
from pavilion.connect.routing import plan_route
from pavilion.errors import PavilionError
from pavilion.observability.logging import configure_logging
from pavilion.providers.types import Endpoint, ProviderConnection
from pavilion.synth.roster import generate_roster, write_roster

KEY = "bench-agent-key-0123456789abcdef"
AGENT_SCRIPT = """
import sys
from pydantic import SecretStr
from pavilion.dpagent import AgentConfig, load_records, run_agent
from pavilion.observability.logging import configure_logging
configure_logging("WARNING")
config = AgentConfig(api_key=SecretStr(sys.argv[2]))
run_agent(config, load_records(sys.argv[1]), "127.0.0.1", int(sys.argv[3]),
          on_listening=lambda url: print(url, file=sys.stderr, flush=True))
"""


@dataclass
class Agent:
    roster: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    log: Path = field(default_factory=lambda: Path(tempfile.mktemp(suffix=".log")))

    def spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
        handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", AGENT_SCRIPT, str(self.roster), KEY, str(self.port)],
            stdout=handle,
            stderr=handle,
            env=env,
        )

    def wait(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(rb"(http://127\.0\.0\.1:\d+)", self.log.read_bytes())
            if match:
                self.url = match.group(1).decode()
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"agent did not start: {self.log.read_text()[-1000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def start_agents(agents: Sequence[Agent]) -> None:
    for agent in agents:
        agent.spawn()
    for agent in agents:
        agent.wait()


@dataclass
class Run:
    name: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def closed_loop(
    name: str,
    call: Callable[[int], Awaitable[Any]],
    concurrency: int,
    seconds: float,
    warmup_s: float,
) -> Run:
    run = Run(name, concurrency)
    stop_at = time.perf_counter() + warmup_s + seconds
    measure_from = time.perf_counter() + warmup_s

    async def worker(k: int) -> None:
        i = k
        while (now := time.perf_counter()) < stop_at:
            try:
                await call(i)
                ok = True
            except (httpx.HTTPError, PavilionError):
                ok = False
            end = time.perf_counter()
            if now >= measure_from:
                if ok:
                    run.latencies.append(end - now)
                else:
                    run.errors += 1
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    run.seconds = time.perf_counter() - started - warmup_s
    return run


def established_connections(ports: set[int]) -> int:
    """Client-side ESTABLISHED TCP connections to the agents' ports (IPv4 loopback)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        remote_port = int(parts[2].split(":")[1], 16)
        if parts[3] == "01" and remote_port in ports:
            count += 1
    return count


def provider(agents: Sequence[Agent], regions: Sequence[str], pid: str) -> ProviderConnection:
    return ProviderConnection(
        id=pid,
        name=pid,
        claim_types=("student_status",),
        endpoints=tuple(
            Endpoint(region, "EU", agent.url) for agent, region in zip(agents, regions, strict=True)
        ),
        auth_type="api_key",
        api_key=KEY,
        record_schema={},
        tenant_id="",
    )


def connector(config: ConnectConfig | None = None) -> ProviderClient:
    return ProviderClient(
        timeout_seconds=30.0,
        connect_timeout_seconds=10.0,
        retry=RetryPolicy(2, 0.01),
        config=config
        or ConnectConfig(pool=PoolConfig(max_connections=100, max_keepalive_connections=100)),
        events=MemorySink(),
    )


async def latency_phase(
    agents: Sequence[Agent], ids: Sequence[str], levels: Sequence[int], seconds: float
) -> list[tuple[Run, Run, int, int]]:
    dp = provider(agents, ["eu-west"] * len(agents), "latency")
    route = plan_route(dp.endpoints, "EU", "eu-west")
    client = connector()
    # The baseline is plain httpx at its best for this job: one client per agent (one pool
    # of 1,000 connections makes httpcore's pool scheduling the bottleneck), round robin.
    plains = [
        httpx.AsyncClient(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            timeout=30.0,
            headers={"authorization": f"Bearer {KEY}"},
        )
        for _ in agents
    ]
    urls = [a.url + "/v1/lookup" for a in agents]
    ports = {a.port for a in agents}
    turn = itertools.count()

    async def direct(i: int) -> None:
        k = next(turn) % len(urls)
        response = await plains[k].post(
            urls[k], json={"identifiers": {"student_id": ids[i % len(ids)]}}
        )
        response.raise_for_status()

    async def through(i: int) -> None:
        await client.lookup(dp, route, {"student_id": ids[i % len(ids)]})

    results = []
    for level in levels:
        peak = {"base": 0, "conn": 0}

        async def sample(key: str, stop: asyncio.Event, peak: dict[str, int] = peak) -> None:
            while not stop.is_set():
                peak[key] = max(peak[key], established_connections(ports))
                await asyncio.sleep(0.2)

        out: list[Run] = []
        for key, call, name in (("base", direct, "plain httpx"), ("conn", through, "connector")):
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(key, stop))
            # At concurrency 1,000 one round of requests takes seconds on 2 cores: warm up
            # (open the connections) for longer and measure for longer.
            warmup = seconds / 2 if level <= 100 else seconds
            window = seconds if level <= 100 else 2 * seconds
            out.append(await closed_loop(name, call, level, window, warmup_s=warmup))
            stop.set()
            await sampler
        results.append((out[0], out[1], peak["base"], peak["conn"]))
        print_level(out[0], out[1], peak["base"], peak["conn"])
    for plain in plains:
        await plain.aclose()
    await client.aclose()
    return results


def print_level(base: Run, conn: Run, peak_base: int, peak_conn: int) -> None:
    print(f"\nconcurrency {base.concurrency}")
    header = ("client", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "conns")
    print("  {:<12} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6}".format(*header))
    for run, peak in ((base, peak_base), (conn, peak_conn)):
        print(
            f"  {run.name:<12} {run.rate:>8.0f} {run.pct(50):>8.2f} {run.pct(99):>8.2f} "
            f"{run.pct(99.9):>9.2f} {run.errors:>7} {peak:>6}"
        )


@dataclass
class FailoverResult:
    failed: int
    total: int
    failover_ms: float
    regions_after: dict[str, int]
    reasons: dict[str, int]


async def failover_phase(
    home: Sequence[Agent], other: Sequence[Agent], ids: Sequence[str], seconds: float
) -> tuple[FailoverResult, FailoverResult]:
    dp = provider(
        [*home, *other], ["eu-west"] * len(home) + ["eu-central"] * len(other), "failover"
    )
    route = plan_route(dp.endpoints, "EU", "eu-west")
    config = ConnectConfig(
        pool=PoolConfig(max_connections=200, max_keepalive_connections=200),
        probe=ProbeConfig(interval_s=0.25),
        attempt_timeout_s=1.0,
    )
    client = connector(config)
    await client.warm_up(dp)
    kill_at = seconds / 3

    async def through(i: int) -> str:
        result = await client.lookup(dp, route, {"student_id": ids[i % len(ids)]})
        return result.region

    conn = await _steady(through, home, kill_at, seconds)
    await client.aclose()
    for agent in home:  # bring the home region back on its ports for the baseline
        agent.spawn()
    for agent in home:
        agent.wait()
    plain = httpx.AsyncClient(timeout=5.0, headers={"authorization": f"Bearer {KEY}"})
    urls = [a.url + "/v1/lookup" for a in home]

    async def direct(i: int) -> str:
        response = await plain.post(
            urls[i % len(urls)], json={"identifiers": {"student_id": ids[i % len(ids)]}}
        )
        response.raise_for_status()
        return "eu-west"

    base = await _steady(direct, home, kill_at, seconds)
    await plain.aclose()
    return base, conn


async def _steady(
    call: Callable[[int], Awaitable[str]], victims: Sequence[Agent], kill_at: float, seconds: float
) -> FailoverResult:
    records: list[tuple[float, bool, str]] = []
    reasons: dict[str, int] = {}
    start = time.perf_counter()
    killed: list[float] = []

    async def killer() -> None:
        await asyncio.sleep(kill_at)
        killed.append(time.perf_counter() - start)
        for agent in victims:
            agent.kill()

    async def worker(k: int) -> None:
        i = k
        while time.perf_counter() - start < seconds:
            try:
                region = await call(i)
                records.append((time.perf_counter() - start, True, region))
            except (httpx.HTTPError, PavilionError) as exc:
                records.append((time.perf_counter() - start, False, ""))
                reason = str(getattr(exc, "detail", type(exc).__name__))[:90]
                reasons[reason] = reasons.get(reason, 0) + 1
                await asyncio.sleep(0.01)
            i += 50

    await asyncio.gather(killer(), *(worker(k) for k in range(50)))
    kill_t = killed[0]
    other = [t for t, ok, region in records if ok and region == "eu-central" and t >= kill_t]
    after: dict[str, int] = {}
    for t, ok, region in records:
        if t >= kill_t and ok:
            after[region] = after.get(region, 0) + 1
    return FailoverResult(
        failed=sum(1 for _, ok, _ in records if not ok),
        total=len(records),
        failover_ms=(min(other) - kill_t) * 1000 if other else float("inf"),
        regions_after=after,
        reasons=reasons,
    )


async def prewarm(agents: Sequence[Agent], ids: Sequence[str], per_agent: int = 200) -> None:
    """Let every agent finish its lazy start-up work before anything is measured."""
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}) as plain:
        for agent in agents:
            await asyncio.gather(
                *(
                    plain.post(
                        agent.url + "/v1/lookup",
                        json={"identifiers": {"student_id": ids[i % len(ids)]}},
                    )
                    for i in range(per_agent)
                )
            )


def raise_fd_limit(wanted: int = 20_000) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base and base == base else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s)")
    parser.add_argument("--agents", type=int, default=10, help="DP agents for latency/scale")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 10.0
    configure_logging("WARNING")
    fd_limit = raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="pavilion-bench-connections-"))
    roster = workdir / "roster.csv"
    records = generate_roster(2000, seed=5, reference_date=date(2026, 1, 1))
    write_roster(records, roster, "csv")
    rng = random.Random(1)
    ids = [r.student_id for r in rng.sample(records, 500)]
    agents = [Agent(roster) for _ in range(max(args.agents, 4))]
    print(f"{os.cpu_count()} cores; {len(agents)} DP agents on 127.0.0.1; fd limit {fd_limit}")
    started = time.perf_counter()
    start_agents(agents)
    print(f"agents up in {time.perf_counter() - started:.1f} s")
    asyncio.run(prewarm(agents, ids, per_agent=50 if args.quick else 200))
    try:
        levels = asyncio.run(latency_phase(agents, ids, (100, 1000), seconds))
        base_f, conn_f = asyncio.run(failover_phase(agents[:2], agents[2:4], ids, seconds * 2))
    finally:
        for agent in agents:
            agent.kill()
    print(
        f"\nfailover: connector {conn_f.failed}/{conn_f.total} failed, served after kill "
        f"{conn_f.regions_after}; plain httpx {base_f.failed}/{base_f.total} failed"
    )
    for reason, count in sorted(conn_f.reasons.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  connector failure x{count}: {reason}")
    print(
        f"\nnote: closed loop on {os.cpu_count()} cores shared by {len(agents)} agents, the load "
        "generator and anything else running; at concurrency 1,000 latency is queueing for the "
        "CPU (concurrency / throughput) for both clients alike."
    )
    print()
    for base, conn, _, _ in levels:
        c = base.concurrency
        for q in (50, 99):
            added = conn.pct(q) - base.pct(q)
            target = f"< {5 if q == 50 else 20} ms" if c <= 100 else "CPU-bound here, see note"
            print(
                f"connections_added_p{q}_c{c}: {added:.2f} ms (target {target}; connector "
                f"{conn.pct(q):.2f} ms vs plain httpx {base.pct(q):.2f} ms, "
                f"ratio {ratio(conn.pct(q), base.pct(q))})"
            )
    print(
        f"connections_failover_failed_lookups: {conn_f.failed} requests (target 0; plain httpx "
        f"{base_f.failed} of {base_f.total})"
    )
    print(
        f"connections_failover_time: {conn_f.failover_ms:.0f} ms (target < 1000 ms; plain httpx "
        "never fails over)"
    )
    base, conn, peak_base, peak_conn = levels[-1]
    print(
        f"connections_scale_p999_c1000: {conn.pct(99.9):.0f} ms (target < 500 ms; {len(agents)} "
        f"agents; plain httpx {base.pct(99.9):.0f} ms, "
        f"ratio {ratio(conn.pct(99.9), base.pct(99.9))})"
    )
    print(
        f"connections_scale_open_connections: {peak_conn} connections (target >= 1000, errors "
        f"{conn.errors}; plain httpx {peak_base}, errors {base.errors})"
    )


if __name__ == "__main__":
    main()
