"""``pavilion demo``: the connector end to end on its embedded defaults.

Migrates a fresh SQLite database, creates a tenant and its tokens, synthesises a roster,
starts a DP agent and the connector on free loopback ports, registers the DP through the API,
runs verifications, verifies a credential against the JWKS, and prints the audit checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from pavilion.errors import PavilionError

if TYPE_CHECKING:
    import httpx

    from pavilion.config.settings import Settings

console = Console(width=110)


@dataclass(frozen=True)
class Tokens:
    platform: str
    admin: str
    broker: str
    auditor: str


#: The smallest roster the demo accepts: seed 42 has a former student from the 12th record on.
MIN_ROSTER_SIZE: Final = 50


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main Typer app."""
    app.command("demo")(demo)


def demo(
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the DP agent and connector up.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Where to keep the demo's files (kept afterwards); a temporary folder, "
            "removed on every exit, if omitted.",
        ),
    ] = None,
    roster_size: Annotated[
        int,
        typer.Option(
            min=MIN_ROSTER_SIZE,
            max=1_000_000,
            metavar="N",
            help="Students in the synthetic roster.",
        ),
    ] = 1000,
) -> None:
    """Run the connector end to end on its embedded defaults (SQLite, software keystore).

    The temporary folder holds keys and tokens: it is removed however the demo ends (done,
    an error, Ctrl-C or SIGTERM), --keep-running included.

    Example: pavilion demo --keep-running
    """
    workdir = data_dir or Path(tempfile.mkdtemp(prefix="pavilion-demo-"))
    try:
        with _sigterm_as_interrupt():
            _run(workdir, keep_running, roster_size)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if data_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
            console.print(f"removed {workdir} (its keys and tokens with it)", highlight=False)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C, so that the clean-up runs (signal handlers can only
    be set from the main thread; elsewhere, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(workdir: Path, keep_running: bool, roster_size: int) -> None:
    import httpx
    from pydantic import SecretStr

    from pavilion.api.app import create_app
    from pavilion.config.settings import load_settings
    from pavilion.dpagent.app import create_agent_app
    from pavilion.dpagent.config import AgentConfig
    from pavilion.dpagent.records import load_records
    from pavilion.observability.logging import configure_logging
    from pavilion.runtime import build_runtime
    from pavilion.serving import BackgroundServer
    from pavilion.store.migrate import upgrade
    from pavilion.synth.roster import (
        DEFAULT_REFERENCE_DATE,
        generate_roster,
        pick_examples,
        write_roster,
    )

    settings = load_settings(
        None,
        data_dir=workdir,
        database_url=f"sqlite:///{(workdir / 'pavilion.db').resolve()}",
        port=0,
        log_level="WARNING",
    )
    configure_logging(settings.log_level)
    console.rule("[bold]Pavilion DP Connector demo")
    console.print(f"data directory: {workdir}")

    upgrade(settings.database_migration_url)
    console.print("1. database migrated (SQLite)")
    tokens = asyncio.run(_bootstrap(settings))
    console.print(
        "2. tenant [bold]demo-university[/bold] created with admin, broker and auditor tokens"
    )

    roster_path = workdir / "roster.csv"
    records = generate_roster(roster_size, seed=42, reference_date=DEFAULT_REFERENCE_DATE)
    write_roster(records, roster_path, "csv")
    try:
        examples = pick_examples(records)
    except ValueError as exc:
        raise PavilionError(f"--roster-size {roster_size}: {exc}") from exc
    console.print(f"3. synthetic roster of {roster_size} students written to {roster_path.name}")

    api_key = secrets.token_urlsafe(32)
    agent = BackgroundServer(
        create_agent_app(
            AgentConfig(api_key=SecretStr(api_key)),
            load_records(roster_path, as_of=datetime.now(UTC)),
        )
    ).start()
    runtime = build_runtime(settings)
    connector = BackgroundServer(create_app(runtime)).start()
    console.print(f"4. DP agent on {agent.url}, connector on {connector.url}")
    try:
        with httpx.Client(base_url=connector.url, timeout=30) as http:
            provider_id = _register_provider(http, tokens, agent.url, api_key)
            console.print(f"5. DP registered through the API: {provider_id}")
            rows = _verifications(http, tokens, provider_id, examples)
            _print_results(rows)
            _check_credential(http, rows)
            _print_checkpoint(http, tokens, rows)
        if keep_running:
            _wait(connector.url, agent.url, tokens)
    finally:
        connector.stop()
        agent.stop()


async def _bootstrap(settings: Settings) -> Tokens:
    from pavilion.runtime import build_runtime
    from pavilion.tenancy.models import PLATFORM_TENANT_ID
    from pavilion.tenancy.roles import Role

    rt = build_runtime(settings)
    try:
        await rt.tenancy.ensure_platform_tenant()
        tenant = await rt.tenancy.create_tenant("demo-university")
        platform = await rt.tenancy.create_token(PLATFORM_TENANT_ID, "demo", Role.PLATFORM_ADMIN)
        admin = await rt.tenancy.create_token(tenant.id, "demo-admin", Role.TENANT_ADMIN)
        broker = await rt.tenancy.create_token(tenant.id, "demo-broker", Role.BROKER)
        auditor = await rt.tenancy.create_token(tenant.id, "demo-auditor", Role.AUDITOR)
        return Tokens(platform.secret, admin.secret, broker.secret, auditor.secret)
    finally:
        await rt.aclose()


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise PavilionError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )
    return response.json()


