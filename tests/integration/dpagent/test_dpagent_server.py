"""The agent under real uvicorn on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

import errno
import socket
import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from pydantic import SecretStr

from pavilion.dpagent import runner
from pavilion.dpagent.config import AgentConfig, FaultConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.dpagent.runner import run_agent, running_agent
from pavilion.errors import ServerStartFailed
from pavilion.serving import bind_socket, socket_url
from pavilion.synth.roster import StudentRecord, generate_roster

KEY = "integration-test-key-abcdefghijkl"
RECORDS = generate_roster(30, seed=8, reference_date=date(2026, 1, 1))


def index() -> RecordIndex:
    return RecordIndex(RECORDS, as_of=datetime(2026, 1, 1, tzinfo=UTC))


def config(**faults: Any) -> AgentConfig:
    return AgentConfig(api_key=SecretStr(KEY), faults=FaultConfig(**faults))


def refuses_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False


def test_the_agent_serves_lookups_over_http_and_shuts_down_cleanly() -> None:
    subject: StudentRecord = RECORDS[0]
    threads_before = set(threading.enumerate())
    with running_agent(config(), index()) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=5) as http:
            assert http.get("/healthz").json() == {"status": "ok", "records": len(RECORDS)}
            denied = http.post("/v1/lookup", json={"identifiers": {"email": subject.email}})
            found = http.post(
                "/v1/lookup",
                json={"identifiers": {"email": subject.email}},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            unknown = http.post(
                "/v1/lookup",
                json={"identifiers": {"student_id": "S0000000"}},
                headers={"X-API-Key": KEY},
            )
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert found.json()["record"] == subject.as_json()
    assert found.json()["as_of"] == "2026-01-01T00:00:00Z"
    assert unknown.json() == {"found": False}
    assert "server" not in found.headers
    assert refuses_connections(url)
    assert set(threading.enumerate()) <= threads_before


def test_keep_alive_connections_do_not_block_shutdown() -> None:
    http = httpx.Client(timeout=5)
    started = time.monotonic()
    with running_agent(config(), index()) as url:
        assert http.get(f"{url}/healthz").status_code == 200
    assert time.monotonic() - started < runner.GRACEFUL_SHUTDOWN_S
    http.close()


def test_injected_latency_is_seen_by_a_real_client() -> None:
    with (
        running_agent(config(latency_ms=200), index()) as url,
        httpx.Client(base_url=url, timeout=5, headers={"X-API-Key": KEY}) as http,
    ):
        started = time.perf_counter()
        response = http.post("/v1/lookup", json={"identifiers": {"student_id": "S0000000"}})
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed >= 0.2


def test_a_client_timeout_shorter_than_the_latency_times_out() -> None:
    with (
        running_agent(config(latency_ms=1_000), index()) as url,
        httpx.Client(base_url=url, timeout=0.2, headers={"X-API-Key": KEY}) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.post("/v1/lookup", json={"identifiers": {"student_id": "S0000000"}})


def test_server_logs_hold_no_personal_data(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    subject = RECORDS[1]
    with (
        structlog.testing.capture_logs() as events,
        running_agent(config(error_rate=0.5, seed=2), index()) as url,
        httpx.Client(base_url=url, timeout=5, headers={"X-API-Key": KEY}) as http,
    ):
        for _ in range(6):
            http.post("/v1/lookup", json={"identifiers": {"student_id": subject.student_id}})
        http.post("/v1/lookup", json={"identifiers": {"email": subject.email, "x": "y"}})
    captured = capfd.readouterr()
    everything = "\n".join([repr(events), caplog.text, captured.out, captured.err])
    assert any(event.get("outcome") == "found" for event in events)
    for value in (
        subject.student_id,
        subject.email,
        subject.given_name,
        subject.family_name,
        subject.birth_date.isoformat(),
        KEY,
    ):
        assert value not in everything


def test_bind_socket_picks_a_free_port_that_is_already_listening() -> None:
    with bind_socket("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()
        assert (host, port > 0) == ("127.0.0.1", True)
        assert socket_url(sock) == f"http://127.0.0.1:{port}"
        # Listening before any server runs: a connection waits in the backlog, not refused.
        with socket.create_connection((host, port), timeout=1):
            pass


def test_binding_a_port_that_is_in_use_fails() -> None:
    with bind_socket() as taken, pytest.raises(ServerStartFailed, match="in use") as caught:
        bind_socket("127.0.0.1", taken.getsockname()[1])
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.EADDRINUSE
    assert caught.value.detail.startswith("cannot listen on 127.0.0.1:")


def test_ipv6_urls_are_bracketed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = bind_socket("::1", 0)
    except ServerStartFailed:
        pytest.skip("no IPv6 loopback on this machine")
    with sock:
        assert socket_url(sock) == f"http://[::1]:{sock.getsockname()[1]}"


def test_run_agent_announces_its_url_and_serves_until_told_to_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers: list[uvicorn.Server] = []
    real_build = runner.build_agent_server

    def spying_build(*args: Any, **kwargs: Any) -> uvicorn.Server:
        servers.append(real_build(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(runner, "build_agent_server", spying_build)
    announced: list[str] = []
    thread = threading.Thread(
        target=run_agent,
        args=(config(), index(), "127.0.0.1", 0),
        kwargs={"on_listening": announced.append},
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not (servers and servers[0].started) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(announced) == 1
    assert httpx.get(f"{announced[0]}/healthz", timeout=5).json()["records"] == len(RECORDS)
    servers[0].should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert refuses_connections(announced[0])


class StubServer:
    """Stands in for uvicorn to provoke start-up failures."""

    def __init__(self, *, exits_at_once: bool) -> None:
        self.started = False
        self._exits_at_once = exits_at_once
        self._stop = threading.Event()

    @property
    def should_exit(self) -> bool:
        return self._stop.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._stop.set()

    def run(self, sockets: list[socket.socket]) -> None:
        if not self._exits_at_once:
            self._stop.wait(10)


@pytest.mark.parametrize(
    ("exits_at_once", "error", "message"),
    [
        (True, ServerStartFailed, "stopped during start-up"),
        (False, ServerStartFailed, "did not start"),
    ],
)
def test_running_agent_reports_a_server_that_never_starts(
    monkeypatch: pytest.MonkeyPatch, exits_at_once: bool, error: type[Exception], message: str
) -> None:
    stub = StubServer(exits_at_once=exits_at_once)
    monkeypatch.setattr(runner, "build_agent_server", lambda *_args, **_kw: stub)
    with (
        pytest.raises(error, match=message),
        running_agent(config(), index(), startup_timeout_s=0.2),
    ):
        pass
    assert stub.should_exit
