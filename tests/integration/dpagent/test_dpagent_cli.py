"""``pavilion synth`` and ``pavilion dp-agent`` as an operator runs them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner

from pavilion import serving
from pavilion.cli import dp_agent, synth
from pavilion.dpagent import runner
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex, load_records
from pavilion.errors import ServerStartFailed
from pavilion.synth.roster import ROSTER_FIELDS

KEY = "cli-test-api-key-abcdefghijklmnop"


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    dp_agent.register(app)
    synth.register(app)
    return app


def plain(output: str) -> str:
    """CLI output without Rich's box drawing and line wrapping."""
    return " ".join(output.translate(str.maketrans("", "", "│╭╮╰╯─")).split())


@pytest.fixture
def run(cli: typer.Typer) -> Callable[..., Any]:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


@pytest.fixture
def roster_csv(tmp_path: Path, run: Callable[..., Any]) -> Path:
    path = tmp_path / "roster.csv"
    assert run("synth", "--count", "40", "--out", str(path)).exit_code == 0
    return path


class FakeRunAgent:
    """Records what the command would serve, instead of serving forever."""

    def __init__(self, error: ServerStartFailed | None = None) -> None:
        self.calls: list[tuple[AgentConfig, RecordIndex, str, int]] = []
        self.error = error

    def __call__(
        self,
        config: AgentConfig,
        records: RecordIndex,
        host: str,
        port: int,
        *,
        on_listening: Callable[[str], None],
    ) -> None:
        if self.error is not None:
            raise self.error
        self.calls.append((config, records, host, port))
        on_listening(f"http://{host}:{port}")


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> FakeRunAgent:
    fake = FakeRunAgent()
    monkeypatch.setattr("pavilion.dpagent.runner.run_agent", fake)
    # Logging setup is process-wide; the tests must not leave a handler on a closed stream.
    monkeypatch.setattr("pavilion.observability.logging.configure_logging", lambda level: None)
    monkeypatch.delenv(dp_agent.DEFAULT_API_KEY_ENV, raising=False)
    return fake


# --- pavilion synth ---------------------------------------------------------------------


