"""The ``pavilion`` commands an operator runs, end to end on SQLite."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from connector_support import provider_body
from pavilion.cli.main import app, main

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAVILION_DATABASE_URL", raising=False)
    return tmp_path


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_operator_journey(env: Path) -> None:
    assert "up to date" in _ok("db", "upgrade")
    assert "up to date" in _ok("db", "upgrade")  # idempotent
    created = _ok("tenants", "create", "acme-university")
    tenant_id = re.search(r"id ([0-9a-f-]{36})", created)
    assert tenant_id is not None
    assert "acme-university" in _ok("tenants", "list")

    token_out = _ok("tokens", "create", "--tenant", "acme-university", "--role", "broker")
    secret = token_out.strip().splitlines()[-1]
    assert secret.startswith("pav_" + tenant_id.group(1).replace("-", ""))
    platform = _ok("tokens", "create", "--tenant", "platform", "--role", "platform-admin")
    assert platform.strip().splitlines()[-1].startswith("pav_" + "0" * 32)

    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body()))
    assert "registered" in _ok("providers", "register", "--tenant", tenant_id.group(1), str(spec))
    listing = _ok("providers", "list", "--tenant", "acme-university")
    assert "Test University" in listing
    assert "eu-west (EU)" in listing

    note = _ok("audit", "checkpoint", "--tenant", "acme-university")
    # One leaf: the provider's registration (configuration changes are audited).
    assert f"pavilion.local/audit/{tenant_id.group(1)}\n1\n" in note
    verified = _ok("audit", "verify")
    assert "ok" in verified


def test_bad_provider_files_say_what_is_wrong(env: Path) -> None:
    _ok("db", "upgrade")
    _ok("tenants", "create", "t1")
    broken = env / "broken.yaml"
    broken.write_text(json.dumps(provider_body() | {"claim_types": ["x"]}))
    result = runner.invoke(app, ["providers", "register", "--tenant", "t1", str(broken)])
    assert result.exit_code != 0
    assert "claim_types.0" in str(result.exception)
    missing = runner.invoke(app, ["providers", "register", "--tenant", "t1", str(env / "no.yaml")])
    assert "cannot read provider definition" in str(missing.exception)


def test_main_prints_errors_without_a_traceback(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _ok("db", "upgrade")
    monkeypatch.setattr("sys.argv", ["pavilion", "tenants", "create", "dup"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    with pytest.raises(SystemExit) as again:
        main()
    assert again.value.code == 1  # refused: 1; 2 is for usage errors
    assert "already exists" in capsys.readouterr().err


def test_bad_settings_stop_with_a_message(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVILION_PORT", "-1")
    result = runner.invoke(app, ["db", "upgrade"])
    assert "PAVILION_PORT" in str(result.exception)


def test_audit_verify_detects_tampering(env: Path) -> None:
    import asyncio

    from sqlalchemy import update

    from pavilion.audit.models import AuditLeaf
    from pavilion.config.settings import load_settings
    from pavilion.runtime import build_runtime

    _ok("db", "upgrade")
    _ok("tenants", "create", "t1")

    async def tamper() -> None:
        rt = build_runtime(load_settings())
        try:
            tenant = await rt.tenancy.find_tenant_by_name("t1")
            async with rt.db.transaction(tenant.id) as session:
                for n in range(3):
                    await rt.audit.append(session, tenant.id, {"kind": "test", "n": n})
            await rt.audit.checkpoint(tenant.id)
            async with rt.db.transaction(tenant.id) as session:
                await session.execute(
                    update(AuditLeaf).where(AuditLeaf.idx == 1).values(event='{"kind":"forged"}')
                )
        finally:
            await rt.aclose()

    asyncio.run(tamper())
    result = runner.invoke(app, ["audit", "verify", "--tenant", "t1"])
    assert result.exit_code == 1
    assert "leaf 1: stored hash does not match its event" in result.output.replace("\n", " ")


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--data-dir", str(tmp_path), "--roster-size", "200"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = result.output
    for expected in (
        "current student",
        "former student",
        "unknown person",
        "age_over >= 18",
        "credentials verified against /.well-known/jwks.json",
        "signature and inclusion verified",
        "demo finished",
    ):
        assert expected in out


def test_committed_openapi_document_matches_the_code(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    _ok("openapi", "--out", str(out))
    committed = Path(__file__).parents[3] / "docs" / "openapi.json"
    assert json.loads(out.read_text()) == json.loads(committed.read_text()), (
        "docs/openapi.json is stale: run `pavilion openapi --out docs/openapi.json`"
    )
    assert '"/v1/verifications"' in _ok("openapi")


def test_serve_runs_the_api_with_the_settings(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: dict[str, object] = {}

    def fake_serve(server: Any, host: str, port: int, **options: object) -> None:
        started.update(options, host=host, port=port, access_log=server.config.access_log)
        started["app"] = server.config.app

    monkeypatch.setattr("pavilion.serving.serve_in_foreground", fake_serve)
    _ok("serve", "--host", "127.0.0.2", "--port", "9999")
    assert started["host"] == "127.0.0.2"
    assert started["port"] == 9999
    assert started["access_log"] is False
    assert type(started["app"]).__name__ == "FastAPI"
