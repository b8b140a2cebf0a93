"""Structured JSON logs through a redaction filter.

Redaction is by key (anything that names a person or an identifier) and by value shape
(e-mail addresses, ISO dates, long digit runs), so a careless ``log.info(..., record=...)``
still cannot leak a subject. Tests assert that nothing personal reaches the log stream.

Exceptions are rendered to text inside the processor chain, before redaction: structlog's
``format_exc_info`` turns ``exc_info`` (from ``log.exception``, ``exc_info=...`` or a standard
library ``logger.exception``) into an ``exception`` string holding the traceback and the
exception's message, which the redaction then scrubs like any other value. A value that is
neither JSON-native nor a container (an exception passed as a field, for example) is redacted
as the ``repr`` the renderer would otherwise have written unredacted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

_SENSITIVE_KEYS = frozenset(
    {
        "identifiers",
        "identifier",
        "subject",
        "record",
        "student_id",
        "email",
        "given_name",
        "family_name",
        "name_of_subject",
        "birth_date",
        "birthdate",
        "phone",
        "address",
        "api_key",
        "authorization",
        "token",
        "secret",
        "password",
        "credential",
    }
)
_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+\.[A-Za-z]{2,}")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b(?!T)")
_DIGITS = re.compile(r"\b[A-Za-z]?\d{6,}\b")
_BEARER = re.compile(r"(?i)bearer\s+\S+")


#: Identifiers the shape rules would mangle, left whole: UUIDs (whose groups may be long digit
#: runs) and hex ids and digests of 16 or more characters with a letter among them (key ids,
#: hashes). A run of digits alone is still redacted: it may be a phone or a national number.
_SPARED = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b"
)


def _redact_shapes(text: str) -> str:
    return _DIGITS.sub(REDACTED, _DATE.sub(REDACTED, text))


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        value = _BEARER.sub("Bearer " + REDACTED, value)
        value = _EMAIL.sub(REDACTED, value)
        kept, last = [], 0
        for spared in _SPARED.finditer(value):
            kept += [_redact_shapes(value[last : spared.start()]), spared.group()]
            last = spared.end()
        return "".join([*kept, _redact_shapes(value[last:])])
    if isinstance(value, Mapping):
        return {k: REDACTED if _is_sensitive(k) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_value(repr(value))  # what the renderer would write, scrubbed first


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and key.lower() in _SENSITIVE_KEYS


#: Keys redaction leaves alone: the chain's own fields, and ProcessorFormatter's bookkeeping
#: for standard-library records (removed before rendering).
_PASSED_THROUGH = frozenset({"timestamp", "level", "logger", "_record", "_from_structlog"})


def redaction_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key in _PASSED_THROUGH:
            continue
        event_dict[key] = REDACTED if _is_sensitive(key) else redact_value(event_dict[key])
    return event_dict


class _RedactingFilter(logging.Filter):
    """Redacts records from libraries that log through the standard library."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event, already redacted
            return True
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact_value(str(record.msg))
        return True


def configure_logging(level: str = "INFO", *, json_output: bool = True) -> None:
    """Route structlog and the standard library through one redacting JSON pipeline."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text here, so that the redaction below sees them.
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redaction_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_pavilion", False):
            root.removeHandler(existing)
    handler._pavilion = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "hpack", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
