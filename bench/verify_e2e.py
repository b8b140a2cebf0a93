"""End-to-end verification benchmark: the HTTP API against a DP agent on loopback.

The connector (``pavilion serve``) and the DP agent (``pavilion dp-agent``) each run in their
own process on free loopback ports; this process sets up a fresh database, tenant, tokens and
synthetic roster first, registers the agent through the API, and then drives load with
``httpx.AsyncClient`` on uvloop: N workers, each with its own client and one HTTP/1.1
keep-alive connection, send back-to-back requests for a fixed time after a warm-up. Each
concurrency level is measured twice, against the connector's ``POST /v1/verifications`` and, as
the baseline, directly against the agent's ``POST /v1/lookup`` with the same subjects, so
"connector-added" latency is the connector's percentile minus the direct percentile at the
same concurrency in the same run.

The subject mix is 90% current students and 10% ids nobody in the roster has, asked for
``student_status`` (by student id) or ``age_over`` 18 (by e-mail), half each. Every
verification carries an ``Idempotency-Key``, as a broker's would. Latencies are of successful
(2xx) requests; anything else is counted and shown as an error. The CPU columns are CPU
milliseconds per request of the load generator, the agent and the connector, and "others" the
cores that the rest of the machine used meanwhile (Linux /proc): on a shared machine, read the
latencies with that column in mind.

The headline figures come last, one per line, as ``name: value unit (target ...)``.

    .venv/bin/python bench/verify_e2e.py [--quick]
    .venv/bin/python bench/verify_e2e.py --database-url postgresql://pavilion_app@127.0.0.1/db \\
        --database-migration-url postgresql://postgres@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from pavilion.config.settings import Settings, load_settings
from pavilion.runtime import build_runtime
from pavilion.store.migrate import app_role_for, upgrade
from pavilion.synth.roster import (
    DEFAULT_REFERENCE_DATE,
    ROSTER_RECORD_SCHEMA,
    StudentRecord,
    generate_roster,
    write_roster,
)
from pavilion.tenancy.roles import Role

LEVELS: Final = (1, 10, 100)
P999_TARGET_MS: Final = 500.0
P999_TARGET_LEVEL: Final = 100
ADDED_P99_TARGET_MS: Final = 10.0
ADDED_TARGET_LEVEL: Final = 1
SEED: Final = 20240611
UNKNOWN_SHARE: Final = 0.10
RESIDENCY: Final = "EU"
PURPOSE: Final = "benchmark: student discount eligibility"
REQUEST_TIMEOUT_S: Final = 30.0
STARTUP_TIMEOUT_S: Final = 60.0
ERROR_SAMPLES: Final = 5
API_KEY_ENV: Final = "PAVILION_DP_API_KEY"

#: The DP agent without its CLI, for when ``pavilion dp-agent`` cannot start (argv: records,
#: port; the API key comes from the environment, never the command line).
AGENT_INLINE: Final = f"""
import os, sys
import uvicorn
from pydantic import SecretStr
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import load_records
from pavilion.observability.logging import configure_logging