def test_synth_writes_the_roster_and_says_so(tmp_path: Path, run: Callable[..., Any]) -> None:
    out = tmp_path / "roster.csv"
    result = run("synth", "--count", "25", "--seed", "7", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote 25 synthetic student records" in result.output
    assert str(out) in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(ROSTER_FIELDS)
    assert len(lines) == 26


def test_synth_output_is_reproducible(tmp_path: Path, run: Callable[..., Any]) -> None:
    first, second, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for path, seed in ((first, "1"), (second, "1"), (other, "2")):
        assert run("synth", "--count", "30", "--seed", seed, "--out", str(path)).exit_code == 0
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    assert len(json.loads(first.read_text(encoding="utf-8"))) == 30


def test_synth_reference_date_moves_birth_dates(tmp_path: Path, run: Callable[..., Any]) -> None:
    early, late = tmp_path / "early.json", tmp_path / "late.json"
    run("synth", "--count", "3", "--out", str(early), "--reference-date", "2020-01-01")
    run("synth", "--count", "3", "--out", str(late), "--reference-date", "2030-01-01")
    years = [
        [int(r["birth_date"][:4]) for r in json.loads(p.read_text(encoding="utf-8"))]
        for p in (early, late)
    ]
    assert [year + 10 for year in years[0]] == years[1]


def test_synth_format_flag_applies_when_the_suffix_says_nothing(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    out = tmp_path / "roster.txt"
    assert run("synth", "--count", "2", "--format", "json", "--out", str(out)).exit_code == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "json", "--out", "roster.csv"], "does not match"),
        (["--out", "roster.txt"], "give --format"),
        (["--out", "r.csv", "--reference-date", "01/01/2026"], "--reference-date"),
        (["--out", "r.csv", "--count", "0"], "--count"),
    ],
)
def test_synth_refuses_contradictory_or_invalid_options(
    tmp_path: Path,
    run: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("synth", *args)
    assert result.exit_code == 2
    assert message in plain(result.output)
    assert list(tmp_path.iterdir()) == []


def test_synth_reports_an_unwritable_destination(tmp_path: Path, run: Callable[..., Any]) -> None:
    result = run("synth", "--count", "2", "--out", str(tmp_path / "missing" / "roster.csv"))
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_large_rosters_show_progress_and_are_complete(
    tmp_path: Path, run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "PROGRESS_THRESHOLD", 100)
    monkeypatch.setattr(synth, "_PROGRESS_STEP", 7)
    out = tmp_path / "big.csv"
    result = run("synth", "--count", "250", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Generating roster" in result.output
    assert "100%" in result.output
    assert len(load_records(out)) == 250


# --- pavilion dp-agent ------------------------------------------------------------------


def test_dp_agent_takes_its_key_from_the_default_variable(
    roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    result = run("dp-agent", "--records", str(roster_csv), env={"PAVILION_DP_API_KEY": KEY})
    assert result.exit_code == 0, result.output
    [(config, records, host, port)] = fake_run.calls
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY
    assert (len(records), host, port) == (40, "127.0.0.1", 8700)
    assert "serving 40 records on http://127.0.0.1:8700 (auth: API key)" in result.output
    assert KEY not in result.output


def test_dp_agent_maps_every_flag_into_its_config(
    roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    result = run(
        "dp-agent",
        "--records",
        str(roster_csv),
        "--host",
        "0.0.0.0",
        "--port",
        "9100",
        "--api-key-env",
        "MY_DP_KEY",
        "--latency-ms",
        "120",
        "--latency-jitter-ms",
        "30",
        "--error-rate",
        "0.25",
        "--garbage-rate",
        "0.5",
        "--seed",
        "11",
        "--log-level",
        "debug",
        env={"MY_DP_KEY": f"  {KEY}\n"},
    )
    assert result.exit_code == 0, result.output
    [(config, _, host, port)] = fake_run.calls
    assert (host, port) == ("0.0.0.0", 9100)
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY
    faults = config.faults
    assert (faults.latency_ms, faults.latency_jitter_ms) == (120, 30)
    assert (faults.error_rate, faults.garbage_rate, faults.seed) == (0.25, 0.5, 11)


def test_dp_agent_reads_a_key_file(
    tmp_path: Path, roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    key_file = tmp_path / "dp.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    result = run("dp-agent", "--records", str(roster_csv), "--api-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert fake_run.calls[0][0].api_key.get_secret_value() == KEY  # type: ignore[union-attr]
    assert "WARNING" not in result.output


def test_dp_agent_warns_about_a_key_file_others_can_read(
    tmp_path: Path, roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    key_file = tmp_path / "dp.key"
    key_file.write_text(KEY, encoding="utf-8")
    key_file.chmod(0o644)
    result = run("dp-agent", "--records", str(roster_csv), "--api-key-file", str(key_file))
    assert result.exit_code == 0
    assert "readable by other users" in result.output


def test_dp_agent_runs_without_auth_only_when_told_and_says_so(
    roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    result = run("dp-agent", "--records", str(roster_csv), "--insecure-no-auth")
    assert result.exit_code == 0, result.output
    assert fake_run.calls[0][0].api_key is None
    assert "authentication is off" in result.output
    assert "(auth: off)" in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "no API key: set $PAVILION_DP_API_KEY"),
        (["--api-key-env", "EMPTY_KEY"], {"EMPTY_KEY": "  "}, "no API key: set $EMPTY_KEY"),
        (["--insecure-no-auth", "--api-key-env", "X"], {}, "takes no API key source"),
        (["--api-key-env", "X", "--api-key-file", "k"], {}, "not both"),
        (["--api-key-file", "absent.key"], {}, "cannot read the API key file"),
        (["--api-key-env", "SHORT"], {"SHORT": "tiny"}, "at least 16 characters"),
        (["--error-rate", "0.7", "--garbage-rate", "0.7"], {"K": KEY}, "must not exceed 1"),
        (["--error-rate", "1.5"], {}, "--error-rate"),
        (["--port", "70000"], {}, "--port"),
    ],
)
def test_dp_agent_refuses_to_start_on_bad_options(
    tmp_path: Path,
    roster_csv: Path,
    run: Callable[..., Any],
    fake_run: FakeRunAgent,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if "K" in env:
        args = [*args, "--api-key-env", "K"]
    result = run("dp-agent", "--records", str(roster_csv), *args, env=env)
    assert result.exit_code == 2
    assert message in plain(result.output)
    assert "tiny" not in result.output
    assert fake_run.calls == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\xff\xfe\xfa", "not UTF-8")],
)
def test_dp_agent_refuses_an_unusable_key_file(
    tmp_path: Path,
    roster_csv: Path,
    run: Callable[..., Any],
    fake_run: FakeRunAgent,
    content: bytes,
    message: str,
) -> None:
    key_file = tmp_path / "dp.key"
    key_file.write_bytes(content)
    result = run("dp-agent", "--records", str(roster_csv), "--api-key-file", str(key_file))
    assert result.exit_code == 2
    assert message in plain(result.output)


def test_dp_agent_names_the_broken_spot_of_a_bad_roster(
    tmp_path: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    roster = tmp_path / "bad.csv"
    roster.write_text(",".join(ROSTER_FIELDS) + "\nS1234567,Zoë\n", encoding="utf-8")
    result = run("dp-agent", "--records", str(roster), env={"PAVILION_DP_API_KEY": KEY})
    assert result.exit_code == 1
    assert "line 2, field 'family_name'" in result.output
    assert fake_run.calls == []


def test_dp_agent_reports_a_port_it_cannot_listen_on(
    roster_csv: Path, run: Callable[..., Any], fake_run: FakeRunAgent
) -> None:
    fake_run.error = ServerStartFailed("cannot listen on 127.0.0.1:8700: Address already in use")
    result = run("dp-agent", "--records", str(roster_csv), env={"PAVILION_DP_API_KEY": KEY})
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1:8700: Address already in use" in result.output


def test_dp_agent_really_serves_until_stopped(
    roster_csv: Path, run: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole command, real uvicorn included; a helper thread queries it, then stops it."""
    monkeypatch.setattr("pavilion.observability.logging.configure_logging", lambda level: None)
    servers: list[uvicorn.Server] = []
    real_build = runner.build_agent_server

    def spying_build(*args: Any, **kwargs: Any) -> uvicorn.Server:
        servers.append(real_build(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(runner, "build_agent_server", spying_build)
    bound_urls: list[str] = []
    real_url = serving.socket_url

    def spying_url(sock: Any, **kwargs: Any) -> str:
        bound_urls.append(real_url(sock, **kwargs))
        return bound_urls[-1]

    monkeypatch.setattr(serving, "socket_url", spying_url)
    answers: list[int] = []

    def query_then_stop() -> None:
        deadline = time.monotonic() + 10
        while not (servers and servers[0].started) and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            answers.append(httpx.get(f"{bound_urls[0]}/healthz", timeout=5).json()["records"])
        finally:
            servers[0].should_exit = True

    helper = threading.Thread(target=query_then_stop, daemon=True)
    helper.start()
    result = run(
        "dp-agent", "--records", str(roster_csv), "--port", "0", env={"PAVILION_DP_API_KEY": KEY}
    )
    helper.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert answers == [40]
    assert f"serving 40 records on {bound_urls[0]}" in result.output
