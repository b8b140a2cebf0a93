"""``pavilion privacy`` commands that must fail clearly, and the DP-side key commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pavilion.cli.main import app

runner = CliRunner()


def test_dp_keys_init_show_rotate(tmp_path: Path) -> None:
    key_dir = str(tmp_path / "keys")
    missing = runner.invoke(app, ["privacy", "dp-keys", "show", "--dir", key_dir])
    assert missing.exit_code != 0
    created = json.loads(
        runner.invoke(app, ["privacy", "dp-keys", "init", "--dir", key_dir]).stdout
    )
    rotated = runner.invoke(app, ["privacy", "dp-keys", "rotate", "--dir", key_dir])
    assert rotated.exit_code == 0
    keys = json.loads(rotated.stdout)["oprf_keys"]
    states = {k["key_id"]: k["state"] for k in keys}
    assert states[created["oprf_keys"][0]["key_id"]] == "previous"
    text = (tmp_path / "keys" / "roster-signing.jwk").read_text()
    assert json.loads(text)["d"] not in rotated.stdout  # private parts are never printed


def test_tag_set_push_needs_a_token_and_readable_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "privacy", "tag-set", "push", "--records", str(tmp_path / "r.csv"),
        "--dir", str(tmp_path), "--connector", "http://127.0.0.1:9", "--tenant-id", "t",
        "--provider-id", "p",
    ]  # fmt: skip
    monkeypatch.delenv("PAVILION_CONNECTOR_TOKEN", raising=False)
    no_token = runner.invoke(app, args)
    assert no_token.exit_code != 0
    assert "PAVILION_CONNECTOR_TOKEN" in no_token.output
    monkeypatch.setenv("PAVILION_CONNECTOR_TOKEN", "pav_x")
    no_file = runner.invoke(app, args)
    assert no_file.exit_code != 0
    assert "cannot read" in str(no_file.exception)


def test_bad_arguments_say_what_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    bad_pair = runner.invoke(
        app,
        [
            "privacy", "zk", "present", "--tenant", "t", "--provider", "p",
            "--claim", "age_over", "--identifier", "S1234567", "--residency", "EU",
            "--purpose", "x",
        ],
    )  # fmt: skip
    assert bad_pair.exit_code != 0
    assert "kind=value" in bad_pair.output
    bad_period = runner.invoke(
        app, ["privacy", "budget", "set", "--tenant", "t", "--epsilon", "1", "--period", "year"]
    )
    assert bad_period.exit_code != 0
    assert "day, week, month or never" in bad_period.output
    no_source = runner.invoke(app, ["privacy", "receipts", "verify"])
    assert "--tenant" in no_source.output
    half = runner.invoke(app, ["privacy", "receipts", "verify", "--bundle", str(tmp_path / "b")])
    assert "--jwks" in half.output


def test_the_old_command_names_are_hidden_deprecated_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PAVILION_CONNECTOR_TOKEN", raising=False)
    push = runner.invoke(
        app,
        [
            "privacy", "roster", "push", "--records", str(tmp_path / "r.csv"),
            "--dir", str(tmp_path), "--connector", "http://127.0.0.1:9", "--tenant-id", "t",
            "--provider-id", "p",
        ],
    )  # fmt: skip
    assert "'pavilion privacy roster push' is deprecated" in push.stderr
    assert "use 'pavilion privacy tag-set push'" in push.stderr
    assert "PAVILION_CONNECTOR_TOKEN" in push.output  # then it runs as the new command
    register = runner.invoke(
        app,
        [
            "privacy", "roster-key", "register", "--tenant", "t", "--provider", "p",
            "--jwk-file", str(tmp_path / "missing.json"),
        ],
    )  # fmt: skip
    assert "use 'pavilion privacy tag-set-key register'" in register.stderr
    assert isinstance(register.exception, FileNotFoundError)
    release = runner.invoke(
        app,
        ["privacy", "dp", "release", "--tenant", "t", "--statistic", "count", "--epsilon", "1"],
    )
    assert "use 'pavilion privacy release'" in release.stderr
    listed = runner.invoke(app, ["privacy", "--help"]).stdout
    commands = listed.split("Commands:")[1]
    names = {line.split()[0] for line in commands.splitlines() if line.startswith("  ")}
    assert {"tag-set", "tag-set-key", "release"} <= names
    assert not names & {"roster", "roster-key", "dp"}
