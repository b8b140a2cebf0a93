"""The redaction filter: by key and by value shape."""

from __future__ import annotations

import json
import logging

import pytest

from pavilion.observability.logging import (
    REDACTED,
    configure_logging,
    get_logger,
    redact_value,
)


def test_values_that_look_personal_are_redacted() -> None:
    text = "mail ada@uni.example born 2001-04-05 id S1234567 Bearer abc.def"
    redacted = redact_value(text)
    for leaked in ("ada@uni.example", "2001-04-05", "S1234567", "abc.def"):
        assert leaked not in redacted
    assert redact_value({"email": "x", "nested": ["b@c.example"], "n": 3}) == {
        "email": REDACTED,
        "nested": [REDACTED],
        "n": 3,
    }
    # Timestamps and ids that are not personal survive.
    assert redact_value("2026-01-01T10:00:00") == "2026-01-01T10:00:00"


def test_structlog_and_stdlib_lines_are_json_and_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json_output=True)
    get_logger("t").info("lookup", identifiers={"student_id": "S7654321"}, outcome="found")
    logging.getLogger("lib").warning("user %s", "eve@uni.example")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["identifiers"] == REDACTED
    assert lines[0]["outcome"] == "found"
    assert "eve@uni.example" not in json.dumps(lines[1])
    configure_logging("INFO", json_output=False)  # reconfiguring replaces, never duplicates
    root_handlers = [h for h in logging.getLogger().handlers if getattr(h, "_pavilion", False)]
    assert len(root_handlers) == 1