def _register_provider(http: httpx.Client, tokens: Tokens, agent_url: str, api_key: str) -> str:
    from pavilion.synth.roster import ROSTER_RECORD_SCHEMA

    body = {
        "name": "Demo University Registry",
        "claim_types": ["student_status", "age_over", "membership"],
        "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": agent_url}],
        "auth": {"type": "api_key", "api_key": api_key},
        "record_schema": ROSTER_RECORD_SCHEMA,
    }
    return str(
        _expect(http.post("/v1/providers", json=body, headers=_auth(tokens.admin)), 201)["id"]
    )


def _verifications(
    http: httpx.Client, tokens: Tokens, provider_id: str, examples: Any
) -> list[dict[str, Any]]:
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (
            "current student",
            {"type": "student_status"},
            {"student_id": examples.current.student_id},
        ),
        ("former student", {"type": "student_status"}, {"student_id": examples.former.student_id}),
        ("unknown person", {"type": "student_status"}, {"student_id": examples.unknown_student_id}),
        (
            "current student, by e-mail",
            {"type": "age_over", "threshold": 18},
            {"email": examples.current.email},
        ),
    ]
    rows = []
    for label, claim, identifiers in cases:
        started = time.perf_counter()
        body = {
            "provider_id": provider_id,
            "claim": claim,
            "subject": {"identifiers": identifiers, "residency": "EU"},
            "purpose": "demo: student discount eligibility",
            "format": "jwt_vc",
        }
        headers = {**_auth(tokens.broker), "idempotency-key": secrets.token_hex(8)}
        result = _expect(http.post("/v1/verifications", json=body, headers=headers), 201)
        result["label"] = label
        result["ms"] = (time.perf_counter() - started) * 1000
        rows.append(result)
    return rows


def _print_results(rows: list[dict[str, Any]]) -> None:
    table = Table("subject", "claim", "decision", "credential", "audit leaf", "ms")
    for row in rows:
        claim = row["claim"]["type"] + (
            f" >= {row['claim']['threshold']}" if "threshold" in row["claim"] else ""
        )
        table.add_row(
            row["label"],
            claim,
            row["outcome"],
            "JWT VC (ES256)" if row["credential"] else "-",
            str(row["audit"]["index"]),
            f"{row['ms']:.1f}",
        )
    console.print(table)


def _check_credential(http: httpx.Client, rows: list[dict[str, Any]]) -> None:
    from pavilion.jose import verify_compact

    jwks = _expect(http.get("/.well-known/jwks.json"), 200)
    issued = [r for r in rows if r["credential"]]
    for row in issued:
        header, payload = verify_compact(row["credential"], jwks)
        if payload["exp"] <= time.time():
            raise PavilionError("demo credential is already expired")
    console.print(
        f"6. {len(issued)} credentials verified against /.well-known/jwks.json "
        f"(kid {header['kid'][:12]}…): {payload['vc']['credentialSubject']}"
    )


def _print_checkpoint(http: httpx.Client, tokens: Tokens, rows: list[dict[str, Any]]) -> None:
    from pavilion.audit.checkpoint import verify_checkpoint
    from pavilion.audit.merkle import verify_inclusion

    checkpoint = _expect(http.get("/v1/audit/checkpoint", headers=_auth(tokens.auditor)), 200)
    parsed = verify_checkpoint(checkpoint["note"], checkpoint["verifier_key"])
    first = rows[0]["audit"]["index"]
    proof = _expect(
        http.get(
            "/v1/audit/proofs/inclusion",
            params={"index": first, "tree_size": parsed.size},
            headers=_auth(tokens.auditor),
        ),
        200,
    )
    verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        first,
        parsed.size,
        [bytes.fromhex(h) for h in proof["proof"]],
        parsed.root_hash,
    )
    console.print(
        "7. audit checkpoint (C2SP signed note, Ed25519), signature and inclusion verified:"
    )
    console.print(checkpoint["note"], markup=False, highlight=False, end="")
    console.print(f"verifier key: {checkpoint['verifier_key']}", markup=False)
    console.rule("[green]demo finished")


def _wait(connector_url: str, agent_url: str, tokens: Tokens) -> None:
    console.print(f"connector: {connector_url}  (OpenAPI: {connector_url}/docs)")
    console.print(f"DP agent:  {agent_url}")
    console.print(f"platform-admin token: {tokens.platform}", markup=False)
    console.print(f"tenant-admin token: {tokens.admin}", markup=False)
    console.print(f"broker token: {tokens.broker}", markup=False)
    console.print(f"auditor token: {tokens.auditor}", markup=False)
    console.print("press Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")
