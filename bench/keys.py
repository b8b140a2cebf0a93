"""Keys and status lists: issuance through the verification workflow with software and with
PKCS#11 (SoftHSM2) keys beside the raw sign rate of the same key, and status-list allocation,
revocation and publishing throughput against the database.

Per keystore backend (a fresh SQLite database, or ``--database-url`` PostgreSQL, each):

* ``raw``: the backend signer itself (pyca for software keys; ``Pkcs11Signer`` through the
  token's worker for the HSM) with 64 concurrent callers; ``audited``: the same key through the
  keystore's counting wrapper (what every caller gets), as a ratio to raw;
* ``issue``: ``run_verification`` end to end with 16 concurrent callers: policy, a DP lookup
  (the agent in process, over ASGI), the decision, a status-list index reserved, the JWT VC
  signed, one transaction recording the verification, the credential, its status entry and the
  audit leaf. The ratio to the raw sign rate shows how much of the path is signing.

Status lists (software keys, one database): ``reserve+bind`` of indices with 16 concurrent
callers (two short transactions each, as issuance does), ``revoke`` (one transaction with its
audit leaf), and publishing a 131,072-entry 2-bit list with 1% revoked (query, encode, sign).

The headline figures come last, one per line, as ``name: value unit (target ...)``.

    .venv/bin/python bench/keys.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from pavilion.config.settings import Settings, load_settings
from pavilion.connect.client import ProviderClient, RetryPolicy
from pavilion.credentials.status.models import StatusListEntry
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig
from pavilion.dpagent.records import RecordIndex
from pavilion.keystore.base import AuditedSigner
from pavilion.observability.logging import configure_logging
from pavilion.providers.schemas import ProviderIn
from pavilion.runtime import Runtime, build_runtime
from pavilion.store.migrate import app_role_for, upgrade
from pavilion.synth.roster import (
    DEFAULT_REFERENCE_DATE,
    ROSTER_RECORD_SCHEMA,
    generate_roster,
    pick_examples,
)
from pavilion.verification.schemas import VerificationRequest
from pavilion.workflows.verify import run_verification

MODULE: Final = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
AGENT_KEY: Final = "bench-agent-key-" + "k" * 16
MESSAGE: Final = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImJlbmNoIn0." + b"x" * 300
SIGN_CALLERS: Final = 64
SIGN_PAIRS: Final = 3
ISSUE_CALLERS: Final = 16
STATUS_CALLERS: Final = 16
AUDITED_TARGET: Final = 0.9
ISSUE_TARGET: Final = 100.0
ALLOCATE_TARGET: Final = 200.0
REVOKE_TARGET: Final = 100.0
PUBLISH_TARGET_MS: Final = 500.0


def make_token(directory: Path) -> dict[str, Any]:
    """A fresh SoftHSM2 token; the settings overrides that select it (PIN in a file)."""
    tokendir = directory / "tokens"
    tokendir.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "pavilion-bench-keys"),
            *("--so-pin", pin + "so", "--pin", pin),
        ],
        check=True,
        capture_output=True,
    )
    pin_file = directory / "pin"
    pin_file.write_text(pin, encoding="utf-8")
    pin_file.chmod(0o600)
    return {
        "keystore_backend": "pkcs11",
        "hsm_module": MODULE,
        "hsm_token_label": "pavilion-bench-keys",
        "hsm_pin_file": pin_file,
    }


def settings_for(directory: Path, database_url: str, migration_url: str, **extra: Any) -> Settings:
    directory.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, Any] = {"data_dir": directory, **extra}
    if database_url:
        overrides |= {"database_url": database_url, "database_migration_url": migration_url}
    settings = load_settings(None, **overrides)
    upgrade(
        settings.database_migration_url,
        app_role_for(settings.database_url, settings.database_migration_url),
    )
    return settings


async def rate(callers: int, seconds: float, work: Callable[[], Awaitable[object]]) -> float:
    """Completed calls per second with ``callers`` coroutines calling back to back."""
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await work()
            done += 1

    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - start)


@dataclass
class Backend:
    """One keystore backend with its own database, tenant and DP, ready to issue."""

    name: str
    rt: Runtime
    tenant_id: str
    request: VerificationRequest
    best: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)


async def open_backend(name: str, settings: Settings) -> Backend:
    roster = generate_roster(200, seed=11, reference_date=DEFAULT_REFERENCE_DATE)
    agent = create_agent_app(
        AgentConfig(api_key=SecretStr(AGENT_KEY)),
        RecordIndex(roster, as_of=datetime(2026, 1, 1, tzinfo=UTC)),
    )
    client = ProviderClient(
        timeout_seconds=10,
        connect_timeout_seconds=5,
        retry=RetryPolicy(1, 0.001),
        transport=httpx.ASGITransport(app=agent),
    )
    rt = build_runtime(settings, provider_client=client)
    await rt.tenancy.ensure_platform_tenant()
    tenant = await rt.tenancy.create_tenant(f"bench-{uuid.uuid4().hex[:8]}")
    provider = await rt.providers.register(
        tenant.id,
        ProviderIn.model_validate(
            {
                "name": "Bench University",
                "claim_types": ["student_status"],
                "endpoints": [
                    {"region": "eu-west", "jurisdiction": "EU", "url": "http://agent.test"}
                ],
                "auth": {"type": "api_key", "api_key": AGENT_KEY},
                "record_schema": ROSTER_RECORD_SCHEMA,
            }
        ),
    )
    student = pick_examples(roster).current
    request = VerificationRequest.model_validate(
        {
            "provider_id": provider.id,
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": student.student_id}, "residency": "EU"},
            "purpose": "benchmark",
        }
    )
    backend = Backend(name, rt, tenant.id, request)
    await issue(backend)  # warm up: the open status list, caches, pools
    return backend


async def issue(backend: Backend) -> None:
    result = await run_verification(backend.rt, backend.tenant_id, backend.request, None)
    assert result.body["credential"], result.body


async def measure_round(backend: Backend, seconds: float, number: int) -> dict[str, float]:
    rt = backend.rt
    audited = rt.keystore.signer("credential-signing")
    assert isinstance(audited, AuditedSigner)
    raw = audited.inner
    figures: dict[str, float] = {}
    # Short raw/audited pairs, alternating which goes first, so that neither always gets the
    # quieter half: the paired ratios' median is what the headline reports.
    order = [("raw", raw), ("audited", audited)]
    for pair in range(SIGN_PAIRS):
        for name, signer in order if (number + pair) % 2 else order[::-1]:
            value = await rate(SIGN_CALLERS, seconds / 2, lambda s=signer: s.sign(MESSAGE))  # type: ignore[misc]
            figures[name] = max(figures.get(name, 0.0), value)
            backend.ratios.setdefault(f"pair_{name}", []).append(value)
    figures["issue"] = await rate(ISSUE_CALLERS, seconds * 2, lambda: issue(backend))
    # Baseline in the same run: the same workflow without a status-list entry.
    # The journal binds the entry in the verification's own commit (``binding``, a guarded
    # change), so the baseline hands every issuance one placeholder entry and a change that
    # leaves it reserved: no index is taken and no binding can conflict.
    real_reserve, real_binding = rt.status_lists.reserve, rt.status_lists.binding
    placeholder = await real_reserve(backend.tenant_id)

    async def no_reservation(*_args: object) -> Any:
        return placeholder

    def no_binding(tenant_id: str, reservation: Any, credential_id: str) -> Any:
        change = real_binding(tenant_id, reservation, credential_id)
        return replace(change, values={"state": "reserved"})

    rt.status_lists.reserve = no_reservation  # type: ignore[method-assign]
    rt.status_lists.binding = no_binding  # type: ignore[method-assign]
    try:
        figures["issue_no_status"] = await rate(ISSUE_CALLERS, seconds * 2, lambda: issue(backend))
    finally:
        rt.status_lists.reserve = real_reserve  # type: ignore[method-assign]
        rt.status_lists.binding = real_binding  # type: ignore[method-assign]
    await rt.keys.flush_usage()
    return figures


async def backend_rounds(
    configured: list[tuple[str, Settings]], rounds: int, seconds: float
) -> list[Backend]:
    """Measure the backends round by round, interleaved, keeping each figure's best window."""
    backends = [await open_backend(name, settings) for name, settings in configured]
    try:
        for number in range(1, rounds + 1):
            for backend in backends:
                figures = await measure_round(backend, seconds, number)
                for key, value in figures.items():
                    backend.best[key] = max(backend.best.get(key, 0.0), value)
                # Ratios are paired within a round (same load), then the median is taken.
                backend.ratios.setdefault("status", []).append(
                    figures["issue"] / figures["issue_no_status"]
                )
                print(
                    f"  round {number} {backend.name}: raw {figures['raw']:,.0f} signs/s, "
                    f"audited {figures['audited']:,.0f}, issue {figures['issue']:,.0f}/s, "
                    f"issue without status {figures['issue_no_status']:,.0f}/s",
                    flush=True,
                )
        return backends
    finally:
        for backend in backends:
            await backend.rt.aclose()


