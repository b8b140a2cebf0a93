"""``pavilion privacy ...`` end to end: a real connector and a real DP agent over loopback,
every protocol driven from the command line, receipts checked at the end (SQLite)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update
from typer.testing import CliRunner

from connector_support import provider_body
from pavilion.api.app import create_app
from pavilion.cli.main import app
from pavilion.config.settings import load_settings
from pavilion.privacy.models import PrivacyReceipt
from pavilion.runtime import build_runtime
from pavilion.serving import BackgroundServer
from pavilion.synth.roster import StudentRecord
from privacy_support import agent_app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path / "connector"))
    monkeypatch.delenv("PAVILION_DATABASE_URL", raising=False)
    return tmp_path


_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")


def ok(*args: str) -> str:
    """Standard output of a successful command, without the in-process agent's log lines."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return "".join(
        line for line in result.stdout.splitlines(keepends=True) if not _LOG_LINE.match(line)
    )


def test_every_protocol_from_the_command_line(
    env: Path, roster: list[StudentRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("db", "upgrade")
    tenant_id = re.fullmatch(r"([0-9a-f-]{36})", ok("tenants", "create", "club-a").strip())
    assert tenant_id is not None
    tenant = tenant_id.group(1)
    dp_token = ok("tokens", "create", "--tenant", tenant, "--role", "dp-admin").split()[-1]
    monkeypatch.setenv("PAVILION_CONNECTOR_TOKEN", dp_token)

    key_dir = env / "dp-keys"
    keys = json.loads(ok("privacy", "dp-keys", "init", "--dir", str(key_dir)))
    assert "d" not in keys["tag_set_signing_key"]
    jwk_file = env / "dp-public.json"
    jwk_file.write_text(ok("privacy", "dp-keys", "show", "--dir", str(key_dir)))
    roster_file = env / "roster.json"
    roster_file.write_text(json.dumps([r.as_json() for r in roster], default=str))

    settings = load_settings(None)
    with (
        BackgroundServer(agent_app(roster, key_dir)) as agent,
        BackgroundServer(create_app(build_runtime(settings))) as connector,
    ):
        spec = env / "provider.yaml"
        body = provider_body() | {
            "endpoints": [{"region": "eu-west", "jurisdiction": "EU", "url": agent.url}]
        }
        spec.write_text(yaml.safe_dump(body))
        registered = ok("providers", "register", "--tenant", tenant, str(spec))
        provider = re.fullmatch(r"([0-9a-f-]{36})", registered.strip())
        assert provider is not None
        provider_id = provider.group(1)
        ok(
            "privacy",
            "tag-set-key",
            "register",
            "--tenant",
            tenant,
            "--provider",
            provider_id,
            "--jwk-file",
            str(jwk_file),
        )
        pushed = json.loads(
            ok(
                "privacy",
                "tag-set",
                "push",
                "--records",
                str(roster_file),
                "--dir",
                str(key_dir),
                "--connector",
                connector.url,
                "--tenant-id",
                tenant,
                "--provider-id",
                provider_id,
                "--workers",
                "1",
            )
        )
        assert {p["set"] for p in pushed} >= {"roster", "student_status"}

        items = env / "customers.txt"
        enrolled = [r.email for r in roster if r.enrolment_status == "enrolled"]
        items.write_text("\n".join([*enrolled[:7], "stranger@example.org"]))
        counted = json.loads(
            ok(
                "privacy",
                "psi",
                "batch",
                "--tenant",
                tenant,
                "--provider",
                provider_id,
                "--set",
                "student_status",
                "--kind",
                "email",
                "--items-file",
                str(items),
                "--residency",
                "EU",
                "--purpose",
                "loyalty offer",
            )
        )
        assert counted["cardinality"] == 7
        assert "intersection" not in counted

        adult = next(r for r in roster if r.birth_date.year < 2000)
        presented = json.loads(
            ok(
                "privacy",
                "zk",
                "present",
                "--tenant",
                tenant,
                "--provider",
                provider_id,
                "--claim",
                "age_over",
                "--threshold",
                "18",
                "--identifier",
                f"student_id={adult.student_id}",
                "--residency",
                "EU",
                "--purpose",
                "age check",
            )
        )
        assert presented["decision"] is True
        assert adult.birth_date.isoformat() not in json.dumps(presented["presentation"])
        revoked = json.loads(
            ok(
                "privacy",
                "anoncreds",
                "revoke",
                "--tenant",
                tenant,
                presented["verify_with"]["credential_id"],
            )
        )
        assert revoked["deltas"][0]["revoked_indices"] == [1]

    ok("privacy", "budget", "set", "--tenant", tenant, "--epsilon", "1", "--period", "month")
    released = json.loads(
        ok(
            "privacy",
            "release",
            "--tenant",
            tenant,
            "--statistic",
            "count",
            "--epsilon",
            "0.5",
            "--group-by",
            "claim_type,outcome",
        )
    )
    assert released["privacy_loss"]["epsilon"] == 0.5
    shown = json.loads(ok("privacy", "budget", "show", "--tenant", tenant))
    assert shown["epsilon"]["remaining"] == 0.5
    overspend = runner.invoke(
        app,
        [
            "privacy",
            "release",
            "--tenant",
            tenant,
            "--statistic",
            "count",
            "--epsilon",
            "0.6",
        ],
    )
    assert overspend.exit_code != 0

    verified = runner.invoke(app, ["privacy", "receipts", "verify", "--tenant", tenant])
    assert verified.exit_code == 0, verified.output
    assert "INVALID" not in verified.stdout

    # Offline: a bundle checked against trusted keys; then a tampered one.
    async def fetch() -> tuple[dict[str, Any], dict[str, Any], str]:
        rt = build_runtime(load_settings(None))
        try:
            listing = await rt.privacy.receipts.list(
                rt.db, tenant, kind="differential.release", limit=1, after=None
            )
            bundle = await rt.privacy.receipts.bundle(rt.db, tenant, listing[0]["id"])
            return bundle, rt.privacy.receipts.jwks(), rt.audit.verifier_key_for(tenant)
        finally:
            await rt.aclose()

    bundle, jwks, verifier = asyncio.run(fetch())
    bundle_file, jwks_file = env / "bundle.json", env / "jwks.json"
    bundle_file.write_text(json.dumps(bundle))
    jwks_file.write_text(json.dumps(jwks))
    offline = ok(
        "privacy",
        "receipts",
        "verify",
        "--bundle",
        str(bundle_file),
        "--jwks",
        str(jwks_file),
        "--verifier-key",
        verifier,
    )
    assert offline.startswith("ok receipt")
    bundle["audit"]["index"] += 1
    bundle_file.write_text(json.dumps(bundle))
    tampered = runner.invoke(
        app,
        [
            "privacy",
            "receipts",
            "verify",
            "--bundle",
            str(bundle_file),
            "--jwks",
            str(jwks_file),
            "--verifier-key",
            verifier,
        ],
    )
    assert tampered.exit_code == 1
    assert tampered.stdout.startswith("INVALID")

    # A receipt altered in the database no longer verifies.
    async def tamper() -> None:
        rt = build_runtime(load_settings(None))
        try:
            async with rt.db.transaction(tenant) as session:
                await session.execute(
                    update(PrivacyReceipt)
                    .where(PrivacyReceipt.kind == "psi.batch")
                    .values(jws=PrivacyReceipt.jws + "x")
                )
        finally:
            await rt.aclose()

    asyncio.run(tamper())
    broken = runner.invoke(app, ["privacy", "receipts", "verify", "--tenant", tenant])
    assert broken.exit_code == 1
    assert "INVALID" in broken.stdout
