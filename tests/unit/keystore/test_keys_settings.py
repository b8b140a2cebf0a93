"""Keystore and status-list settings: validated at start-up, each error naming its variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pavilion.config.settings import load_settings
from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.factory import hsm_config, open_keystore
from pavilion.keystore.software import SoftwareKeystore


def test_the_pkcs11_backend_needs_module_label_and_one_pin(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as missing:
        load_settings(None, data_dir=tmp_path, keystore_backend="pkcs11")
    assert "PAVILION_HSM_MODULE and PAVILION_HSM_TOKEN_LABEL" in missing.value.detail
    base = {"data_dir": tmp_path, "keystore_backend": "pkcs11", "hsm_module": "/x.so"}
    with pytest.raises(ConfigurationError, match="PAVILION_HSM_PIN or PAVILION_HSM_PIN_FILE"):
        load_settings(None, **base, hsm_token_label="t")
    pin_file = tmp_path / "pin"
    pin_file.write_text("1234\n")
    with pytest.raises(ConfigurationError, match="exactly one"):
        load_settings(None, **base, hsm_token_label="t", hsm_pin="1234", hsm_pin_file=pin_file)
    with pytest.raises(ConfigurationError, match="PAVILION_KEYSTORE_BACKEND"):
        load_settings(None, data_dir=tmp_path, keystore_backend="vault")


def test_hsm_settings_become_a_token_config_and_the_pin_stays_hidden(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret-pin\n")
    settings = load_settings(
        None,
        data_dir=tmp_path,
        keystore_backend="pkcs11",
        hsm_module="/nowhere/libsofthsm2.so",
        hsm_token_label="pavilion",
        hsm_pin_file=pin_file,
        hsm_slot=3,
        hsm_timeout_s=7.5,
    )
    assert "s3cret" not in repr(settings)
    config = hsm_config(settings)
    assert (config.user_pin, config.slot, config.operation_timeout_s) == ("s3cret-pin", 3, 7.5)
    assert "s3cret" not in repr(config)
    with pytest.raises(CryptoError, match="PKCS#11 module not found at '/nowhere"):
        open_keystore(settings)


def test_the_software_backend_is_the_default(tmp_path: Path) -> None:
    keystore = open_keystore(load_settings(None, data_dir=tmp_path))
    assert isinstance(keystore, SoftwareKeystore)
    assert (tmp_path / "keystore" / "keystore.json").is_file()


def test_status_list_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PAVILION_STATUS_LIST_BITS"):
        load_settings(None, data_dir=tmp_path, status_list_bits=3)
    with pytest.raises(ConfigurationError, match="PAVILION_STATUS_LIST_SIZE"):
        load_settings(None, data_dir=tmp_path, status_list_size=8)
    anchors = {"https://dp.example/status/": "https://dp.example/.well-known/jwks.json"}
    monkeypatch.setenv("PAVILION_STATUS_TRUST_ANCHORS", json.dumps(anchors))
    assert load_settings(None, data_dir=tmp_path).status_trust_anchors == anchors
    monkeypatch.setenv("PAVILION_STATUS_TRUST_ANCHORS", json.dumps({"dp.example/": "x"}))
    with pytest.raises(ConfigurationError, match="must be an http\\(s\\) URL"):
        load_settings(None, data_dir=tmp_path)
    for prefix in ("https://me@dp.example/", "https://dp.example/s?tenant=a", "https:///s/"):
        monkeypatch.setenv("PAVILION_STATUS_TRUST_ANCHORS", json.dumps({prefix: "https://j/"}))
        with pytest.raises(ConfigurationError, match="must be an origin and a path"):
            load_settings(None, data_dir=tmp_path)


def test_a_standby_token_needs_exactly_one_pin_and_defaults_to_the_primary_module(
    tmp_path: Path,
) -> None:
    from pavilion.keystore.factory import hsm_standby_config

    base = {
        "data_dir": tmp_path,
        "keystore_backend": "pkcs11",
        "hsm_module": "/x.so",
        "hsm_token_label": "t",
        "hsm_pin": "1234",
    }
    assert hsm_standby_config(load_settings(None, **base)) is None
    with pytest.raises(ConfigurationError, match="names the primary token itself"):
        load_settings(None, **base, hsm_standby_token_label="t", hsm_standby_pin="1")
    with pytest.raises(ConfigurationError, match="PAVILION_HSM_STANDBY_PIN or"):
        load_settings(None, **base, hsm_standby_token_label="s")
    pin_file = tmp_path / "standby-pin"
    pin_file.write_text("5678\n")
    with pytest.raises(ConfigurationError, match="exactly one"):
        load_settings(
            None,
            **base,
            hsm_standby_token_label="s",
            hsm_standby_pin="5",
            hsm_standby_pin_file=pin_file,
        )
    settings = load_settings(
        None, **base, hsm_standby_token_label="s", hsm_standby_pin_file=pin_file, hsm_standby_slot=3
    )
    standby = hsm_standby_config(settings)
    assert standby is not None
    assert (standby.module_path, standby.token_label, standby.user_pin, standby.slot) == (
        "/x.so",
        "s",
        "5678",
        3,
    )
    other = load_settings(
        None, **base, hsm_standby_token_label="s", hsm_standby_pin="9", hsm_standby_module="/y.so"
    )
    standby = hsm_standby_config(other)
    assert standby is not None
    assert (standby.module_path, standby.user_pin) == ("/y.so", "9")
    assert "9" not in repr(standby)