async def status_figures(settings: Settings, seconds: float) -> dict[str, float]:
    rt = build_runtime(settings)
    try:
        tenant = (await rt.tenancy.create_tenant(f"bench-status-{uuid.uuid4().hex[:8]}")).id
        service = StatusListService(
            rt.db,
            rt.keystore,
            rt.audit,
            StatusListConfig(base_url=settings.public_url, issuer=settings.issuer_id),
            writer=rt.journal.sqlite_writer,  # as the runtime builds it (one writer thread)
        )
        issued: list[str] = []

        async def allocate() -> None:
            reservation = await service.reserve(tenant)
            credential_id = str(uuid.uuid4())
            async with rt.db.transaction(tenant) as session:
                await service.bind(session, tenant, reservation, credential_id)
            issued.append(credential_id)

        await allocate()
        allocations = await rate(STATUS_CALLERS, seconds, allocate)
        pending = iter(list(issued))

        # One caller revokes what was allocated, for the window or until none is left (a
        # revocation may be faster than an allocation).
        revoked, started = 0, time.perf_counter()
        for credential_id in pending:
            await service.change_status(tenant, credential_id, "revoke", actor="bench")
            revoked += 1
            if time.perf_counter() - started >= seconds:
                break
        revocations = revoked / (time.perf_counter() - started)
        # Publishing: a full-size list with about 1% revoked (enough revocations first).
        group = (await service.reserve(tenant)).group_id
        target = 1311
        async with rt.db.transaction(tenant, readonly=True) as session:
            done = (
                await session.execute(
                    select(func.count())
                    .select_from(StatusListEntry)
                    .where(StatusListEntry.group_id == group, StatusListEntry.state == "revoked")
                )
            ).scalar_one()
        for credential_id in list(pending)[: max(0, target - done)]:
            await service.change_status(tenant, credential_id, "revoke", actor="bench")
        started = time.perf_counter()
        await service.publish("token", group)
        publish_ms = (time.perf_counter() - started) * 1000
        return {
            "allocate": allocations,
            "revoke": revocations,
            "revoked": revoked,
            "publish_ms": publish_ms,
        }
    finally:
        await rt.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (well under a minute)")
    parser.add_argument("--database-url", default="", help="PostgreSQL as the app role")
    parser.add_argument("--database-migration-url", default="", help="PostgreSQL as the owner")
    args = parser.parse_args(argv)
    rounds, seconds = (3, 0.5) if args.quick else (6, 2.0)
    configure_logging("WARNING")
    have_hsm = os.path.isfile(MODULE) and shutil.which("softhsm2-util") is not None
    database = "PostgreSQL" if args.database_url else "SQLite"
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pavilion-keys-bench-") as scratch:
        root = Path(scratch)
        backends: list[tuple[str, dict[str, Any]]] = [("software", {})]
        if have_hsm:
            backends.append(("pkcs11", make_token(root / "hsm")))
        else:
            print(f"pkcs11: skipped, SoftHSM2 not installed ({MODULE}): apt-get install softhsm2")
        configured = [
            (
                name,
                settings_for(root / name, args.database_url, args.database_migration_url, **extra),
            )
            for name, extra in backends
        ]
        print(f"{rounds} interleaved rounds, {seconds:g} s windows, {database}", flush=True)
        for backend in asyncio.run(backend_rounds(configured, rounds, seconds)):
            pairs = zip(
                backend.ratios.pop("pair_audited"), backend.ratios.pop("pair_raw"), strict=True
            )
            backend.ratios["audited"] = [audited / raw for audited, raw in pairs]
            results[backend.name] = backend.best | {
                f"{key}_ratio": statistics.median(values) for key, values in backend.ratios.items()
            }
        status_settings = settings_for(
            root / "status", args.database_url, args.database_migration_url
        )
        status = asyncio.run(status_figures(status_settings, seconds * 2))
    print(
        f"status lists: reserve+bind {status['allocate']:,.0f}/s, "
        f"revoke {status['revoke']:,.0f}/s ({status['revoked']:.0f} revoked), "
        "publish 131,072 x 2-bit with 1% revoked "
        f"{status['publish_ms']:.0f} ms ({database})"
    )
    print()
    ok = True
    for name, figures in results.items():
        audited_ratio = figures["audited_ratio"]
        issue_ratio = figures["issue"] / figures["raw"]
        ok &= audited_ratio >= AUDITED_TARGET
        print(f"keys_{name}_raw_sign: {figures['raw']:.0f} signs/s (target reference: raw key)")
        print(
            f"keys_{name}_audited_sign: {figures['audited']:.0f} signs/s "
            f"(target >= {AUDITED_TARGET:.0%} of raw; median paired ratio {audited_ratio:.2f})"
        )
        print(
            f"keys_{name}_workflow_issue: {figures['issue']:.0f} credentials/s "
            f"(target >= {ISSUE_TARGET:.0f} on {database}; {issue_ratio:.3f} of the raw sign rate, "
            f"median {figures['status_ratio']:.2f} of the same workflow without a status entry)"
        )
    if "pkcs11" in results:
        ratio = results["pkcs11"]["issue"] / results["software"]["issue"]
        print(
            f"keys_pkcs11_vs_software_issue: {ratio:.2f} ratio "
            "(target informational: HSM issuance over software issuance, same run)"
        )
    print(
        f"status_reserve_bind: {status['allocate']:.0f} indices/s "
        f"(target >= {ALLOCATE_TARGET:.0f}, {STATUS_CALLERS} callers, {database})"
    )
    print(f"status_revoke: {status['revoke']:.0f} revocations/s (target >= {REVOKE_TARGET:.0f})")
    print(
        f"status_publish_131072: {status['publish_ms']:.0f} ms "
        f"(target < {PUBLISH_TARGET_MS:.0f}, 2-bit list, 1% revoked, signed)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
