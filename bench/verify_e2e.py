"""End-to-end verification benchmark: the HTTP API against a DP agent on loopback, on SQLite and
on PostgreSQL with one and with two worker processes, side by side in one run.

The DP agent (``pavilion dp-agent``) runs once for the whole run; the connector (``pavilion
serve``, ``--workers N``) runs once per database, each in its own processes on free loopback
ports. This process makes a fresh database for each (SQLite in a temporary directory; on
PostgreSQL a database created through ``--postgres-admin``, migrated with the project's
migrations, dropped at the end), a tenant, tokens and a synthetic roster, registers the agent
through the API, and drives load on uvloop: N workers, each with one raw HTTP/1.1 keep-alive
connection (``e2e.rawhttp``, tens of microseconds of CPU per request), back to back for a fixed
time after a warm-up.

The baseline is the agent's ``POST /v1/lookup`` asked directly with the same subjects, measured
once per concurrency before the databases and shared by all of them. The subject mix is 90%
current students and 10% ids nobody has, asked ``student_status`` (by student id) or
``age_over`` 18 (by e-mail), half each; every verification carries an ``Idempotency-Key``.

CPU columns are CPU milliseconds per request of the load generator, the agent and the connector
(its whole process tree: supervisor and workers) and PostgreSQL's server processes (all of
them, so other sessions count too), from Linux /proc; "others" is what the rest of the machine
used meanwhile. With one worker, the connector runs with
``PAVILION_STAGE_TIMING=true`` and /metrics is read before and after each measured phase: the
stage table shows CPU ms per verification per stage, the remainder spent outside any task
(HTTP parsing in uvicorn's protocol callbacks, the event loop, other threads), and the total,
beside the budget in ``bench/budget.json``. ``--check`` exits 1 when the connector's CPU per
verification (at concurrency 100) exceeds the budget's total times its tolerance on any
database. The headline figures come last, one per line, as ``name: value unit (target ...)``.

    .venv/bin/python bench/verify_e2e.py --quick --check
    .venv/bin/python bench/verify_e2e.py --databases sqlite,postgres,postgres:2 --seconds 10 \\
        --postgres-admin postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import asyncpg
import httpx
from e2e.load import Case, LevelResult, build_cases, run_level
from e2e.rawhttp import Connection, encode_post
from e2e.report import (
    Budget,
    DatabaseRun,
    check,
    load_average,
    print_headlines,
    print_level,
    print_stage_table,
)
from e2e.services import (
    PostgresDatabases,
    Service,
    bootstrap,
    cpu_seconds,
    machine_busy_seconds,
    migrate,
    postgres_cpu_seconds,
    register_provider,
    stage_seconds,
    start_agent,
    start_connector,
    stop,
    tree_cpu_seconds,
)

from pavilion.config.settings import Settings, load_settings
from pavilion.synth.roster import (
    DEFAULT_REFERENCE_DATE,
    ROSTER_RECORD_SCHEMA,
    StudentRecord,
    generate_roster,
    write_roster,
)

LEVELS: Final = (1, 10, 100)
QUICK_LEVELS: Final = (100,)
DATABASES: Final = ("sqlite", "postgres", "postgres:2")
POSTGRES_ADMIN: Final = "postgresql://postgres@127.0.0.1/postgres"
CASES: Final = 5000
SEED_ROSTER: Final = 20240611
T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@dataclass(frozen=True)
class Target:
    """One entry of ``--databases``: ``sqlite``, ``postgres`` or ``postgres:N`` (N workers)."""

    label: str
    backend: str
    workers: int

    @classmethod
    def parse(cls, text: str) -> Target:
        backend, _, workers = text.strip().partition(":")
        if backend not in ("sqlite", "postgres") or (workers and not workers.isdigit()):
            raise argparse.ArgumentTypeError(f"{text!r}: use sqlite, postgres or postgres:N")
        count = int(workers or 1)
        if backend == "sqlite" and count != 1:
            raise argparse.ArgumentTypeError("SQLite serves with one worker only")
        return cls(text.strip(), backend, count)

    @property
    def suffix(self) -> str:
        if self.backend == "sqlite":
            return ""
        return "_postgres" + (f"_{self.workers}w" if self.workers > 1 else "")


@contextmanager
def workspace() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="pavilion-bench-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="concurrency 100 only, 3 s each (under a minute)"
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per level and target")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each measurement")
    parser.add_argument("--levels", help="comma-separated concurrencies (default 1,10,100)")
    parser.add_argument(
        "--databases",
        default=",".join(DATABASES),
        help="comma-separated: sqlite, postgres, postgres:N (N worker processes)",
    )
    parser.add_argument(
        "--postgres-admin",
        default=POSTGRES_ADMIN,
        help="a PostgreSQL role that may create databases; each run makes its own and drops it",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 above bench/budget.json")
    parser.add_argument("--roster-size", type=int, default=20_000)
    parser.add_argument(
        "--agent", choices=("cli", "inline"), default="cli", help="how to run the DP agent"
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (3.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    levels = args.levels or ",".join(map(str, QUICK_LEVELS if args.quick else LEVELS))
    args.levels = [int(level) for level in levels.split(",")]
    try:
        args.targets = [Target.parse(t) for t in args.databases.split(",") if t.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    return args


def snapshot_of(pids: dict[str, int]) -> Callable[[], dict[str, Any]]:
    def snapshot() -> dict[str, Any]:
        return {
            "loadgen": cpu_seconds(pids["loadgen"]),
            "agent": cpu_seconds(pids["agent"]),
            "connector": tree_cpu_seconds(pids["connector"]) if "connector" in pids else None,
            "postgres": postgres_cpu_seconds(),
            "machine": machine_busy_seconds(),
        }

    return snapshot


def measure_direct(
    args: argparse.Namespace,
    run: Run[LevelResult],
    cases: Sequence[Case],
    agent: Service,
    api_key: str,
) -> dict[int, LevelResult]:
    """The agent asked directly, once per level: the baseline every database is compared with."""
    headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    requests = {case.lookup: encode_post("/v1/lookup", headers, case.lookup) for case in cases}

    async def direct(connection: Connection, case: Case) -> tuple[int, bytes]:
        return await connection.request(requests[case.lookup])

    snapshot = snapshot_of({"loadgen": os.getpid(), "agent": agent.process.pid})
    return {
        level: run(
            run_level(
                "direct", agent.port, direct, cases, level, args.warmup, args.seconds, snapshot
            )
        )
        for level in args.levels
    }


def prepare_settings(target: Target, workdir: Path, postgres: PostgresDatabases | None) -> Settings:
    data_dir = workdir / target.label.replace(":", "-")
    data_dir.mkdir(parents=True)
    overrides: dict[str, Any] = {"data_dir": data_dir, "log_level": "WARNING"}
    if target.backend == "sqlite":
        settings = load_settings(None, **overrides)
        migrate(settings)
        return settings
    assert postgres is not None

    def migrate_urls(app_url: str, owner_url: str) -> None:
        migrate(
            load_settings(None, **overrides, database_url=app_url, database_migration_url=owner_url)
        )

    app_url, owner_url = postgres.create(migrate_urls)
    return load_settings(None, **overrides, database_url=app_url, database_migration_url=owner_url)


def measure_database(
    args: argparse.Namespace,
    run: Run[Any],
    target: Target,
    settings: Settings,
    records: Sequence[StudentRecord],
    agent: Service,
    api_key: str,
    workdir: Path,
) -> list[LevelResult]:
    """Start the connector on ``settings``, register the agent, measure every level, stop."""
    tokens = run(bootstrap(settings))
    timing = target.workers == 1
    connector = start_connector(
        settings,
        workdir,
        name=f"connector-{target.label}",
        workers=target.workers,
        stage_timing=timing,
    )
    try:
        provider_id = register_provider(connector, tokens, agent, api_key, ROSTER_RECORD_SCHEMA)
        cases = build_cases(records, CASES, provider_id)
        print(
            f"\n[{target.label}] connector {connector.url} (pid {connector.process.pid}, "
            f"{target.workers} worker{'s' if target.workers > 1 else ''}"
            f"{', stage timing on' if timing else ''}), load average {load_average()}"
        )
        keys = (f"bench-{secrets.token_hex(4)}-{n}" for n in itertools.count())
        headers = {"authorization": f"Bearer {tokens.broker}", "content-type": "application/json"}

        async def verify(connection: Connection, case: Case) -> tuple[int, bytes]:
            request = encode_post(
                "/v1/verifications",
                headers | {"idempotency-key": next(keys)},
                case.verification,
            )
            return await connection.request(request)

        pids = {
            "loadgen": os.getpid(),
            "agent": agent.process.pid,
            "connector": connector.process.pid,
        }
        stages = (lambda: stage_seconds(connector)) if timing else None
        return [
            run(
                run_level(
                    target.label,
                    connector.port,
                    verify,
                    cases,
                    level,
                    args.warmup,
                    args.seconds,
                    snapshot_of(pids),
                    stages,
                )
            )
            for level in args.levels
        ]
    finally:
        stop(connector)
        if connector.process.returncode not in (0, -15):
            print(f"\n{connector.name} exited with {connector.process.returncode}; its log ends:")
            print(connector.log_tail())


def main() -> int:
    args = parse_args()
    budget = Budget.load()
    started = time.perf_counter()
    with workspace() as workdir, asyncio.Runner(loop_factory=_loop_factory()) as runner:
        postgres: PostgresDatabases | None = None
        skipped: dict[str, str] = {}
        if any(t.backend == "postgres" for t in args.targets):
            postgres = PostgresDatabases(args.postgres_admin)
            try:
                postgres.check()
            except (OSError, asyncpg.PostgresError) as exc:
                reason = f"PostgreSQL not reachable through --postgres-admin ({exc})"
                print(f"!! {reason}: its runs are skipped")
                skipped = {t.label: reason for t in args.targets if t.backend == "postgres"}
                postgres = None
        records = generate_roster(
            args.roster_size, seed=SEED_ROSTER, reference_date=DEFAULT_REFERENCE_DATE
        )
        roster = workdir / "roster.csv"
        write_roster(records, roster, "csv")
        api_key = secrets.token_urlsafe(32)
        runs: list[DatabaseRun] = []
        direct: dict[int, LevelResult] = {}
        agent = start_agent(roster, api_key, workdir, args.agent)
        try:
            print(
                f"{agent.name} {agent.url} (pid {agent.process.pid}), {args.roster_size:,} "
                f"students; {os.cpu_count()} cores, load average {load_average()}"
            )
            baseline_cases = build_cases(records, CASES, "-")
            direct = measure_direct(args, runner.run, baseline_cases, agent, api_key)
            for target in args.targets:
                run = DatabaseRun(target.label, target.suffix, target.workers, [])
                runs.append(run)
                if target.label in skipped:
                    run.failure = skipped[target.label]
                    continue
                try:
                    settings = prepare_settings(target, workdir, postgres)
                    measured = measure_database(
                        args, runner.run, target, settings, records, agent, api_key, workdir
                    )
                except (RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
                    run.failure = f"{type(exc).__name__}: {exc}"
                    print(f"!! [{target.label}] {run.failure}")
                    continue
                run.results = [(direct[conn.concurrency], conn) for conn in measured]
                for base, conn in run.results:
                    print_level(target.label, base, conn, args.seconds)
                    if target.workers == 1:
                        print_stage_table(target.label, conn, budget)
        finally:
            stop(agent)
            if postgres is not None:
                postgres.drop_all()
        direct_errors = sum(r.errors.total() for r in direct.values())
    print(f"\ntotal time {time.perf_counter() - started:.1f} s, load average now {load_average()}")
    print_headlines(runs, direct_errors)
    if args.check:
        reasons = check(runs, budget)
        for reason in reasons:
            print(f"BUDGET EXCEEDED {reason}")
        if reasons:
            return 1
        print(
            f"budget holds: connector CPU per verification <= {budget.limit_ms:.2f} ms everywhere"
        )
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds through the finally blocks that stop the servers and remove the data.
    sys.exit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temporary data removed", file=sys.stderr)
        sys.exit(130)