configure_logging("WARNING")
config = AgentConfig(api_key=SecretStr(os.environ["{API_KEY_ENV}"]))
app = create_agent_app(config, load_records(sys.argv[1]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


# --------------------------------------------------------------------------- set-up


@dataclass(frozen=True)
class Tokens:
    admin: str
    broker: str


@dataclass(frozen=True)
class Case:
    """One request shape: the connector's body and the agent's body for the same subject."""

    verification: bytes
    lookup: bytes


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def free_port() -> int:
    """A port the kernel considers free right now (it could be taken again before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def bootstrap(settings: Settings) -> Tokens:
    """A fresh tenant (unique name, so a reused PostgreSQL database works) and its tokens."""
    rt = build_runtime(settings)
    try:
        await rt.tenancy.ensure_platform_tenant()
        tenant = await rt.tenancy.create_tenant(f"bench-{secrets.token_hex(4)}")
        admin = await rt.tenancy.create_token(tenant.id, "bench-admin", Role.TENANT_ADMIN)
        broker = await rt.tenancy.create_token(tenant.id, "bench-broker", Role.BROKER)
        return Tokens(admin.secret, broker.secret)
    finally:
        await rt.aclose()


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


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any PAVILION_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
    return env | extra


def spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path, url: str) -> Service:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,  # a Ctrl-C here reaches only us; we stop them in order
        )
    return Service(name, process, url, log_path)


def wait_healthy(service: Service, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as http:
        while True:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {service.process.returncode} during start-up:\n"
                    f"{service.log_tail()}"
                )
            try:
                if http.get(f"{service.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.name} not healthy within {timeout_s:g} s")
            time.sleep(0.05)


def stop(service: Service) -> None:
    """SIGTERM, a grace period, then SIGKILL; always reaps the process."""
    process = service.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_agent(roster: Path, api_key: str, workdir: Path, mode: str) -> Service:
    """``pavilion dp-agent`` (falls back to an inline agent if the CLI cannot start)."""
    port = free_port()
    env = child_env({API_KEY_ENV: api_key})
    url = f"http://127.0.0.1:{port}"
    if mode == "cli":
        cli = [sys.executable, "-c", "from pavilion.cli.main import main; main()", "dp-agent"]
        argv = [*cli, "--records", str(roster), "--port", str(port), "--log-level", "WARNING"]
        agent = spawn("dp-agent", argv, env, workdir, url)
        try:
            wait_healthy(agent)
            return agent
        except RuntimeError as exc:
            print(f"`pavilion dp-agent` did not start; using the inline agent instead ({exc})")
            stop(agent)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-c", AGENT_INLINE, str(roster), str(port)]
    agent = spawn("dp-agent-inline", argv, env, workdir, url)
    wait_healthy(agent)
    return agent


def start_connector(settings: Settings, workdir: Path) -> Service:
    port = free_port()
    env = child_env(
        {
            "PAVILION_DATA_DIR": str(settings.data_dir),
            "PAVILION_DATABASE_URL": settings.database_url,
            "PAVILION_DATABASE_MIGRATION_URL": settings.database_migration_url,
            "PAVILION_HOST": "127.0.0.1",
            "PAVILION_PORT": str(port),
            "PAVILION_LOG_LEVEL": "WARNING",
        }
    )
    argv = [sys.executable, "-c", "from pavilion.cli.main import main; main()", "serve"]
    connector = spawn("connector", argv, env, workdir, f"http://127.0.0.1:{port}")
    wait_healthy(connector)
    return connector


def register_provider(connector: Service, tokens: Tokens, agent: Service, api_key: str) -> str:
    body = {
        "name": "Benchmark University Registry",
        "claim_types": ["student_status", "age_over", "membership"],
        "endpoints": [{"region": "eu-west", "jurisdiction": RESIDENCY, "url": agent.url}],
        "auth": {"type": "api_key", "api_key": api_key},
        "record_schema": ROSTER_RECORD_SCHEMA,
    }
    headers = {"authorization": f"Bearer {tokens.admin}"}
    response = httpx.post(f"{connector.url}/v1/providers", json=body, headers=headers, timeout=30)
    if response.status_code != 201:
        raise RuntimeError(
            f"provider registration answered {response.status_code}: {response.text}"
        )
    return str(response.json()["id"])


# --------------------------------------------------------------------------- measurement


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (Linux /proc); None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU time all processes on the machine have used since boot, summed over cores."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float | None]:
    return {who: cpu_seconds(pid) for who, pid in pids.items()} | {
        "machine": machine_busy_seconds()
    }


@dataclass
class LevelResult:
    target: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cpu_ms: dict[str, float | None] = field(default_factory=dict)

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
        """Cores that processes other than these three kept busy during the measurement."""
        machine = self.cpu_ms.get("machine")
        ours = [self.cpu_ms.get(w) for w in ("loadgen", "agent", "connector")]
        if machine is None or None in ours or not self.elapsed_s:
            return None
        return max(0.0, machine - sum(o or 0.0 for o in ours)) / 1000 / self.elapsed_s


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
                if result.target == "connector":
                    result.decisions[str(response.json().get("decision"))] += 1
            else:
                result.error(f"HTTP {response.status_code}", response.text)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n, client) for n, client in enumerate(clients)))
    result.elapsed_s = time.perf_counter() - started


async def run_level(
    target: str,
    send: Send,
    cases: Sequence[Case],
    concurrency: int,
    warmup_s: float,
    seconds: float,
    pids: dict[str, int],
) -> LevelResult:
    """Warm up, then measure; each worker has its own client holding one keep-alive connection.

    One pool shared by all workers costs O(pool size) per request in httpcore's bookkeeping,
    which at concurrency 100 made the load generator eat CPU the servers need.
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S)
            )
            for _ in range(concurrency)
        ]
        await drive(send, cases, clients, warmup_s, LevelResult(target, concurrency))
        result = LevelResult(target, concurrency)
        before = cpu_snapshot(pids)
        await drive(send, cases, clients, seconds, result)
        after = cpu_snapshot(pids)
    for who in before:
        b, a = before[who], after[who]
        result.cpu_ms[who] = None if a is None or b is None else (a - b) * 1000
    return result


