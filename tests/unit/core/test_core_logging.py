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


class _LookupFailed(Exception):
    """An exception whose message holds personal data, as a careless caller might raise."""


def _raise_with_personal_data() -> None:
    raise _LookupFailed("no record for ada.lovelace@uni.example born 1815-12-10")


def _assert_redacted_with_traceback(line: dict[str, object]) -> None:
    text = json.dumps(line)
    assert "ada.lovelace@uni.example" not in text
    assert "1815-12-10" not in text
    exception = line["exception"]
    assert isinstance(exception, str)
    assert "Traceback (most recent call last)" in exception
    assert "_raise_with_personal_data" in exception  # the frames are there
    assert f"_LookupFailed: no record for {REDACTED} born {REDACTED}" in exception
    assert "exc_info" not in line


def test_stdlib_exception_logs_are_redacted_and_keep_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json_output=True)
    try:
        _raise_with_personal_data()
    except _LookupFailed:
        logging.getLogger("lib").exception("lookup for %s failed", "eve@uni.example")
    (line,) = [json.loads(out) for out in capsys.readouterr().err.splitlines()]
    assert line["level"] == "error"
    assert line["event"] == f"lookup for {REDACTED} failed"
    _assert_redacted_with_traceback(line)


def test_structlog_exception_logs_are_redacted_and_keep_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json_output=True)
    try:
        _raise_with_personal_data()
    except _LookupFailed as exc:
        get_logger("t").exception("lookup_failed", email="eve@uni.example")
        get_logger("t").error("lookup_failed", exc_info=exc, error=exc)
    first, second = [json.loads(out) for out in capsys.readouterr().err.splitlines()]
    assert first["event"] == "lookup_failed"
    assert first["email"] == REDACTED
    _assert_redacted_with_traceback(first)
    _assert_redacted_with_traceback(second)
    # An exception passed as a value is rendered (as its repr) after redaction, too.
    assert second["error"] == f"_LookupFailed('no record for {REDACTED} born {REDACTED}')"


def test_console_exception_logs_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=False)
    try:
        _raise_with_personal_data()
    except _LookupFailed:
        get_logger("t").exception("lookup_failed")
        logging.getLogger("lib").exception("lookup failed")
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 2
    assert "ada.lovelace@uni.example" not in err
    assert "1815-12-10" not in err
