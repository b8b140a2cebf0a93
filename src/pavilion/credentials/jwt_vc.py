"""JWT VC in the VC Data Model 1.1 ``vc``-claim form (the format older verifiers read)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pavilion.credentials import jsonld
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.templates import CredentialTemplate, by_credential_type
from pavilion.credentials.timeutil import numeric_date
from pavilion.jose import sign_compact
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
    status: dict[str, Any] | None = None,
) -> IssuedJwtVc:
    """``status``: the IETF Token Status List reference, ``{"status_list": {"idx", "uri"}}``."""
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
    if status is not None:
        claims["status"] = status
    token = await sign_compact({"typ": "JWT"}, claims, signer)
    return IssuedJwtVc(
        id=credential_id,
        token=token,
        digest=hashlib.sha256(token.encode("ascii")).hexdigest(),
        key_id=signer.key_id,
        valid_from=issued_at,
        valid_until=valid_until,
    )


async def sign_jwt_vc(
    *,
    signer: Signer,
    issuer: str,
    credential_id: str,
    vc: dict[str, Any],
    issued_at: datetime,
    valid_from: datetime,
    valid_until: datetime,
    status: dict[str, Any] | None = None,
    x5c: list[str] | None = None,
    subject_id: str | None = None,
) -> str:
    """A JWT VC whose ``vc`` claim is given (contexts, types, subject, evidence).

    VC 1.1 section 6.3.1: ``iss`` represents the issuer, ``jti`` the credential's ``id``,
    ``nbf``/``exp`` its validity, and ``sub`` MUST represent the ``id`` of the credential
    subject (``subject_id``; the ``id`` stays in ``vc.credentialSubject`` too, "in addition
    to" as the section allows).
    """
    claims: dict[str, Any] = {
        "iss": issuer,
        "jti": credential_id,
        "iat": int(issued_at.timestamp()),
        "nbf": int(valid_from.timestamp()),
        "exp": int(valid_until.timestamp()),
        "vc": vc,
    }
    if subject_id is not None:
        claims["sub"] = subject_id
    if status is not None:
        claims["status"] = status
    header: dict[str, Any] = {"typ": "JWT"}
    if x5c:
        header["x5c"] = x5c
    return await sign_compact(header, claims, signer)


# -- verification -------------------------------------------------------------------------------


def check_claims(claims: dict[str, Any]) -> CredentialTemplate | None:
    """The JWT VC (VC Data Model 1.1 section 6.3.1) rules; returns the template the type names.

    Raises CheckFailed (``schema``) naming what is wrong; the signature and the validity
    period are checked by the caller.
    """
    vc = claims.get("vc")
    if not isinstance(vc, dict):
        raise CheckFailed(CheckName.SCHEMA, "missing_vc", "the JWT has no 'vc' claim object")
    contexts = vc.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != VC_V1_CONTEXT:
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_context",
            f"vc.@context must be a list whose first item is {VC_V1_CONTEXT}",
        )
    types = vc.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise CheckFailed(
            CheckName.SCHEMA,
            "bad_type",
            "vc.type must be a list that includes VerifiableCredential",
        )
    try:
        jsonld.check_document(vc, where="vc")
    except jsonld.JsonLdError as exc:
        raise CheckFailed(CheckName.SCHEMA, "json_ld", exc.detail) from exc
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict) or not subject:
        raise CheckFailed(
            CheckName.SCHEMA, "bad_subject", "vc.credentialSubject must be a non-empty object"
        )
    if not isinstance(claims.get("iss"), str) or not claims["iss"]:
        raise CheckFailed(CheckName.SCHEMA, "missing_iss", "iss is missing")
    _check_registered_claims(claims, vc, subject)
    for name in ("iat", "nbf", "exp"):
        numeric_date(claims, name)
    template = by_credential_type(types)
    if template is not None:
        problems = template.subject_errors(subject)
        if problems:
            raise CheckFailed(
                CheckName.SCHEMA,
                "subject_schema",
                f"vc.credentialSubject does not match {template.id}: {problems[0]}",
            )
    return template


def _check_registered_claims(
    claims: dict[str, Any], vc: dict[str, Any], subject: dict[str, Any]
) -> None:
    """VC 1.1 section 6.3.1: the JWT claims MUST represent the members they stand for.

    ``sub`` represents ``credentialSubject.id``, ``jti`` the credential's ``id`` and ``iss`` its
    ``issuer``: where both are present they must agree, and a subject ``id`` needs ``sub``.
    """
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise CheckFailed(CheckName.SCHEMA, "bad_sub", "sub must be a string")
    subject_id = subject.get("id")
    if subject_id is not None and sub is None:
        raise CheckFailed(
            CheckName.SCHEMA,
            "missing_sub",
            "vc.credentialSubject.id is set but sub is missing (VC 1.1 section 6.3.1: sub MUST "
            "represent the id of the credential subject)",
        )
    if subject_id is not None and subject_id != sub:
        raise CheckFailed(
            CheckName.SCHEMA,
            "sub_mismatch",
            "sub is not vc.credentialSubject.id (VC 1.1 section 6.3.1)",
        )
    if "id" in vc and vc["id"] != claims.get("jti"):
        raise CheckFailed(
            CheckName.SCHEMA, "jti_mismatch", "jti is not vc.id (VC 1.1 section 6.3.1)"
        )
    issuer = vc.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer_id is not None and issuer_id != claims["iss"]:
        raise CheckFailed(
            CheckName.SCHEMA, "iss_mismatch", "iss is not vc.issuer (VC 1.1 section 6.3.1)"
        )
