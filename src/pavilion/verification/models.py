"""The record of each verification attempt. It holds ids, hashes, outcomes and a purpose
code; free text (the purpose's note) only sealed, never PII in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pavilion.store.base import Base, TenantOwned, UTCDateTime, new_id, utcnow


class Verification(TenantOwned, Base):
    __tablename__ = "verifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    claim_type: Mapped[str] = mapped_column(String(40), nullable=False)
    #: The claim as asked, canonical JSON, e.g. {"type":"age_over","threshold":18}.
    claim: Mapped[str] = mapped_column(String(400), nullable=False)
    #: Keyed hash (HMAC under the tenant's data key) of the subject's identifiers.
    subject_ref: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    residency: Mapped[str] = mapped_column(String(16), nullable=False)
    #: Why: a code (``verification.purposes``); ``other`` carries a free-text note, sealed
    #: with the tenant's data key (the tenant, table and verification id as associated data).
    purpose_code: Mapped[str] = mapped_column(String(40), nullable=False)
    purpose_note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: succeeded | provider_unavailable | provider_bad_response | policy_denied
    status: Mapped[str] = mapped_column(String(40), nullable=False)
    #: true | false | unknown (the subject is not on the DP's records); null on failure.
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    credential_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    audit_index: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
