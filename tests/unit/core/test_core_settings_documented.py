"""Every setting the documentation names exists and is read by the code, and every setting
is read somewhere: a documented variable that nothing reads (PAVILION_CREDENTIAL_TTL_SECONDS
was one) misleads whoever sets it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pavilion.config.settings import Settings, load_settings
from pavilion.errors import ConfigurationError

ROOT = Path(__file__).parents[3]
SRC = ROOT / "src" / "pavilion"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Documented variables that are not connector settings, and who reads them.
NOT_SETTINGS = {
    "PAVILION_DP_API_KEY": "src/pavilion/cli/dp_agent.py",  # the DP agent's key
    "PAVILION_CONNECTOR_TOKEN": "src/pavilion/cli/privacy_dp.py",  # tag-set push's token
    "PAVILION_TOKEN": "src/pavilion/cli/connections.py",  # providers status's token
    "PAVILION_URL": "src/pavilion/cli/connections.py",  # providers status's connector
}
#: Settings read through a property of Settings rather than by name.
READ_AS = {"keystore_dir": "resolved_keystore_dir"}


def _documented() -> set[str]:
    return {
        name.rstrip("_")
        for doc in DOCS
        for name in re.findall(r"PAVILION_[A-Z0-9_]+", doc.read_text(encoding="utf-8"))
    }


def _code_outside_settings() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8")
        for path in SRC.rglob("*.py")
        if path != SRC / "config" / "settings.py"
    )


def test_every_documented_variable_is_a_setting_or_read_by_its_command() -> None:
    fields = set(Settings.model_fields)
    unknown = []
    for name in sorted(_documented()):
        if name in NOT_SETTINGS:
            assert name in (ROOT / NOT_SETTINGS[name]).read_text(encoding="utf-8"), name
        elif name.removeprefix("PAVILION_").lower() not in fields:
            unknown.append(name)
    assert unknown == [], f"documented but not settings: {unknown}"


def test_every_setting_is_read_by_the_code() -> None:
    code = _code_outside_settings()
    unread = [
        field
        for field in sorted(Settings.model_fields)
        if not re.search(rf"\.{READ_AS.get(field, field)}\b", code)
    ]
    assert unread == [], f"settings nothing reads: {unread}"


def test_the_removed_credential_ttl_is_neither_documented_nor_accepted_in_a_file(
    tmp_path: Path,
) -> None:
    assert "PAVILION_CREDENTIAL_TTL_SECONDS" not in _documented()
    config = tmp_path / "pavilion.yaml"
    config.write_text("credential_ttl_seconds: 3600\n")
    with pytest.raises(ConfigurationError, match="not a known setting"):
        load_settings(config)
