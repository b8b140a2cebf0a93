"""What a new user hit in the first hour, each kept fixed by running the command as documented:
what ``db upgrade`` did, ``serve`` saying where it listens, ``audit verify`` naming the
changed leaf and the tenant, ids alone on stdout and ``--json`` for scripts, whole values when
piped, the demo refusing impossible sizes and removing its secrets on every exit, the keys
that sign, and the provider definition's errors and JSON Schema."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from connector_support import provider_body
from pavilion.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).parents[3]
CLI = [sys.executable, "-c", "from pavilion.cli.main import main; main()"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    return tmp_path


def ok(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_db_upgrade_says_what_it_created_then_that_nothing_was_left(env: Path) -> None:
    first = ok("db", "upgrade").output
    assert f"SQLite file {env.resolve()}/pavilion.db" in first
    applied = re.search(r"(\d+) migrations applied, (\d+) tables created", first)
    assert applied is not None
    assert int(applied.group(1)) >= 6
    assert int(applied.group(2)) >= 30
    assert "0001 initial schema" in first
    again = ok("db", "upgrade").output
    assert f"already up to date ({applied.group(2)} tables); nothing to do" in again


def test_ids_go_alone_to_stdout_and_listings_take_json(env: Path) -> None:
    ok("db", "upgrade")
    created = ok("tenants", "create", "acme-university")
    tenant_id = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", tenant_id)
    assert "tenant acme-university created" in created.stderr
    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body()))
    registered = ok("providers", "register", "--tenant", "acme-university", str(spec))
    provider_id = registered.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", provider_id)

    tenants = json.loads(ok("tenants", "list", "--json").stdout)
    assert {"id": tenant_id, "name": "acme-university"}.items() <= tenants[0].items()
    providers = json.loads(ok("providers", "list", "--tenant", tenant_id, "--json").stdout)
    assert providers[0]["id"] == provider_id
    assert providers[0]["endpoints"][0]["url"] == "http://agent.test"
    keys = json.loads(ok("keys", "list", "--json").stdout)
    assert {k["purpose"] for k in keys} >= {"credential-signing", "audit-signing"}
    audit = json.loads(ok("audit", "verify", "--json").stdout)
    assert {r["tenant"] for r in audit} >= {"acme-university"}
    note = json.loads(ok("audit", "checkpoint", "--tenant", "acme-university", "--json").stdout)
    assert note["note"].startswith("pavilion.local/audit/")
    assert note["verifier_key"]


def test_piped_tables_keep_whole_ids_and_urls(env: Path) -> None:
    # CliRunner's output is not a terminal, as with `| grep`: nothing may be cut or wrapped.
    ok("db", "upgrade")
    tenant_id = ok("tenants", "create", "a-tenant-with-a-rather-long-name-for-a-table").stdout
    long_url = "https://registry.a-university-with-a-long-name.example/pavilion/dp/lookup/v1"
    spec = env / "provider.yaml"
    body = provider_body()
    body["endpoints"][0]["url"] = long_url
    spec.write_text(yaml.safe_dump(body))
    ok("providers", "register", "--tenant", tenant_id.strip(), str(spec))
    tenants = runner.invoke(app, ["tenants", "list"], env={"COLUMNS": "80"}).stdout
    assert tenant_id.strip() in tenants
    assert "…" not in tenants
    keys = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "80"}).stdout
    assert "…" not in keys
    assert "credentials (the connector's own key)" in keys


def test_audit_verify_names_the_tenant_and_the_rewritten_leaf(env: Path) -> None:
    from sqlalchemy import update

    from pavilion.audit.merkle import leaf_hash
    from pavilion.audit.models import AuditLeaf
    from pavilion.config.settings import load_settings
    from pavilion.runtime import build_runtime

    ok("db", "upgrade")
    ok("tenants", "create", "acme-university")
    forged = '{"kind":"forged"}'

    async def tamper() -> None:
        rt = build_runtime(load_settings())
        try:
            tenant = await rt.tenancy.find_tenant_by_name("acme-university")
            async with rt.db.transaction(tenant.id) as session:
                for n in range(6):
                    await rt.audit.append(session, tenant.id, {"kind": "test", "n": n})
            # The event and its stored hash both rewritten: only the tree can tell.
            async with rt.db.transaction(tenant.id) as session:
                await session.execute(
                    update(AuditLeaf)
                    .where(AuditLeaf.tenant_id == tenant.id, AuditLeaf.idx == 4)
                    .values(event=forged, leaf_hash=leaf_hash(forged.encode()).hex())
                )
        finally:
            await rt.aclose()

    asyncio.run(tamper())
    result = runner.invoke(app, ["audit", "verify", "--tenant", "acme-university"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("TAMPERED")]
    # 6 leaves: subtrees over 0..3 and 4..5; leaf 4 lies in the second.
    assert lines == [
        "TAMPERED acme-university: one of leaves 4..5 was rewritten (its event and stored hash "
        "both changed): the leaves 4..5 no longer give the head's subtree root"
    ]
    assert "acme-university" in result.output.split("TAMPERED")[0]


def test_provider_definition_errors_name_the_path_once_and_the_schema_command(
    env: Path,
) -> None:
    ok("db", "upgrade")
    ok("tenants", "create", "t1")
    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body() | {"auth": {"type": "api_key", "api_key": "x"}}))
    result = runner.invoke(app, ["providers", "register", "--tenant", "t1", str(spec)])
    assert result.exit_code == 1
    detail = str(result.exception)
    assert "auth.api_key: String should have at least 16 characters" in detail
    assert "api_key.api_key" not in detail
    assert "pavilion providers schema" in detail


@pytest.mark.parametrize(
    ("command", "committed"),
    [
        (["providers", "schema"], "docs/schemas/provider.schema.json"),
        (["data", "mapping", "schema"], "docs/schemas/profile.schema.json"),
    ],
)
def test_the_committed_json_schemas_match_the_commands(command: list[str], committed: str) -> None:
    printed = json.loads(ok(*command).stdout)
    assert printed == json.loads((ROOT / committed).read_text()), (
        f"{committed} is stale: run `pavilion {' '.join(command)} > {committed}`"
    )
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_files_fit_their_schemas_and_each_other(tmp_path: Path) -> None:
    import jsonschema

    provider = yaml.safe_load((ROOT / "examples/provider.yaml").read_text())
    assert "api_key" not in provider["auth"]  # it comes from --api-key-env
    provider["auth"]["api_key"] = "k" * 48
    jsonschema.validate(
        provider, json.loads((ROOT / "docs/schemas/provider.schema.json").read_text())
    )
    profile = yaml.safe_load((ROOT / "examples/profile.yaml").read_text())
    jsonschema.validate(
        profile, json.loads((ROOT / "docs/schemas/profile.schema.json").read_text())
    )
    # The roster is what `pavilion synth` writes, and its records fit the provider's schema.
    synthesised = tmp_path / "roster.csv"
    ok("synth", "--count", "50", "--seed", "42", "--out", str(synthesised))
    assert synthesised.read_bytes() == (ROOT / "examples/roster.csv").read_bytes()
    from pavilion.synth.roster import DEFAULT_REFERENCE_DATE, generate_roster

    for record in generate_roster(50, seed=42, reference_date=DEFAULT_REFERENCE_DATE):
        jsonschema.validate(record.as_json(), provider["record_schema"])
    assert {f["name"] for f in profile["schema"]["fields"]} == set(
        synthesised.read_text().splitlines()[0].split(",")
    )


def test_an_active_eddsa_credential_key_says_it_signs_nothing(env: Path) -> None:
    ok("db", "upgrade")
    created = ok("keys", "rotate", "--purpose", "credential-signing", "--algorithm", "EdDSA")
    assert "PAVILION_KEY_USAGE_FLUSH_SECONDS" in created.output
    keys = json.loads(ok("keys", "list", "--json").stdout)
    active = {(k["algorithm"], k["purpose"]): k["signs"] for k in keys if k["state"] == "active"}
    assert active[("ES256", "credential-signing")] == "credentials (the connector's own key)"
    assert active[("EdDSA", "credential-signing")].startswith("nothing: the connector signs")
    assert "credentials certify --algorithm EdDSA" in active[("EdDSA", "credential-signing")]


def test_demo_refuses_a_roster_too_small_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "demo", "--roster-size", "10", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--roster-size" in done.stderr
    assert "--roster-size': Input should be greater than or equal to 50" in done.stderr


def _read_until(process: subprocess.Popen[str], pattern: str, deadline: float) -> re.Match[str]:
    """Lines of the process's output until one matches, within the deadline."""
    assert process.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matched {pattern!r}:\n{''.join(seen)}")


