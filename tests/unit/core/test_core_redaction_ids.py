"""The log redactor spares identifiers (issue 14, item 8): a UUID or a hex key id survives whole,
while personal data shaped like digits, dates, e-mail addresses and bearer tokens does not."""

from __future__ import annotations

import pytest

from pavilion.observability.logging import REDACTED, redact_value

SPARED = [
    "3c3f5596-b80a-4fe1-a990-3c179ffcdd8f",
    "12345678-1234-1234-1234-123456789012",  # every group digits: once a "[redacted]-1234-..."
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
]


@pytest.mark.parametrize("identifier", SPARED)
def test_identifiers_are_spared_whole(identifier: str) -> None:
    assert redact_value(f"provider {identifier} failed") == f"provider {identifier} failed"
    assert redact_value({"provider_id": identifier}) == {"provider_id": identifier}


@pytest.mark.parametrize(
    "personal",
    ["07700900123", "S1234567", "2001-02-03", "ada@uni.example", "Bearer pav_abc_def"],
)
def test_personal_data_next_to_an_identifier_is_still_redacted(personal: str) -> None:
    text = f"{SPARED[1]} {personal} {SPARED[0]}"
    redacted = redact_value(text)
    assert personal not in redacted
    assert REDACTED in redacted
    assert redacted.startswith(SPARED[1])
    assert redacted.endswith(SPARED[0])
