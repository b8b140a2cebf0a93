"""``pavilion keys`` and ``pavilion credentials revoke|suspend|reinstate|status`` end to end."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pavilion.cli.main import app
from pavilion.config.settings import load_settings
from pavilion.credentials.status.service import StatusReservation
from pavilion.errors import PavilionError
from pavilion.keystore.software import SoftwareKeystore
from pavilion.runtime import build_runtime
from pavilion.tenancy.models import PLATFORM_TENANT_ID

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAVILION_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    assert isinstance(result.exception, PavilionError)
    return result.exception.detail


def kids(env: Path) -> dict[str, str]:
    keystore = SoftwareKeystore.open(env / "keystore")
    return {m.key_id: m.state for m in keystore.list_keys() if m.purpose == "credential-signing"}


def test_key_lifecycle_from_the_command_line(env: Path) -> None:
    ok("db", "upgrade")
    listing = ok("keys", "list")
    for purpose in ("credential-signing", "audit-signing", "key-encryption"):
        assert purpose in listing
    (first,) = kids(env)

    created = ok("keys", "create", "--purpose", "credential-signing", "--algorithm", "ES256")
    pending = re.search(r"key (\S+) \(credential-signing ES256\) created: now pending", created)
    assert pending is not None
    # A kid is base64url and may start with "-": "--" ends the options, as usual.
    activated = ok("keys", "activate", "--", pending.group(1))
    assert "now active" in activated
    assert kids(env) == {first: "inactive", pending.group(1): "active"}

    rotated = ok("keys", "rotate", "--purpose", "credential-signing")
    assert "stays in the JWKS until retired" in rotated
    assert "active" in ok("keys", "list", "--purpose", "credential-signing")
    assert "now retired" in ok("keys", "retire", "--", first)
    assert kids(env)[first] == "retired"

    active = next(k for k, state in kids(env).items() if state == "active")
    assert "rotate to a new key first" in refused("keys", "retire", "--", active)
    assert "audit key history" in refused("keys", "rotate", "--purpose", "audit-signing")

    # Every step is a leaf of the platform log, with the CLI as the actor.
    async def lifecycle_events() -> list[dict[str, str]]:
        rt = build_runtime(load_settings(None, data_dir=env))
        try:
            leaves = await rt.audit.leaves(PLATFORM_TENANT_ID, start=0, limit=100)
        finally:
            await rt.aclose()
        return [leaf["event"] for leaf in leaves if leaf["event"]["actor"] == "cli"]

    actions = [e["action"] for e in asyncio.run(lifecycle_events())]
    assert actions == ["create", "activate", "rotate", "retire"]


def test_credential_status_from_the_command_line(env: Path) -> None:
    ok("db", "upgrade")
    created = ok("tenants", "create", "acme")
    tenant_id = re.search(r"id ([0-9a-f-]{36})", created)
    assert tenant_id is not None
    credential_id = str(uuid.uuid4())

    async def issue() -> StatusReservation:
        rt = build_runtime(load_settings(None, data_dir=env))
        try:
            reservation = await rt.status_lists.reserve(tenant_id.group(1))
            async with rt.db.transaction(tenant_id.group(1)) as session:
                await rt.status_lists.bind(session, tenant_id.group(1), reservation, credential_id)
        finally:
            await rt.aclose()
        return reservation

    reservation = asyncio.run(issue())
    assert "valid" in ok("credentials", "status", "--tenant", "acme", credential_id)
    assert "valid -> suspended" in ok("credentials", "suspend", "--tenant", "acme", credential_id)
    shown = ok("credentials", "status", "--tenant", "acme", credential_id)
    assert "suspended" in shown
    assert f"idx {reservation.idx}" in shown
    assert "suspended -> valid" in ok("credentials", "reinstate", "--tenant", "acme", credential_id)
    revoked = ok("credentials", "revoke", "--tenant", "acme", "--reason", "fraud", credential_id)
    assert "valid -> revoked" in revoked
    assert "nothing to do" in ok("credentials", "revoke", "--tenant", "acme", credential_id)
    assert "stays revoked" in refused("credentials", "reinstate", "--tenant", "acme", credential_id)
    assert "no status list entry" in refused(
        "credentials", "revoke", "--tenant", "acme", str(uuid.uuid4())
    )


def test_the_credentials_group_is_shared_by_every_module_that_adds_to_it() -> None:
    import typer

    from pavilion.cli.revocation import credentials_group

    assert credentials_group(app) is credentials_group(app)
    fresh = typer.Typer()
    group = credentials_group(fresh)
    assert credentials_group(fresh) is group
