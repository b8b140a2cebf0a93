"""``pavilion keys replicate``: the connector's keys reach the standby token, wrapped."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keys_support import Token
from pavilion.cli.main import app
from pavilion.config.settings import load_settings
from pavilion.errors import ConfigurationError
from pavilion.keystore.factory import hsm_standby_config, open_keystore

pytestmark = pytest.mark.softhsm
runner = CliRunner()


def test_replicate_copies_the_keys_to_the_standby_once(
    hsm_token: Token, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAVILION_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAVILION_KEYSTORE_BACKEND", "pkcs11")
    monkeypatch.setenv("PAVILION_HSM_MODULE", hsm_token.module)
    monkeypatch.setenv("PAVILION_HSM_TOKEN_LABEL", hsm_token.label)
    monkeypatch.setenv("PAVILION_HSM_PIN_FILE", str(hsm_token.pin_file))
    monkeypatch.setenv("COLUMNS", "200")

    refused = runner.invoke(app, ["keys", "replicate"])
    assert isinstance(refused.exception, ConfigurationError)
    assert "PAVILION_HSM_STANDBY_TOKEN_LABEL" in refused.exception.detail

    pin = secrets.token_hex(6)
    so_pin = secrets.token_hex(6)
    command = ["softhsm2-util", "--init-token", "--free", "--label", "standby", "--so-pin", so_pin]
    subprocess.run([*command, "--pin", pin], check=True, capture_output=True)
    pin_file = tmp_path / "standby-pin"
    pin_file.write_text(pin + "\n", encoding="utf-8")
    monkeypatch.setenv("PAVILION_HSM_STANDBY_TOKEN_LABEL", "standby")
    monkeypatch.setenv("PAVILION_HSM_STANDBY_PIN_FILE", str(pin_file))
    settings = load_settings(None)
    standby = hsm_standby_config(settings)
    assert standby is not None
    assert (standby.module_path, standby.token_label, standby.user_pin) == (
        hsm_token.module,
        "standby",
        pin,
    )
    keystore = open_keystore(settings)  # the default keys, generated replicable
    keystore.health()
    asyncio.run(keystore.aclose())

    first = runner.invoke(app, ["keys", "replicate"])
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert "replication key: created on the primary and sent to the standby" in first.output
    assert "copied: pavilion:credential-signing:active:es256-" in first.output
    assert "copied: pavilion:key-encryption:active:a256gcm-" in first.output
    again = runner.invoke(app, ["keys", "replicate", "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert (report["kek"], report["copied"], report["relabelled"]) == ("present", [], [])
    assert len(report["present"]) >= 2
