"""Processes and databases of the end-to-end benchmark.

The DP agent and the connector run as subprocesses on free loopback ports; a PostgreSQL run
gets a database of its own, created through an admin URL, migrated with the project's
migrations and dropped at the end. CPU time comes from Linux /proc: the connector's is its
whole process tree (the supervisor and every worker of ``pavilion serve --workers N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from pavilion.config.settings import Settings
from pavilion.runtime import build_runtime
from pavilion.store.migrate import app_role_for, upgrade
from pavilion.tenancy.roles import Role

STARTUP_TIMEOUT_S: Final = 90.0
API_KEY_ENV: Final = "PAVILION_DP_API_KEY"
APP_ROLE: Final = "pavilion_app"
STAGE_METRIC: Final = "pavilion_stage_cpu_seconds"
CLI: Final = (sys.executable, "-c", "from pavilion.cli.main import main; main()")

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


@dataclass(frozen=True)
class Tokens:
    admin: str
    broker: str


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    headers: dict[str, str] = field(default_factory=dict)  # for /metrics

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

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
    """A fresh tenant (unique name) and its admin and broker tokens."""
    rt = build_runtime(settings)
    try:
        await rt.tenancy.ensure_platform_tenant()
        tenant = await rt.tenancy.create_tenant(f"bench-{secrets.token_hex(4)}")
        admin = await rt.tenancy.create_token(tenant.id, "bench-admin", Role.TENANT_ADMIN)
        broker = await rt.tenancy.create_token(tenant.id, "bench-broker", Role.BROKER)
        return Tokens(admin.secret, broker.secret)
    finally:
        await rt.aclose()


def migrate(settings: Settings) -> None:
    upgrade(
        settings.database_migration_url,
        app_role_for(settings.database_url, settings.database_migration_url),
    )


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
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_agent(roster: Path, api_key: str, workdir: Path, mode: str) -> Service:
    """``pavilion dp-agent`` (falls back to an inline agent if the CLI cannot start)."""
    port = free_port()
    env = child_env({API_KEY_ENV: api_key})
    url = f"http://127.0.0.1:{port}"
    if mode == "cli":
        argv = [*CLI, "dp-agent", "--records", str(roster), "--port", str(port)]
        agent = spawn("dp-agent", [*argv, "--log-level", "WARNING"], env, workdir, url)
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


def start_connector(
    settings: Settings, workdir: Path, *, name: str, workers: int, stage_timing: bool
) -> Service:
    """``pavilion serve`` (``--workers N``), stage timers on when asked; once healthy, it
    waits for every worker to finish starting (so none is still importing when measured)."""
    port = free_port()
    extra = {
        "PAVILION_DATA_DIR": str(settings.data_dir),
        "PAVILION_DATABASE_URL": settings.database_url,
        "PAVILION_DATABASE_MIGRATION_URL": settings.database_migration_url,
        "PAVILION_HOST": "127.0.0.1",
        "PAVILION_PORT": str(port),
        "PAVILION_LOG_LEVEL": "WARNING",
        "PAVILION_STAGE_TIMING": "true" if stage_timing else "false",
    }
    headers: dict[str, str] = {}
    if "metrics_token" in Settings.model_fields:  # /metrics behind a token on this version
        token = secrets.token_urlsafe(24)
        extra["PAVILION_METRICS_TOKEN"] = token
        headers["authorization"] = f"Bearer {token}"
    argv = [*CLI, "serve", "--workers", str(workers)]
    connector = spawn(name, argv, child_env(extra), workdir, f"http://127.0.0.1:{port}")
    connector.headers = headers
    wait_healthy(connector)
    if workers > 1:
        wait_workers_settled(connector, workers)
    return connector


def wait_workers_settled(service: Service, workers: int, timeout_s: float = 90.0) -> None:
    """Until ``workers`` worker processes exist and each has been idle for half a second."""
    deadline = time.monotonic() + timeout_s
    last: dict[int, float] = {}
    while time.monotonic() < deadline:
        kids = [pid for pid in process_tree(service.process.pid)[1:] if _is_worker(pid)]
        now = {pid: cpu_seconds(pid) or 0.0 for pid in kids}
        if len(kids) >= workers and all(
            pid in last and now[pid] - last[pid] < 0.05 for pid in kids
        ):
            return
        last = now
        time.sleep(0.5)
    raise TimeoutError(f"{service.name}: {workers} workers not settled within {timeout_s:g} s")


def _is_worker(pid: int) -> bool:
    try:
        return b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def register_provider(
    connector: Service, tokens: Tokens, agent: Service, api_key: str, record_schema: Any
) -> str:
    body = {
        "name": "Benchmark University Registry",
        "claim_types": ["student_status", "age_over", "membership"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": agent.url}],
        "auth": {"type": "api_key", "api_key": api_key},
        "record_schema": record_schema,
    }
    headers = {"authorization": f"Bearer {tokens.admin}"}
    response = httpx.post(f"{connector.url}/v1/providers", json=body, headers=headers, timeout=30)
    if response.status_code != 201:
        raise RuntimeError(
            f"provider registration answered {response.status_code}: {response.text}"
        )
    return str(response.json()["id"])


# --------------------------------------------------------------------------- /proc and /metrics


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process, all its threads (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc), the root first."""
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue += _children(current)
    return tree


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        with contextlib.suppress(OSError):
            children += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return children


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of a process and every live descendant (a connector's workers included)."""
    if cpu_seconds(pid) is None:
        return None
    return sum(cpu_seconds(p) or 0.0 for p in process_tree(pid))


class PerProcess(dict[int, float]):
    """CPU seconds per process id; ``later - earlier`` sums the processes alive in both, so
    one that starts or exits between the two (another session's backend) does not count."""

    def __sub__(self, earlier: PerProcess) -> float:
        return sum(seconds - earlier[pid] for pid, seconds in self.items() if pid in earlier)


def postgres_cpu_seconds() -> PerProcess:
    """CPU time of every PostgreSQL server process on the machine (other users' sessions
    included: on a shared machine, read it as an upper bound of what the connector caused)."""
    found = PerProcess()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
            fields = stat[stat.rindex(")") + 2 :].split()
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def machine_busy_seconds() -> float | None:
    """CPU time all processes on the machine have used since boot, summed over cores."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def stage_seconds(service: Service) -> dict[str, float]:
    """The connector's ``pavilion_stage_cpu_seconds_total`` per stage, from /metrics."""
    response = httpx.get(f"{service.url}/metrics", headers=service.headers, timeout=10)
    response.raise_for_status()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name == STAGE_METRIC:
            for sample in family.samples:
                if sample.name == f"{STAGE_METRIC}_total":
                    totals[sample.labels["stage"]] = sample.value
    return totals


# --------------------------------------------------------------------------- PostgreSQL


class PostgresDatabases:
    """Throw-away databases made through an admin connection; every one is dropped at the end.

    The first is migrated; the others are copies of it (``CREATE DATABASE ... TEMPLATE``),
    which costs a fraction of a migration.
    """

    def __init__(self, admin_url: str) -> None:
        self._admin = make_url(admin_url).set(drivername="postgresql")
        self._prefix = f"pavilion_bench_{secrets.token_hex(4)}"
        self._made: list[str] = []
        self._template: str | None = None

    def _url(self, database: str, *, username: str | None = None) -> str:
        url = self._admin.set(database=database)
        if username is not None:
            url = url.set(username=username, password=None)
        return url.render_as_string(hide_password=False)

    async def _execute(self, *statements: str) -> None:
        conn = await asyncpg.connect(self._url(self._admin.database or "postgres"), timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def check(self) -> None:
        """Raises OSError or asyncpg.PostgresError when the admin URL does not connect."""
        asyncio.run(self._execute("SELECT 1"))

    def create(self, migrate_with: Any) -> tuple[str, str]:
        """A fresh migrated database: (app URL as the non-owner role, owner URL).

        ``migrate_with(app_url, owner_url)`` migrates the first one.
        """
        name = f"{self._prefix}_{len(self._made)}"
        template = f" TEMPLATE {self._template}" if self._template else ""
        asyncio.run(self._execute(f'CREATE DATABASE "{name}"{template}'))
        self._made.append(name)
        urls = (self._url(name, username=APP_ROLE), self._url(name))
        if self._template is None:
            migrate_with(*urls)
            template_name = f"{self._prefix}_template"
            asyncio.run(self._execute(f'CREATE DATABASE "{template_name}" TEMPLATE "{name}"'))
            self._made.append(template_name)
            self._template = f'"{template_name}"'
        return urls

    def drop_all(self) -> None:
        if self._made:
            asyncio.run(
                self._execute(
                    *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self._made)
                )
            )
            self._made.clear()
