"""Helpers for the connection tests (unit and integration): clients, clocks, processes, TLS."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme

from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.connect.config import ConnectConfig
from pavilion.connect.events import MemorySink
from pavilion.observability.metrics import REGISTRY
from pavilion.providers.types import DpAuthSettings, Endpoint, ProviderConnection, TlsSettings

PAVILION = str(Path(sys.executable).with_name("pavilion"))


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def provider(
    *endpoints: Endpoint,
    auth: DpAuthSettings | None = None,
    api_key: str | None = "k" * 20,
    tls: TlsSettings | None = None,
    provider_id: str = "p1",
) -> ProviderConnection:
    return ProviderConnection(
        id=provider_id,
        name="Uni",
        claim_types=("student_status",),
        endpoints=endpoints,
        auth_type=auth.method if auth else "api_key",
        api_key=api_key,
        record_schema={},
        tenant_id="tenant-1",
        auth=auth,
        tls=tls,
    )


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    retries: int = 2,
    timeout: float = 2.0,
    config: ConnectConfig | None = None,
    clock: Callable[[], float] | None = None,
    seed: int = 1,
) -> tuple[ProviderClient, MemorySink]:
    sink = MemorySink()
    client = ProviderClient(
        timeout_seconds=timeout,
        connect_timeout_seconds=1,
        retry=RetryPolicy(retries, 0.001),
        transport=httpx.MockTransport(handler),
        rng=random.Random(seed),
        config=config,
        events=sink,
        clock=clock or time.monotonic,
    )
    return client, sink


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class TlsMaterial:
    """A trustme CA with server and client certificates written to files."""

    directory: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode()

    def server(self, name: str, *hosts: str, **issue: Any) -> tuple[Path, Path]:
        cert = self.ca.issue_cert(*(hosts or ("127.0.0.1", "localhost")), **issue)
        chain, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        return chain, key

    def client(self, name: str = "connector.pavilion.test") -> tuple[str, str]:
        cert = self.ca.issue_cert(name)
        return cert.cert_chain_pems[0].bytes().decode(), cert.private_key_pem.bytes().decode()


@dataclass
class AgentProcess:
    """A ``pavilion dp-agent`` (or token server) running as its own process on loopback."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self, timeout_s: float = 30.0) -> AgentProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout_s
        pattern = re.compile(rb"on (https?://[0-9.:\[\]]+)")
        while time.monotonic() < deadline:
            match = pattern.search(self.log_path.read_bytes())
            if match:
                self.url = match.group(1).decode()
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"process did not start: {self.log_path.read_text()[-2000:]}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def processes() -> Iterator[list[AgentProcess]]:
    """Every process appended to the list is stopped at the end."""
    started: list[AgentProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def agent_process(
    workdir: Path,
    name: str,
    records: Path,
    *,
    api_key: str | None = None,
    security: Path | None = None,
    port: int = 0,
    extra: Sequence[str] = (),
) -> AgentProcess:
    args = [PAVILION, "dp-agent", "--records", str(records), "--port", str(port)]
    args += ["--log-level", "WARNING"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
    if api_key is not None:
        key_file = workdir / f"{name}.key.txt"
        key_file.write_text(api_key)
        key_file.chmod(0o600)
        args += ["--api-key-file", str(key_file)]
    if security is not None:
        args += ["--security", str(security)]
    return AgentProcess([*args, *extra], env, workdir / f"{name}.log")


def token_server_process(workdir: Path, name: str, config: Path, port: int = 0) -> AgentProcess:
    args = [sys.executable, "-m", "pavilion.dpagent.token_server", "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAVILION_")}
    return AgentProcess([*args, "--port", str(port)], env, workdir / f"{name}.log")
