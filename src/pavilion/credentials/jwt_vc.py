"""JWT VC in the VC Data Model 1.1 ``vc``-claim form (the format older verifiers read)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pavilion.credentials.jws import sign_compact
from pavilion.keystore.signer import Signer

VC_V1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
PAVILION_CONTEXT = "https://pavilion.example/contexts/eligibility/v1"

#: Credential types per claim type.
CREDENTIAL_TYPES = {
    "student_status": "StudentStatusCredential",
    "age_over": "AgeOverCredential",
    "membership": "MembershipCredential",
}


@dataclass(frozen=True)
class IssuedJwtVc:
    id: str
    token: str
    digest: str
    key_id: str
    valid_from: datetime
    valid_until: datetime


def build_claims(
    *,
    credential_id: str,
    issuer: str,
    claim_type: str,
    subject_claims: dict[str, Any],
    issued_at: datetime,
    valid_until: datetime,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """The JWT claims set; registered claims mirror the ``vc`` members (VC-DATA-MODEL 1.1 6.3)."""
    return {
        "iss": issuer,
        "jti": f"urn:uuid:{credential_id}",
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int(valid_until.timestamp()),
        "vc": {
            "@context": [VC_V1_CONTEXT, PAVILION_CONTEXT],
            "type": ["VerifiableCredential", CREDENTIAL_TYPES[claim_type]],
            "credentialSubject": subject_claims,
            "evidence": [evidence],
        },
    }


async def issue_jwt_vc(
    *,
    signer: Signer,
    issuer: str,
    claim_type: str,
    subject_claims: dict[str, Any],
    issued_at: datetime,
    ttl: timedelta,
    evidence: dict[str, Any],
) -> IssuedJwtVc:
    credential_id = str(uuid.uuid4())
    valid_until = issued_at + ttl
    claims = build_claims(
        credential_id=credential_id,
        issuer=issuer,
        claim_type=claim_type,
        subject_claims=subject_claims,
        issued_at=issued_at,
        valid_until=valid_until,
        evidence=evidence,
    )
    token = await sign_compact({"typ": "JWT"}, claims, signer)
    return IssuedJwtVc(
        id=credential_id,
        token=token,
        digest=hashlib.sha256(token.encode("ascii")).hexdigest(),
        key_id=signer.key_id,
        valid_from=issued_at,
        valid_until=valid_until,
    )
