"""``pavilion serve --workers N``: several processes on one socket, PostgreSQL only.

The multi-process server runs as a real subprocess (uvicorn's supervisor installs signal
handlers and spawns interpreters, which a test process must not do to itself), bounded in
time, and is stopped with SIGTERM as an operator's service manager would.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pavilion.cli.main import app
from pavilion.errors import PavilionError
from waiting import wait_until
from zerotrust_support import TestCA

CLI = (sys.executable, "-c", "from pavilion.cli.main import main; main()")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LISTENING = re.compile(r"listening on (https?://127\.0\.0\.1:\d+) \(2 worker processes\)")


def test_serve_refuses_several_workers_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert isinstance(result.exception, PavilionError)
    assert "--workers 2 needs PostgreSQL" in result.exception.detail
    assert "PAVILION_DATABASE_URL" in result.exception.detail


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its new parent reaps it


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(child) for child in path.read_text().split()}


@contextmanager
def _serving(env: dict[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``pavilion serve --workers 2 --port 0`` in a subprocess; stderr goes to a file."""
    log = cwd / "serve.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [*CLI, "serve", "--workers", "2", "--port", "0"],
            env=os.environ | env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_listening(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while (found := LISTENING.search(log.read_text())) is None:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no 'listening on' line: {log.read_text()}"
        time.sleep(0.05)
    return found.group(1)


def _wait_healthy(url: str, process: subprocess.Popen[str], verify: ssl.SSLContext | bool) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=5, verify=verify) as http:
        while True:
            assert process.poll() is None, "the server exited"
            try:
                if http.get(f"{url}/healthz").json() == {"status": "ok"}:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no healthy answer"
            time.sleep(0.05)


def _postgres_env(tmp_path: Path, urls: tuple[str, str]) -> dict[str, str]:
    return {
        "PAVILION_DATA_DIR": str(tmp_path / "data"),
        "PAVILION_DATABASE_URL": urls[0],
        "PAVILION_DATABASE_MIGRATION_URL": urls[1],
        "PAVILION_LOG_LEVEL": "WARNING",
    }


def _stop_cleanly(process: subprocess.Popen[str], log: Path) -> None:
    workers = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0, log.read_text()
    # The supervisor's resource tracker leaves when it sees the supervisor's pipe close.
    wait_until(lambda: not [pid for pid in workers if _alive(pid)], what="workers to exit")
    assert len(LISTENING.findall(log.read_text())) == 1  # announced once, not per worker


def test_two_workers_on_postgres_answer_and_stop_cleanly(
    tmp_path: Path, postgres_urls: tuple[str, str]
) -> None:
    with _serving(_postgres_env(tmp_path, postgres_urls), tmp_path) as (process, log):
        url = _wait_listening(process, log)
        _wait_healthy(url, process, verify=False)
        # Both workers came up (and the supervisor's resource tracker may sit beside them).
        assert len(_children(process.pid)) >= 2
        with httpx.Client(timeout=5) as http:
            assert all(http.get(f"{url}/healthz").status_code == 200 for _ in range(20))
        _stop_cleanly(process, log)


def test_two_workers_terminate_tls_each(tmp_path: Path, postgres_urls: tuple[str, str]) -> None:
    ca = TestCA()
    cert, key = ca.issue("localhost", server=True).write(tmp_path, "server")
    env = _postgres_env(tmp_path, postgres_urls) | {
        "PAVILION_TLS_CERT_FILE": str(cert),
        "PAVILION_TLS_KEY_FILE": str(key),
    }
    with _serving(env, tmp_path) as (process, log):
        url = _wait_listening(process, log)
        assert url.startswith("https://")
        trust = ssl.create_default_context(cadata=ca.cert_pem)
        _wait_healthy(url, process, verify=trust)
        _stop_cleanly(process, log)


def test_a_worker_that_cannot_start_stops_the_server(
    tmp_path: Path, postgres_urls: tuple[str, str]
) -> None:
    app_url, owner_url = postgres_urls
    missing = (app_url.rsplit("/", 1)[0] + "/pavilion_no_such_db", owner_url)
    with _serving(_postgres_env(tmp_path, missing), tmp_path) as (process, log):
        assert process.wait(timeout=START_TIMEOUT_S) == 1  # failed: exit 1 (2 is a usage error)
        assert "could not start" in log.read_text()
