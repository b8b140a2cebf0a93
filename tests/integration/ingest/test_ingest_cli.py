"""``pavilion data ...`` and ``pavilion lineage show`` end to end on SQLite."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from connector_support import provider_body
from ingest_support import csv_bytes, detached_jws, ec_key, profile, public_jwk, roster
from pavilion.cli.data import sparkline
from pavilion.cli.main import app

runner = CliRunner()
RECORDS = roster(30)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAVILION_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output + repr(result.exception)
    return result.output


def _provider(env: Path) -> str:
    _ok("db", "upgrade")
    _ok("tenants", "create", "uni")
    spec = env / "provider.yaml"
    spec.write_text(yaml.safe_dump(provider_body()))
    out = _ok("providers", "register", "--tenant", "uni", str(spec))
    found = re.search(r"id ([0-9a-f-]{36})", out)
    assert found is not None
    return found.group(1)


def test_the_data_engineer_journey(env: Path) -> None:
    provider_id = _provider(env)
    spec = env / "profile.yaml"
    spec.write_text(yaml.safe_dump(profile(), allow_unicode=True))
    assert "mapping version 1 stored" in _ok(
        "data", "mapping", "add", "--tenant", "uni", "--provider", provider_id, str(spec)
    )
    shown = json.loads(_ok("data", "mapping", "show", "--tenant", "uni", "--provider", provider_id))
    assert shown["version"] == 1
    assert shown["profile"]["schema"]["key"] == ["student_id"]

    sample = env / "sample.csv"
    sample.write_bytes(csv_bytes(RECORDS[:4]))
    preview = _ok(
        "data", "dry-run", "--tenant", "uni", "--provider", provider_id, str(sample),
        "--format", "csv",
    )  # fmt: skip
    assert "applied" in preview
    assert "canonical preview" in preview
    assert RECORDS[0].student_id in preview
    bad_sample = env / "bad.csv"
    bad_sample.write_bytes(csv_bytes(RECORDS[:2]).replace(RECORDS[1].email.encode(), b"x"))
    other = env / "other.yaml"
    other.write_text(yaml.safe_dump(profile(quality={"min_score": 10})))
    rejected = _fails(
        "data", "dry-run", "--tenant", "uni", "--provider", provider_id, str(bad_sample),
        "--profile", str(other),
    )  # fmt: skip
    assert "rejected" in rejected
    assert "row 2 field email" in rejected

    roster_file = env / "roster.csv"
    roster_file.write_bytes(csv_bytes(RECORDS))
    pushed = _ok("data", "upload", str(roster_file), "--tenant", "uni", "--provider", provider_id)
    found = re.search(r"batch ([0-9a-f-]{36}) applied: 30 of 30 rows", pushed)
    assert found is not None
    batch_id = found.group(1)
    refused = _fails(
        "data", "upload", str(bad_sample), "--tenant", "uni", "--provider", provider_id
    )
    assert "refused" in refused
    assert "recorded" in refused
    assert "field email" in refused

    quality = _ok("data", "quality", "--tenant", "uni", "--provider", provider_id)
    assert "applied" in quality
    assert "rejected" in quality
    assert "threshold 80.0" in quality
    assert "verified (manifest and stored records)" in _ok(
        "data", "verify", "--tenant", "uni", batch_id
    )
    assert "TAMPERED" in _fails("data", "verify", "--tenant", "uni", "nope")

    dataset = f"pavilion.rosters.{provider_id}"
    dot = _ok("lineage", "show", dataset, "--tenant", "uni", "--format", "dot", "--events")
    assert dot.startswith("digraph lineage {")
    assert f'"dataset dp.{provider_id}.roster" -> "job ingest.roster_upload.{provider_id}"' in dot
    assert '"eventType": "FAIL"' in dot
    out = env / "graph.svg"
    if shutil.which("dot"):
        _ok("lineage", "show", dataset, "--tenant", "uni", "--out", str(out))
        assert out.read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    dot_file = env / "graph.dot"
    _ok("lineage", "show", dataset, "--tenant", "uni", "--out", str(dot_file))
    assert dot_file.read_text().startswith("digraph")


def test_lineage_without_graphviz_refuses_svg_and_png_with_the_install_hint(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider_id = _provider(env)
    spec = env / "profile.json"
    spec.write_text(json.dumps(profile()))
    _ok("data", "mapping", "add", "--tenant", "uni", "--provider", provider_id, str(spec))
    roster_file = env / "roster.csv"
    roster_file.write_bytes(csv_bytes(RECORDS))
    _ok("data", "upload", str(roster_file), "--tenant", "uni", "--provider", provider_id)
    monkeypatch.setenv("PATH", str(env))  # no Graphviz here
    dataset = f"pavilion.rosters.{provider_id}"
    for asked in (["--format", "png", "--out", str(env / "g.png")], ["--out", str(env / "g.svg")]):
        result = runner.invoke(app, ["lineage", "show", dataset, "--tenant", "uni", *asked])
        assert result.exit_code != 0
        assert "apt-get install graphviz" in str(result.exception)
    assert not (env / "g.png").exists()
    assert not (env / "g.svg").exists()
    assert not (env / "g.dot").exists()  # never another file than the one asked for
    # DOT needs nothing: standard output by default
    shown = runner.invoke(app, ["lineage", "show", dataset, "--tenant", "uni"])
    assert shown.exit_code == 0
    assert shown.stdout.startswith("digraph")


def test_signed_pushes_from_the_cli(env: Path) -> None:
    provider_id = _provider(env)
    spec = env / "profile.yaml"
    spec.write_text(yaml.safe_dump(profile(), allow_unicode=True))
    _ok("data", "mapping", "add", "--tenant", "uni", "--provider", provider_id, str(spec))
    key = ec_key()
    jwk = env / "dp.jwk"
    jwk.write_text(json.dumps(public_jwk(key)))
    assert "registered" in _ok(
        "data", "keys", "add", "--tenant", "uni", "--provider", provider_id, str(jwk)
    )
    body = csv_bytes(RECORDS)
    roster_file = env / "roster.csv"
    roster_file.write_bytes(body)
    assert "signature-required" not in _fails(
        "data", "upload", str(roster_file), "--tenant", "uni", "--provider", provider_id
    )
    signature = env / "roster.csv.jws"
    signature.write_text(detached_jws(body, key))
    _ok(
        "data", "upload", str(roster_file), "--tenant", "uni", "--provider", provider_id,
        "--signature", str(signature), "--as-of", "2026-01-01T00:00:00",
    )  # fmt: skip
    roster_file.write_bytes(body.replace(b"enrolled", b"graduated", 1))
    tampered = _fails(
        "data", "upload", str(roster_file), "--tenant", "uni", "--provider", provider_id,
        "--signature", str(signature),
    )  # fmt: skip
    assert "changed after signing" in tampered
    missing = env / "missing.yaml"
    result = runner.invoke(
        app, ["data", "mapping", "add", "--tenant", "uni", "--provider", provider_id, str(missing)]
    )
    assert result.exit_code != 0


def test_sparkline() -> None:
    assert sparkline([0, 50, 100]) == " ▄█"


def test_data_push_is_a_deprecated_alias_of_data_upload(env: Path) -> None:
    provider_id = _provider(env)
    spec = env / "profile.yaml"
    spec.write_text(yaml.safe_dump(profile(), allow_unicode=True))
    _ok("data", "mapping", "add", "--tenant", "uni", "--provider", provider_id, str(spec))
    roster_file = env / "roster.csv"
    roster_file.write_bytes(csv_bytes(RECORDS))
    out = _ok("data", "push", str(roster_file), "--tenant", "uni", "--provider", provider_id)
    assert (
        "'pavilion data push' is deprecated and will be removed: use 'pavilion data upload'" in out
    )
    assert re.search(r"batch [0-9a-f-]{36} applied: 30 of 30 rows", out)
    listed = _ok("data", "--help")
    assert "upload" in listed
    assert " push " not in listed