# --------------------------------------------------------------------------- output


def load_average() -> str:
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "n/a"


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def fmt_cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_level(direct: LevelResult, connector: LevelResult, seconds: float) -> None:
    print(f"\nconcurrency {direct.concurrency} ({seconds:g} s per target after warm-up)")
    print(
        f"{'target':<10} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99.9 ms':>9} | cpu ms/req: {'loadgen':>7} {'agent':>6} {'conn':>6} | others"
    )
    for r in (direct, connector):
        cpu = " ".join(
            f"{fmt_cpu(r.cpu_per_request(w)):>{width}}"
            for w, width in (("loadgen", 7), ("agent", 6), ("connector", 6))
        )
        others = "-" if r.other_cores is None else f"{r.other_cores:.2f} cores"
        print(
            f"{r.target:<10} {r.requests:>9} {r.errors.total():>7} {r.throughput:>8.0f} "
            f"{fmt_ms(r.percentile(50)):>8} {fmt_ms(r.percentile(99)):>8} "
            f"{fmt_ms(r.percentile(99.9)):>9} | {'':>11} {cpu} | {others}"
        )
    added = [connector.percentile(q) - direct.percentile(q) for q in (50, 99, 99.9)]
    print(
        f"{'added':<10} {'':>9} {'':>7} {'':>8} {fmt_ms(added[0]):>8} {fmt_ms(added[1]):>8} "
        f"{fmt_ms(added[2]):>9}"
    )
    if connector.decisions:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(connector.decisions.items()))
        print(f"connector decisions: {mix}")
    for r in (direct, connector):
        if r.errors:
            print(f"!! {r.target} errors at concurrency {r.concurrency}: {dict(r.errors)}")
            for sample in r.error_samples:
                print(f"   {sample}")


def ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}x" if base and not math.isnan(base) else "n/a"


def print_headlines(results: list[tuple[LevelResult, LevelResult]]) -> None:
    print()
    for direct, conn in results:
        c = conn.concurrency
        print(
            f"verify_e2e_c{c}_throughput: {conn.throughput:.0f} req/s "
            f"(no target; direct agent {direct.throughput:.0f} req/s, "
            f"{ratio(conn.throughput, direct.throughput)})"
        )
        for name, q in (("p50", 50.0), ("p99", 99.0), ("p999", 99.9)):
            value, base = conn.percentile(q), direct.percentile(q)
            target = (
                f"target < {P999_TARGET_MS:g} ms; "
                if name == "p999" and c == P999_TARGET_LEVEL
                else "no target; "
            )
            print(
                f"verify_e2e_c{c}_{name}: {fmt_ms(value)} ms "
                f"({target}direct agent {fmt_ms(base)} ms, {ratio(value, base)})"
            )
    for direct, conn in results:
        c = conn.concurrency
        for name, q in (("p50", 50.0), ("p99", 99.0)):
            added = conn.percentile(q) - direct.percentile(q)
            target = (
                f"target < {ADDED_P99_TARGET_MS:g} ms"
                if name == "p99" and c == ADDED_TARGET_LEVEL
                else "no target"
            )
            print(f"verify_e2e_connector_added_{name}_c{c}: {fmt_ms(added)} ms ({target})")
    errors = sum(conn.errors.total() for _, conn in results)
    direct_errors = sum(direct.errors.total() for direct, _ in results)
    total = sum(conn.requests for _, conn in results)
    print(
        f"verify_e2e_errors: {errors} of {total} requests "
        f"(target 0; direct agent {direct_errors} errors)"
    )


# --------------------------------------------------------------------------- main


