"""The CLI's smaller rules, each from the command line or its pure helper: where a database is,
what each key signs, a provider file's key from the environment, a rewritten audit log told
apart from a shortened one, PNG on standard output, JSON of the templates, and a terminal's
own width."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from connector_support import provider_body
from pavilion.audit.log import _head_mismatch
from pavilion.audit.merkle import CompactRange, leaf_hash
from pavilion.cli.keys import signs
from pavilion.cli.main import app
from pavilion.cli.output import PIPED_WIDTH, Printer
from pavilion.cli.registry import _path_in
from pavilion.keystore.base import KeyMeta
from pavilion.store.migrate import describe_database

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("sqlite+aiosqlite:////srv/pavilion/pavilion.db", "SQLite file /srv/pavilion/pavilion.db"),
        (
            "postgresql+asyncpg://pavilion_app:secret@db:5433/pavilion",
            "postgresql database pavilion on db:5433 as pavilion_app",
        ),
        ("postgresql://db/pavilion", "postgresql database pavilion on db"),
    ],
)
def test_a_database_is_described_without_its_password(url: str, described: str) -> None:
    assert describe_database(url) == described
    assert "secret" not in describe_database(url)


def _key(purpose: str, algorithm: str, state: str) -> KeyMeta:
    return KeyMeta("kid", "name", purpose, algorithm, state, "2026-01-01T00:00:00", "software")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("purpose", "algorithm", "state", "says"),
    [
        ("credential-signing", "ES256", "active", "credentials (the connector's own key)"),
        ("credential-signing", "EdDSA", "active", "nothing: the connector signs credentials"),
        ("credential-signing", "ES256", "pending", "nothing (published in the JWKS"),
        ("credential-signing", "ES256", "inactive", "nothing (published in the JWKS"),
        ("credential-signing", "ES256", "retired", "nothing (retired, out of the JWKS)"),
        ("audit-signing", "EdDSA", "active", "audit checkpoints"),
        ("key-encryption", "A256GCM", "active", "wraps tenant data keys"),
        ("key-encryption", "A256GCM", "inactive", "unwraps the data keys it wrapped"),
        ("key-encryption", "A256GCM", "pending", "nothing yet"),
    ],
)
def test_each_key_says_what_it_signs(purpose: str, algorithm: str, state: str, says: str) -> None:
    assert signs(_key(purpose, algorithm, state)).startswith(says)


def test_an_error_path_leaves_out_the_union_tag_once_and_walks_lists() -> None:
    document = {"auth": {"type": "api_key", "api_key": "x"}, "endpoints": [{"url": "u"}]}
    assert _path_in(document, ("auth", "api_key", "api_key")) == "auth.api_key"
    assert _path_in(document, ("auth", "api_key")) == "auth.api_key"  # an error at the tag
    assert _path_in(document, ("endpoints", 0, "url")) == "endpoints.0.url"
    assert _path_in(document, ("endpoints", 5, "url")) == "endpoints.5.url"
    assert _path_in(document, ()) == ""


def test_the_api_key_comes_from_the_environment_or_the_command_says_why_not(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["tenants", "create", "t1"]).exit_code == 0
    spec = env / "provider.yaml"
    body = provider_body()
    body["auth"] = {"type": "api_key"}
    spec.write_text(yaml.safe_dump(body))
    register = ["providers", "register", "--tenant", "t1", "--api-key-env", "DP_KEY", str(spec)]
    unset = runner.invoke(app, register)
    assert unset.exit_code == 1
    assert "--api-key-env names an empty or unset variable" in str(unset.exception)
    monkeypatch.setenv("DP_KEY", "k" * 32)
    assert runner.invoke(app, register).exit_code == 0
    body["auth"] = {"type": "mtls"}
    spec.write_text(yaml.safe_dump(body))
    other = runner.invoke(app, register)
    assert "--api-key-env needs auth: {type: api_key}" in str(other.exception)


def test_a_head_mismatch_names_missing_leaves_and_an_unreadable_head() -> None:
    hashes = [leaf_hash(bytes([n])) for n in range(6)]
    recomputed = CompactRange.from_leaf_hashes(hashes[:4])
    head = CompactRange.from_leaf_hashes(hashes)
    assert _head_mismatch(6, head.to_json(), recomputed) == (
        "head says size 6, but the leaves give size 4: leaves 4..5 are missing or extra"
    )
    assert "is unreadable" in _head_mismatch(6, "not json", recomputed)
    rewritten = list(hashes)
    rewritten[5] = leaf_hash(b"forged")
    assert _head_mismatch(6, head.to_json(), CompactRange.from_leaf_hashes(rewritten)).startswith(
        "one of leaves 4..5 was rewritten"
    )
    odd = [leaf_hash(bytes([n])) for n in range(5)]
    forged = [*odd[:4], leaf_hash(b"forged")]
    assert _head_mismatch(
        5, CompactRange.from_leaf_hashes(odd).to_json(), CompactRange.from_leaf_hashes(forged)
    ).startswith("leaf 4 was rewritten")


def test_png_needs_a_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pavilion.ingest.lineage.graph.graphviz_available", lambda: True)
    result = runner.invoke(
        app, ["lineage", "show", "pavilion.rosters.x", "--tenant", "t", "--format", "png"]
    )
    assert result.exit_code == 2
    assert "PNG is binary: give --out FILE" in result.output


def test_the_templates_list_as_json() -> None:
    result = runner.invoke(app, ["credentials", "templates", "--json"])
    assert result.exit_code == 0
    templates = {t["template"]: t for t in json.loads(result.stdout)}
    assert templates["student_status@1"]["max_age_days"] == 30


def test_a_printer_follows_a_terminal_and_goes_wide_when_piped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    monkeypatch.setenv("COLUMNS", "72")
    assert Printer().console().width == 72
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert Printer().console().width == PIPED_WIDTH
