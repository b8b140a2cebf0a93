"""Sealing at rest under a tenant's data key, keyed pseudonyms, and purpose codes."""

from __future__ import annotations

import os

import pytest

from pavilion.errors import CryptoError
from pavilion.tenancy.sealing import TenantSealer, normalise_identifier, record_aad
from pavilion.verification.purposes import PurposeCode, classify, restore

KEY = bytes(range(32))


def test_a_sealed_value_opens_only_in_its_own_tenant_table_and_row() -> None:
    sealer = TenantSealer("t1", KEY)
    aad = record_aad("t1", "ingest_roster_records", "p1/ref")
    sealed = sealer.seal(b'{"subject_id":"S1"}', aad)
    assert b"S1" not in sealed
    assert sealer.seal(b'{"subject_id":"S1"}', aad) != sealed  # a fresh nonce each time
    assert sealer.open(sealed, aad) == b'{"subject_id":"S1"}'
    for other in (
        record_aad("t2", "ingest_roster_records", "p1/ref"),
        record_aad("t1", "verifications", "p1/ref"),
        record_aad("t1", "ingest_roster_records", "p1/other"),
    ):
        with pytest.raises(CryptoError, match="does not open"):
            sealer.open(sealed, other)
    with pytest.raises(CryptoError):  # the tenant's key is gone (crypto-shredded): unreadable
        TenantSealer("t1", os.urandom(32)).open(sealed, aad)
    with pytest.raises(CryptoError):
        sealer.open(b"short", aad)
    assert "t1" in repr(sealer)
    assert KEY.hex() not in repr(sealer)


def test_pseudonyms_are_keyed_stable_and_normalised() -> None:
    sealer = TenantSealer("t1", KEY)
    ref = sealer.pseudonym("S1234567")
    assert len(ref) == 64
    assert ref == TenantSealer("t1", KEY).pseudonym(" S1234567\n")
    assert ref != TenantSealer("t1", os.urandom(32)).pseudonym("S1234567")
    assert ref != sealer.pseudonym("s1234567")  # ids keep their case
    assert normalise_identifier("  e\u0301 ") == "\u00e9"


@pytest.mark.parametrize(
    ("purpose", "code", "note"),
    [
        ("eligibility", PurposeCode.ELIGIBILITY, None),
        ("Age-Verification", PurposeCode.AGE_VERIFICATION, None),
        ("student discount", PurposeCode.STUDENT_DISCOUNT, None),
        ("eligibility check", PurposeCode.OTHER, "eligibility check"),
        ("other", PurposeCode.OTHER, "other"),
        ("checking Jane Doe", PurposeCode.OTHER, "checking Jane Doe"),
    ],
)
def test_a_purpose_is_a_code_or_other_with_a_note(
    purpose: str, code: PurposeCode, note: str | None
) -> None:
    assert classify(purpose) == (code, note)
    assert restore(code.value, note) == (note if note is not None else code.value)
