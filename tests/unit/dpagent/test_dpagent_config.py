"""Agent settings: authentication is never off by accident, and keys stay secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from pavilion.dpagent.config import MIN_API_KEY_LENGTH, AgentConfig


def test_an_api_key_is_required_unless_auth_is_explicitly_off() -> None:
    with pytest.raises(ValidationError, match="API key is required"):
        AgentConfig()
    assert AgentConfig(insecure_no_auth=True).api_key is None


def test_a_key_and_insecure_mode_contradict_each_other() -> None:
    with pytest.raises(ValidationError, match="not both"):
        AgentConfig(api_key=SecretStr("k" * MIN_API_KEY_LENGTH), insecure_no_auth=True)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("k" * (MIN_API_KEY_LENGTH - 1), "at least"),
        ("with a space inside it", "visible ASCII"),
        ("ключ-ключ-ключ-ключ", "visible ASCII"),
    ],
)
def test_weak_or_unsendable_keys_are_refused(key: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        AgentConfig(api_key=SecretStr(key))


def test_the_key_does_not_show_in_the_config_repr() -> None:
    key = "s3cret-" + "x" * MIN_API_KEY_LENGTH
    config = AgentConfig(api_key=SecretStr(key))
    assert key not in repr(config)
    assert key not in str(config.model_dump())


def test_the_config_is_frozen() -> None:
    config = AgentConfig(insecure_no_auth=True)
    with pytest.raises(ValidationError):
        config.insecure_no_auth = False  # type: ignore[misc]