@contextmanager
def workspace() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="pavilion-bench-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per level (under a minute)")
    parser.add_argument("--seconds", type=float, help="measured seconds per level and target")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each measurement")
    parser.add_argument(
        "--levels", default=",".join(map(str, LEVELS)), help="comma-separated concurrencies"
    )
    parser.add_argument("--roster-size", type=int, default=20_000)
    parser.add_argument(
        "--database-url",
        default="",
        help="the connector's database (default: SQLite in a temp dir)",
    )
    parser.add_argument(
        "--database-migration-url", default="", help="schema owner for migrations (PostgreSQL)"
    )
    parser.add_argument(
        "--agent", choices=("cli", "inline"), default="cli", help="how to run the DP agent"
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (4.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.levels = [int(level) for level in args.levels.split(",")]
    return args


def main() -> None:
    args = parse_args()
    with workspace() as workdir:
        started = time.perf_counter()
        overrides: dict[str, Any] = {"data_dir": workdir, "log_level": "WARNING"}
        overrides["database_url"] = args.database_url or f"sqlite:///{workdir / 'pavilion.db'}"
        if args.database_migration_url:
            overrides["database_migration_url"] = args.database_migration_url
        settings = load_settings(None, **overrides)
        upgrade(
            settings.database_migration_url,
            app_role_for(settings.database_url, settings.database_migration_url),
        )
        tokens = asyncio.run(bootstrap(settings))
        records = generate_roster(
            args.roster_size, seed=SEED, reference_date=DEFAULT_REFERENCE_DATE
        )
        roster = workdir / "roster.csv"
        write_roster(records, roster, "csv")
        api_key = secrets.token_urlsafe(32)

        services: list[Service] = []
        try:
            agent = start_agent(roster, api_key, workdir, args.agent)
            services.append(agent)
            connector = start_connector(settings, workdir)
            services.append(connector)
            provider_id = register_provider(connector, tokens, agent, api_key)
            cases = build_cases(records, 5000, provider_id)
            backend = "PostgreSQL" if settings.database_url.startswith("postgresql") else "SQLite"
            print(
                f"connector {connector.url} (pid {connector.process.pid}, {backend}), "
                f"{agent.name} {agent.url} (pid {agent.process.pid}), "
                f"{args.roster_size:,} students; ready in {time.perf_counter() - started:.1f} s"
            )
            print(f"{os.cpu_count()} cores, load average {load_average()}; 'others' below is CPU")
            print("that processes outside this benchmark used during each measurement")
            results = run_all(args, cases, tokens, agent, connector, api_key)
        finally:
            for service in reversed(services):
                stop(service)
        errors = sum(conn.errors.total() for _, conn in results)
        for service in services:
            if service.process.returncode not in (0, -15) or errors:
                print(f"\n{service.name} exited with {service.process.returncode}; its log ends:")
                print(service.log_tail())
        print(
            f"\ntotal time {time.perf_counter() - started:.1f} s, load average now {load_average()}"
        )
        print_headlines(results)


def run_all(
    args: argparse.Namespace,
    cases: Sequence[Case],
    tokens: Tokens,
    agent: Service,
    connector: Service,
    api_key: str,
) -> list[tuple[LevelResult, LevelResult]]:
    keys = (f"bench-{secrets.token_hex(4)}-{n}" for n in itertools.count())
    direct_headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    broker_headers = {
        "authorization": f"Bearer {tokens.broker}",
        "content-type": "application/json",
    }
    lookup_url = f"{agent.url}/v1/lookup"
    verify_url = f"{connector.url}/v1/verifications"

    async def direct(client: httpx.AsyncClient, case: Case) -> httpx.Response:
        return await client.post(lookup_url, content=case.lookup, headers=direct_headers)

    async def verify(client: httpx.AsyncClient, case: Case) -> httpx.Response:
        headers = broker_headers | {"idempotency-key": next(keys)}
        return await client.post(verify_url, content=case.verification, headers=headers)

    pids = {"loadgen": os.getpid(), "agent": agent.process.pid, "connector": connector.process.pid}

    async def everything() -> list[tuple[LevelResult, LevelResult]]:
        results = []
        for level in args.levels:
            base = await run_level("direct", direct, cases, level, args.warmup, args.seconds, pids)
            conn = await run_level(
                "connector", verify, cases, level, args.warmup, args.seconds, pids
            )
            print_level(base, conn, args.seconds)
            results.append((base, conn))
        return results

    try:
        import uvloop
    except ImportError:
        return asyncio.run(everything())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(everything())


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds through the finally blocks that stop the servers and remove the data.
    sys.exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temporary files removed", file=sys.stderr)
        sys.exit(130)
