"""Why a verification was asked: an enumerated purpose code, or ``other`` with a free-text
note. The code is stored as it is; the note is sealed with the tenant's data key (free text
may name people), so only the code can be counted or filtered on without the key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from pavilion.tenancy.sealing import TenantSealer, record_aad

TABLE: Final = "verifications"


class PurposeCode(StrEnum):
    ELIGIBILITY = "eligibility"
    AGE_VERIFICATION = "age_verification"
    STUDENT_DISCOUNT = "student_discount"
    MEMBERSHIP = "membership"
    ENROLMENT = "enrolment"
    EMPLOYMENT = "employment"
    ACCOUNT_OPENING = "account_opening"
    FRAUD_PREVENTION = "fraud_prevention"
    CREDENTIAL_REFRESH = "credential_refresh"
    OTHER = "other"


def _as_code(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


#: The codes a caller may give (``other`` alone says nothing, so it takes a note).
KNOWN_CODES = frozenset(c.value for c in PurposeCode) - {PurposeCode.OTHER.value}


def classify(purpose: str) -> tuple[PurposeCode, str | None]:
    """A request's ``purpose`` as (code, note): an enumerated code (in any case, with
    hyphens or spaces for underscores) stands alone; anything else is ``other`` with the
    text as its note."""
    code = _as_code(purpose)
    if code in KNOWN_CODES:
        return PurposeCode(code), None
    return PurposeCode.OTHER, purpose


def restore(code: str, note: str | None) -> str:
    """The purpose as a request would give it again (a refresh repeats it)."""
    return note if code == PurposeCode.OTHER.value and note is not None else code


def purpose_columns(sealer: TenantSealer, verification_id: str, purpose: str) -> dict[str, Any]:
    """The stored columns of a verification's purpose: ``purpose_code`` and, for ``other``,
    ``purpose_note`` sealed with the tenant's data key (one AES-GCM seal, a few
    microseconds; the tenant, table and verification id as associated data)."""
    code, note = classify(purpose)
    sealed = (
        None
        if note is None
        else sealer.seal(note.encode("utf-8"), record_aad(sealer.tenant_id, TABLE, verification_id))
    )
    return {"purpose_code": code.value, "purpose_note": sealed}


def open_note(sealer: TenantSealer, verification_id: str, sealed: bytes) -> str:
    """A verification's sealed purpose note (CryptoError if altered or moved)."""
    return sealer.open(sealed, record_aad(sealer.tenant_id, TABLE, verification_id)).decode()
