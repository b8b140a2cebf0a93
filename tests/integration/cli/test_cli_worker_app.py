"""What one worker of ``pavilion serve --workers N`` builds, in this process: the pickled app
factory carries the settings only, builds its own runtime and TLS context, and turns a start-up
failure into uvicorn's start-up failure code (so that the supervisor stops, not loops)."""

from __future__ import annotations

import pickle
import ssl
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner
from uvicorn.config import STARTUP_FAILURE

from pavilion import serving
from pavilion.api.workers import WorkerApp
from pavilion.cli.main import app
from pavilion.config.settings import Settings, load_settings
from pavilion.errors import ConfigurationError, ServerStartFailed
from zerotrust_support import TestCA


async def test_the_pickled_factory_builds_its_own_runtime_and_app(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[bool] = []  # the worker's heap is settled once its app is built
    monkeypatch.setattr("pavilion.serving.settle_heap", lambda: settled.append(True))
    factory = WorkerApp(sqlite_settings)
    runtime = factory.runtime()
    assert factory.runtime() is runtime  # built once per worker
    copy = pickle.loads(pickle.dumps(factory))
    assert copy.settings == sqlite_settings
    assert copy._runtime is None  # a runtime never travels to a worker
    app = copy()
    assert isinstance(app, FastAPI)
    assert settled == [True]
    assert app.state.runtime is not runtime
    await copy.runtime().aclose()
    await runtime.aclose()


async def test_each_worker_builds_the_tls_context(tmp_path: Path) -> None:
    cert, key = TestCA().issue("localhost", server=True).write(tmp_path, "server")
    settings = load_settings(None, data_dir=tmp_path, tls_cert_file=cert, tls_key_file=key)
    factory = pickle.loads(pickle.dumps(WorkerApp(settings)))
    context = factory.ssl_context(None, ssl.create_default_context)
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    await factory.runtime().aclose()


async def test_a_bad_tls_key_is_a_start_up_failure(tmp_path: Path) -> None:
    cert, key = TestCA().issue("localhost", server=True).write(tmp_path, "server")
    key.chmod(0o644)  # readable by others: refused
    settings = load_settings(None, data_dir=tmp_path, tls_cert_file=cert, tls_key_file=key)
    factory = WorkerApp(settings)
    with pytest.raises(SystemExit) as stopped:
        factory.ssl_context(None, ssl.create_default_context)
    assert stopped.value.code == STARTUP_FAILURE
    await factory.runtime().aclose()


async def test_the_tls_hook_needs_tls(sqlite_settings: Settings) -> None:
    factory = WorkerApp(sqlite_settings)
    with pytest.raises(ConfigurationError):
        factory.ssl_context(None, ssl.create_default_context)
    await factory.runtime().aclose()


def test_a_runtime_that_cannot_be_built_is_a_start_up_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_settings: Settings) -> None:
        raise ConfigurationError("the keystore cannot be opened")

    monkeypatch.setattr("pavilion.runtime.build_runtime", broken)
    with pytest.raises(SystemExit) as stopped:
        WorkerApp(load_settings(None, data_dir=tmp_path)).runtime()
    assert stopped.value.code == STARTUP_FAILURE


class _Process:
    def __init__(self, exitcode: int) -> None:
        self.pid = 4242
        self.exitcode = exitcode


def _fake_supervisor(exitcode: int, seen: dict[str, Any]) -> type:
    class Supervisor:
        def __init__(self, config: Any, sockets: list[Any]) -> None:
            seen.update(config=config, sockets=sockets)
            self.processes = [_Process(0), _Process(exitcode)]

        def run(self) -> None:
            seen["ran"] = True

    return Supervisor


def test_serve_workers_hands_the_factory_to_uvicorns_supervisor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serving, "Multiprocess", _fake_supervisor(0, seen))
    urls: list[str] = []

    def factory() -> FastAPI:
        return FastAPI()

    serving.serve_workers(factory, "127.0.0.1", 0, workers=3, on_listening=urls.append)
    assert seen["ran"] is True
    assert seen["config"].workers == 3
    assert seen["config"].factory is True
    assert seen["config"].app is factory
    assert seen["config"].timeout_worker_healthcheck == serving.WORKER_HEALTHCHECK_S
    assert len(urls) == 1
    assert urls[0].startswith("http://127.0.0.1:")


def test_serve_workers_reports_a_worker_that_could_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serving, "Multiprocess", _fake_supervisor(STARTUP_FAILURE, {}))
    with pytest.raises(ServerStartFailed, match="could not start"):
        serving.serve_workers(FastAPI, "127.0.0.1", 0, workers=2)


def test_serve_workers_needs_two_or_more() -> None:
    with pytest.raises(ConfigurationError):
        serving.serve_workers(FastAPI, "127.0.0.1", 0, workers=1)


def test_serve_hands_the_workers_their_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_serve_workers(factory: Any, host: str, port: int, **options: Any) -> None:
        seen.update(options, factory=factory, host=host, port=port)
        options["on_listening"]("http://127.0.0.1:1234")

    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAVILION_DATABASE_URL", "postgresql://pavilion_app@127.0.0.1/never_opened")
    monkeypatch.setattr("pavilion.serving.serve_workers", fake_serve_workers)
    result = CliRunner().invoke(app, ["serve", "--workers", "3", "--port", "0"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert isinstance(seen["factory"], WorkerApp)
    assert seen["factory"].settings.database_url.startswith("postgresql+asyncpg://")
    assert seen["workers"] == 3
    assert seen["port"] == 0
    assert seen["ssl_context_factory"] is None  # no TLS configured
    assert "listening on http://127.0.0.1:1234 (3 worker processes)" in result.output
    assert (tmp_path / "keystore").is_dir()  # keys made once, before any worker starts
