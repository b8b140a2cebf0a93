"""What the VC-API issuer signs: a validity period from now, and a VC 1.1 JWT whose registered
claims represent the members VC Data Model 1.1 section 6.3.1 names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from credentials_support import (
    ISSUER,
    NOW,
    STUDENT,
    check,
    es256,
    options,
    resign,
    split_jws,
    trust_for,
)
from pavilion.credentials import issuance, templates, verifier
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.timeutil import iso
from pavilion.errors import InvalidRequest

STUDENT_TEMPLATE = templates.latest("student_status")
HOLDER = "did:example:ebfeb1f712ebc6f1c276e12ec21"


# -- the validity period of a VC-API credential ------------------------------------------------


def test_an_omitted_period_runs_from_now_for_the_templates_maximum_age() -> None:
    filled = issuance.vc_api_validity({}, STUDENT_TEMPLATE, NOW)
    assert filled == {"validFrom": iso(NOW), "validUntil": iso(NOW + timedelta(days=30))}
    assert issuance.vc_api_validity({}, None, NOW)["validUntil"] == iso(NOW + timedelta(days=365))


def test_validity_is_computed_from_now_not_from_a_given_valid_from() -> None:
    """A future validFrom is kept; validUntil still counts the maximum age from issuance."""
    later = NOW + timedelta(days=2)
    filled = issuance.vc_api_validity({"validFrom": iso(later)}, STUDENT_TEMPLATE, NOW)
    assert filled == {"validUntil": iso(NOW + timedelta(days=30))}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"validFrom": iso(NOW - timedelta(days=90))}, "credential.validFrom"),
        ({"validFrom": iso(NOW - timedelta(minutes=2))}, "credential.validFrom"),
        ({"validUntil": iso(NOW - timedelta(days=1))}, "credential.validUntil"),
        ({"validUntil": iso(NOW)}, "credential.validUntil"),
    ],
)
def test_a_credential_valid_before_issuance_or_already_expired_is_refused(
    document: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        issuance.vc_api_validity(document, STUDENT_TEMPLATE, NOW)
    assert raised.value.field == field


def test_clock_skew_within_the_leeway_is_accepted() -> None:
    skewed = {"validFrom": iso(NOW - timedelta(seconds=30))}
    assert "validUntil" in issuance.vc_api_validity(skewed, STUDENT_TEMPLATE, NOW)


def test_malformed_dates_are_left_to_the_data_model_check() -> None:
    assert issuance.vc_api_validity({"validFrom": "yesterday"}, STUDENT_TEMPLATE, NOW) == {
        "validUntil": iso(NOW + timedelta(days=30))
    }


# -- VC 1.1 JWT: sub represents credentialSubject.id -----------------------------------------


async def _jwt_vc(subject: dict[str, Any]) -> tuple[str, Any]:
    signer = es256()
    document = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://pavilion.example/contexts/eligibility/v1",
        ],
        "id": "urn:uuid:8a6c2f30-2a5e-4b8e-9f4b-2d3c3f0e9a10",
        "type": ["VerifiableCredential", "StudentStatusCredential"],
        "issuer": ISSUER,
        "validFrom": iso(NOW),
        "validUntil": iso(NOW + timedelta(days=30)),
        "credentialSubject": subject,
        "evidence": [issuance.attestation(None, NOW, STUDENT_TEMPLATE)],
    }
    issued = await issuance.issue_document(
        document,
        fmt=CredentialFormat.JWT_VC,
        template=STUDENT_TEMPLATE,
        key=issuance.IssuingKey(signer),
        issued_at=NOW,
    )
    return issued.token, signer


async def test_jwt_vc_carries_sub_for_the_subjects_id() -> None:
    """VC 1.1 section 6.3.1: "sub MUST represent the id property contained in the
    credentialSubject"; jti the credential's id, iss its issuer, typ (if present) JWT."""
    token, signer = await _jwt_vc({"id": HOLDER, **STUDENT})
    header, claims, _ = split_jws(token)
    assert header["typ"] == "JWT"
    assert claims["sub"] == HOLDER == claims["vc"]["credentialSubject"]["id"]
    assert claims["jti"] == "urn:uuid:8a6c2f30-2a5e-4b8e-9f4b-2d3c3f0e9a10"
    assert claims["iss"] == ISSUER
    report = await verifier.verify_credential(token, trust_for(signer), options())
    assert report.verified, report.to_json()


async def test_a_jwt_vc_has_no_vc2_envelope() -> None:
    """A VC 1.1 JWT is no VC 2.0 credential: the VC-API returns the JWT itself."""
    signer = es256()
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:8a6c2f30-2a5e-4b8e-9f4b-2d3c3f0e9a11",
        "type": ["VerifiableCredential"],
        "issuer": ISSUER,
        "validFrom": iso(NOW),
        "validUntil": iso(NOW + timedelta(days=1)),
        "credentialSubject": {"name": "x"},
    }
    issued = await issuance.issue_document(
        document,
        fmt=CredentialFormat.JWT_VC,
        template=None,
        key=issuance.IssuingKey(signer),
        issued_at=NOW,
    )
    assert issued.secured_form() == issued.token
    assert issued.media_type == "application/jwt"
    with pytest.raises(InvalidRequest, match=r"no VC 2\.0 envelope"):
        issued.envelope()


async def test_jwt_vc_without_a_subject_id_has_no_sub() -> None:
    token, signer = await _jwt_vc(dict(STUDENT))
    assert "sub" not in split_jws(token)[1]
    report = await verifier.verify_credential(token, trust_for(signer), options())
    assert report.verified, report.to_json()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda c: c.pop("sub"), "missing_sub"),
        (lambda c: c.update(sub="did:example:someone-else"), "sub_mismatch"),
        (lambda c: c.update(sub=7), "bad_sub"),
        (lambda c: c["vc"].update(id="urn:uuid:another"), "jti_mismatch"),
        (lambda c: c["vc"].update(issuer="https://other.example"), "iss_mismatch"),
    ],
)
async def test_registered_claims_that_do_not_represent_their_members_fail(
    mutate: Any, code: str
) -> None:
    token, signer = await _jwt_vc({"id": HOLDER, **STUDENT})
    header, claims, _ = split_jws(token)
    mutate(claims)
    forged = await resign(header, claims, signer)
    report = await verifier.verify_credential(forged, trust_for(signer), options())
    assert check(report, "schema") == ("fail", code)
