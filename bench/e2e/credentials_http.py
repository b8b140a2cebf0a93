"""The VC-API through HTTP: issuance and verification rates, server CPU, CPU per stage.

``bench/credentials.py`` runs ``pavilion serve`` in its own process (SoftHSM2 keystore,
SQLite, stage timers on) and drives it from here:

* ``POST /credentials/issue`` with an SD-JWT VC body, with a status-list entry (the default:
  reserve + bind, revocable) and without one (``options.status: false``);
* ``POST /presentations/verify`` with SD-JWT VCs that the server issued, each presented with
  a Key-Binding JWT (its own nonce), so every verification checks the issuer's signature, the
  disclosures, the holder's key binding, the validity and the status entry.

The load comes from raw HTTP/1.1 keep-alive connections (``e2e.rawhttp``, requests encoded
once): the client costs tens of microseconds per request, so the figures are the server's, not
the load generator's. Stage CPU comes from the server's
``/metrics`` (``pavilion_stage_cpu_seconds_total``), read outside the measured window.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from prometheus_client.parser import text_string_to_metric_families

from e2e.rawhttp import Connection, collector_paused
from e2e.services import Service, tree_cpu_seconds, wait_workers_settled

STAGE_METRIC: Final = "pavilion_stage_cpu_seconds"
#: The stages an issuance meets, in order, then the rest (docs/PERFORMANCE.md).
STAGE_ROWS: Final = ("http", "admit", "issue", "persist", "verify", "other")
AUDIENCE: Final = "https://verifier.example"


@dataclass
class Window:
    """One measured window: answers, time, server CPU and stage CPU."""

    ok: int = 0
    errors: int = 0
    error_sample: str = ""
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu_s * 1000 / max(self.ok, 1)

    def stages_ms(self) -> dict[str, float]:
        """CPU ms per request per stage, ``outside`` (no task: HTTP parsing, the loop, the
        HSM and database threads) and ``total`` (the process)."""
        per = {name: s * 1000 / max(self.ok, 1) for name, s in self.stage_s.items() if s > 0}
        per["outside"] = self.cpu_ms - sum(per.values())
        per["total"] = self.cpu_ms
        return per


@dataclass
class Server:
    url: str
    pid: int
    metrics_token: str

    def stage_seconds(self) -> dict[str, float]:
        response = httpx.get(
            f"{self.url}/metrics",
            headers={"authorization": f"Bearer {self.metrics_token}"},
            timeout=10,
        )
        response.raise_for_status()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            if family.name == STAGE_METRIC:
                for sample in family.samples:
                    if sample.name == f"{STAGE_METRIC}_total":
                        totals[sample.labels["stage"]] = sample.value
        return totals

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server so far: its process and its workers."""
        return tree_cpu_seconds(self.pid) or 0.0


@contextmanager
def serve(
    pavilion: str, env: dict[str, str], port: int, log: Path, *, workers: int = 1
) -> Iterator[Server]:
    """``pavilion serve`` (``--workers``) with stage timing on and a metrics token; stopped
    with SIGINT. With several workers /metrics answers for whichever worker takes the scrape,
    so stage figures are one worker's share only."""
    metrics_token = secrets.token_urlsafe(32)
    env = {**env, "PAVILION_STAGE_TIMING": "true", "PAVILION_METRICS_TOKEN": metrics_token}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [pavilion, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the connector did not start; see {log}")
        if workers > 1:
            wait_workers_settled(Service("connector", process, url, log), workers)
        yield Server(url, process.pid, metrics_token)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _drive(
    port: int, requests: Sequence[bytes], concurrency: int, seconds: float, expect: int
) -> Window:
    """``concurrency`` connections sending back-to-back requests (cycling through
    ``requests``) for ``seconds``; an answer other than ``expect`` counts as an error."""
    connections = [await Connection.open("127.0.0.1", port) for _ in range(concurrency)]
    window = Window()
    try:
        deadline = time.perf_counter() + seconds

        async def worker(number: int, connection: Connection) -> None:
            turn = number
            while time.perf_counter() < deadline:
                status, body = await connection.request(requests[turn % len(requests)])
                turn += concurrency
                if status == expect:
                    window.ok += 1
                else:
                    window.errors += 1
                    window.error_sample = window.error_sample or f"{status} {body[:300]!r}"

        started = time.perf_counter()
        await asyncio.gather(*(worker(n, c) for n, c in enumerate(connections)))
        window.seconds = time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()
    return window


def measure(
    server: Server,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    expect: int,
) -> Window:
    """A short warm-up, then one measured window with the server's CPU and stage CPU."""
    import uvloop

    uvloop.run(_drive(port, requests, concurrency, min(0.5, seconds), expect))
    stages_before = server.stage_seconds()
    cpu_before = server.cpu_seconds()
    with collector_paused():
        window = uvloop.run(_drive(port, requests, concurrency, seconds, expect))
    window.server_cpu_s = server.cpu_seconds() - cpu_before
    stages_after = server.stage_seconds()
    window.stage_s = {
        name: value - stages_before.get(name, 0.0) for name, value in stages_after.items()
    }
    return window


def presentations(
    url: str, token: str, holder: Any, *, credentials: int, each: int
) -> list[dict[str, Any]]:
    """``credentials`` SD-JWT VCs issued by the server to ``holder`` (with status entries),
    each presented ``each`` times with its own nonce: /presentations/verify bodies."""
    from pavilion.credentials import sd_jwt

    async def build() -> list[dict[str, Any]]:
        bodies = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for _ in range(credentials):
                answer = await client.post(
                    "/credentials/issue",
                    headers={"authorization": f"Bearer {token}"},
                    json={
                        "credential": STUDENT_VC,
                        "options": {"format": "sd_jwt_vc", "holderJwk": holder.public_jwk()},
                    },
                )
                answer.raise_for_status()
                envelope = answer.json()["verifiableCredential"]
                issued = envelope["id"].split(",", 1)[1]
                for _ in range(each):
                    nonce = secrets.token_urlsafe(16)
                    presented = await sd_jwt.present(
                        issued,
                        holder=holder,
                        audience=AUDIENCE,
                        nonce=nonce,
                        issued_at=datetime.now(UTC),
                    )
                    bodies.append(
                        {
                            "verifiablePresentation": presented,
                            "options": {"challenge": nonce, "domain": AUDIENCE},
                        }
                    )
        return bodies

    return asyncio.run(build())


STUDENT_VC: Final = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ],
    "type": ["VerifiableCredential", "StudentStatusCredential"],
    "credentialSubject": {"studentStatus": {"current": True}},
}


def print_stage_table(label: str, window: Window) -> None:
    """Server CPU ms per request by stage (the best round's window), the remainder, the total."""
    per = window.stages_ms()
    print(f"\n[{label}] server CPU per request by stage ({window.ok:,} requests)")
    print(f"{'stage':<15} {'ms/request':>10} {'share':>6}")
    rows = [*STAGE_ROWS, *sorted(set(per) - {*STAGE_ROWS, "outside", "total"}), "outside"]
    for name in rows:
        if name in per:
            share = per[name] / per["total"] * 100 if per["total"] else 0.0
            label_ = "outside tasks" if name == "outside" else name
            print(f"{label_:<15} {per[name]:>10.3f} {share:>5.0f}%")
    print(f"{'total':<15} {per['total']:>10.3f}")
