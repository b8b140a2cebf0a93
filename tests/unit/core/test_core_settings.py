"""Settings: defaults, environment, YAML, and messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pavilion.config.settings import load_settings, normalise_database_url
from pavilion.errors import ConfigurationError


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / '.pavilion' / 'pavilion.db'}"
    assert settings.database_migration_url == settings.database_url
    assert settings.is_sqlite
    assert settings.resolved_keystore_dir == Path(".pavilion/keystore")
    assert settings.issuer_id == settings.public_url == "http://127.0.0.1:8600"


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pavilion.yaml"
    config.write_text("port: 9000\nnode_region: us-east\nlog_level: DEBUG\n")
    monkeypatch.setenv("PAVILION_PORT", "9100")
    settings = load_settings(config)
    assert settings.port == 9100
    assert settings.node_region == "us-east"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        (
            "PAVILION_PORT",
            "eighty",
            "PAVILION_PORT: Input should be a valid integer",
        ),
        ("PAVILION_DATABASE_URL", "mysql://x", "PAVILION_DATABASE_URL"),
        ("PAVILION_NODE_REGION", "EU West", "must be a region slug"),
        ("PAVILION_LOG_LEVEL", "LOUD", "PAVILION_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert message in info.value.detail


def test_unknown_yaml_key_and_bad_yaml(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("prot: 1\n")
    with pytest.raises(ConfigurationError, match="not a known setting"):
        load_settings(typo)
    broken = tmp_path / "broken.yaml"
    broken.write_text("port: [\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_settings(broken)
    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///a.db", "sqlite+aiosqlite:///a.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_a_rule_over_several_settings_names_no_yaml_file_when_none_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "PAVILION_KEYSTORE_BACKEND": "pkcs11",
        "PAVILION_HSM_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
        "PAVILION_HSM_TOKEN_LABEL": "pavilion",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "PAVILION_HSM_PIN or PAVILION_HSM_PIN_FILE" in info.value.detail
    assert "YAML" not in info.value.detail
    assert "settings (settings" not in info.value.detail


def test_a_bad_value_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "pavilion.yaml"
    config.write_text("port: eighty\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(config)
    assert f"PAVILION_PORT (port in {config})" in info.value.detail