@pytest.mark.serial  # a whole demo in a subprocess: beside the parallel suite it starved
@pytest.mark.timeout(240)
def test_demo_keep_running_stopped_by_sigterm_removes_its_secrets(tmp_path: Path) -> None:
    environment = {**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "200"}
    process = subprocess.Popen(
        [*CLI, "demo", "--keep-running", "--roster-size", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 200
        workdir = Path(_read_until(process, r"data directory: (\S+)", deadline).group(1))
        assert workdir.is_dir()
        assert str(workdir).startswith(str(tmp_path))
        _read_until(process, r"press Ctrl-C to stop", deadline)
        assert (workdir / "pavilion.db").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not workdir.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(120)
def test_serve_says_where_it_listens(env: Path) -> None:
    ok("db", "upgrade")
    environment = {**os.environ, "PAVILION_DATA_DIR": str(env), "PAVILION_PORT": "0"}
    process = subprocess.Popen(
        [*CLI, "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 90
        line = ""
        while time.monotonic() < deadline and "listening on" not in line:
            line = process.stderr.readline()
            assert line or process.poll() is None, "serve exited"
        found = re.search(
            r"listening on (http://127\.0\.0\.1:\d+); API documentation at \1/docs", line
        )
        assert found is not None, line
        assert httpx.get(f"{found.group(1)}/healthz", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught (the conventional status)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("schema", ["provider", "profile"])
def test_the_reference_docs_describe_every_member_of_the_schemas(schema: str) -> None:
    document = json.loads((ROOT / f"docs/schemas/{schema}.schema.json").read_text())
    reference = (ROOT / "docs/PROVIDERS.md").read_text()
    members = set(document["properties"])
    for definition in document["$defs"].values():
        members |= set(definition.get("properties", {}))
        members |= {str(value) for value in definition.get("enum", [])}
    undocumented = sorted(m for m in members if f"`{m}`" not in reference and m != "type")
    assert undocumented == [], f"docs/PROVIDERS.md does not describe {undocumented}"
