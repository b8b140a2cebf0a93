"""VC 2.0 with VC-JOSE-COSE and JWT VC 1.1: checked by joserfc and PyJWT, and by our verifier."""

from __future__ import annotations

import copy
import warnings
from datetime import timedelta
from typing import Any

import jwt
import pytest
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, OKPKey

from credentials_support import (
    ISSUER,
    NOW,
    STUDENT,
    check,
    eddsa,
    es256,
    issue,
    options,
    resign,
    split_jws,
    trust_for,
)
from jose_support import pyjwk
from pavilion.credentials import issuance, jwt_vc, templates, vc2, verifier
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.templates import CredentialFormat
from pavilion.errors import InvalidRequest

VC2 = CredentialFormat.VC2_JOSE
JWT_VC = CredentialFormat.JWT_VC


async def test_vc2_is_a_vc_jwt_whose_payload_is_the_credential() -> None:
    signer = es256()
    issued = await issue(VC2, signer)
    header, payload, _ = split_jws(issued.token)
    assert header == {"typ": "vc+jwt", "cty": "vc", "alg": "ES256", "kid": signer.key_id}
    assert payload["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://pavilion.example/contexts/eligibility/v1",
    ]
    assert payload["type"] == ["VerifiableCredential", "StudentStatusCredential"]
    assert payload["issuer"] == payload["iss"] == ISSUER
    assert payload["credentialSubject"] == STUDENT
    assert payload["validFrom"] == "2026-06-01T12:00:00Z"
    assert payload["validUntil"] == "2026-07-01T12:00:00Z"  # 30 days: student_status@1
    assert payload["exp"] - payload["nbf"] == 30 * 86400
    assert payload["id"].startswith("urn:uuid:")
    assert payload["evidence"][0] == {
        "type": "DataProviderAttestation",
        "asOf": "2026-05-31T12:00:00Z",
        "template": "student_status@1",
        "provider": "provider-1",
    }
    assert "vc" not in payload
    assert "vp" not in payload


async def test_joserfc_and_pyjwt_verify_vc2_credentials_with_es256_and_eddsa() -> None:
    for signer in (es256(), eddsa()):
        issued = await issue(VC2, signer)
        jwk = signer.public_jwk()
        key = ECKey.import_key(jwk) if jwk["kty"] == "EC" else OKPKey.import_key(jwk)
        alg = {"ES256": "ES256", "EdDSA": "Ed25519"}[signer.algorithm]  # RFC 9864's name
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no deprecation warning for what we sign
            result = joserfc_jws.deserialize_compact(issued.token, key, algorithms=[alg])
        assert (result.protected["typ"], result.protected["alg"], jwk["alg"]) == (
            "vc+jwt",
            alg,
            alg,
        )
        claims = jwt.decode(
            issued.token,
            pyjwk(jwk).key,
            algorithms=[alg],
            options={"require": ["exp", "nbf", "iss"]},
            leeway=10**9,
        )
        assert claims["credentialSubject"] == STUDENT
        report = await verifier.verify_credential(issued.token, trust_for(signer), options())
        assert report.verified, report.to_json()


async def test_jwt_vc_keeps_the_vc_claim_form_and_verifies() -> None:
    signer = es256()
    status = issuance.StatusReference("https://connector.example/status/token/1", 7)
    issued = await issue(JWT_VC, signer, status=status)
    header, claims, _ = split_jws(issued.token)
    assert header["typ"] == "JWT"
    assert claims["vc"]["@context"][0] == "https://www.w3.org/2018/credentials/v1"
    assert claims["vc"]["credentialSubject"] == STUDENT
    assert claims["status"] == {
        "status_list": {"idx": 7, "uri": "https://connector.example/status/token/1"}
    }
    decoded = jwt.decode(
        issued.token,
        jwt.PyJWK(signer.public_jwk()).key,
        algorithms=["ES256"],
        options={"verify_exp": False, "verify_nbf": False},
    )
    assert decoded["jti"] == f"urn:uuid:{issued.id}"
    report = await verifier.verify_credential(issued.token, trust_for(signer), options())
    assert report.verified, report.to_json()
    assert report.format == "jwt_vc"


async def test_the_foundation_jwt_vc_issuer_output_verifies() -> None:
    signer = es256()
    issued = await jwt_vc.issue_jwt_vc(
        signer=signer,
        issuer=ISSUER,
        claim_type="age_over",
        subject_claims={"ageOver": {"threshold": 18, "over": True}},
        issued_at=NOW,
        ttl=timedelta(hours=1),
        evidence={
            "type": "DataProviderAttestation",
            "provider": "p",
            "asOf": "2026-06-01T00:00:00+00:00",
        },
    )
    report = await verifier.verify_credential(issued.token, trust_for(signer), options())
    assert report.verified, report.to_json()
    assert check(report, "freshness")[0] == "pass"


def _document(**changes: Any) -> dict[str, Any]:
    document = vc2.build_document(
        credential_id="urn:uuid:7f1b2a4e-52a3-4a85-a2f4-1f6a3b9f7e10",
        issuer=ISSUER,
        template=templates.latest("student_status"),
        subject=STUDENT,
        valid_from=NOW,
        valid_until=NOW + timedelta(days=1),
    )
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"@context": ["https://www.w3.org/2018/credentials/v1"]}, "bad_context"),
        ({"@context": "https://www.w3.org/ns/credentials/v2"}, "bad_context"),
        (
            {"@context": ["https://www.w3.org/ns/credentials/v2", "https://evil.example/ctx"]},
            "json_ld",
        ),
        (
            {"@context": ["https://www.w3.org/ns/credentials/v2", {"studentStatus": "urn:x"}]},
            "json_ld",
        ),
        ({"type": ["StudentStatusCredential"]}, "bad_type"),
        ({"type": "StudentStatusCredential"}, "bad_type"),
        ({"type": ["VerifiableCredential", ""]}, "bad_type"),
        ({"type": ["VerifiableCredential", "MadeUpCredential"]}, "json_ld"),
        ({"credentialSubject": {"undefinedTerm": 1}}, "json_ld"),
        ({"issuer": "not a url"}, "bad_issuer"),
        ({"issuer": {"name": "no id"}}, "bad_issuer"),
        ({"id": "no-scheme"}, "bad_id"),
        ({"credentialSubject": {}}, "bad_subject"),
        ({"credentialSubject": []}, "bad_subject"),
        ({"validFrom": "2026-06-01T12:00:00"}, "bad_date_time"),
        ({"validUntil": "2026-13-40T12:00:00Z"}, "bad_date_time"),
        ({"validFrom": "2026-07-01T00:00:00Z"}, "valid_from_after_valid_until"),
        ({"credentialStatus": {"id": "urn:x"}}, "bad_status"),
        ({"proof": {"type": "DataIntegrityProof"}}, "embedded_proof"),
        ({"vc": {}}, "jwt_vc_claim"),
        ({"credentialSubject": {"studentStatus": {"current": "yes"}}}, "subject_schema"),
    ],
)
def test_vc_data_model_rules_are_enforced(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(CheckFailed) as raised:
        vc2.check_document(_document(**changes))
    assert raised.value.code == code, raised.value.reason


def test_a_plain_vc2_credential_with_known_terms_passes() -> None:
    document = _document(
        credentialSubject={"id": "did:example:123", "studentStatus": {"current": True}},
        name="Student status",
        description="A credential",
    )
    assert vc2.check_document(document) is templates.latest("student_status")
    undefined_ok = _document(
        **{
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://www.w3.org/ns/credentials/undefined-terms/v2",
            ],
            "type": ["VerifiableCredential", "AnyCredential"],
            "credentialSubject": {"anything": {"goes": True}},
        }
    )
    assert vc2.check_document(undefined_ok) is None


async def test_vc2_validity_period_is_enforced_at_verification() -> None:
    signer = es256()
    issued = await issue(VC2, signer)
    expired = await verifier.verify_credential(
        issued.token, trust_for(signer), options(now=NOW + timedelta(days=31))
    )
    assert check(expired, "validity") == ("fail", "expired")
    early = await verifier.verify_credential(
        issued.token, trust_for(signer), options(now=NOW - timedelta(minutes=5))
    )
    assert check(early, "validity") == ("fail", "not_yet_valid")


async def test_vc2_header_rules_typ_and_cty() -> None:
    signer = es256()
    issued = await issue(VC2, signer)
    header, payload, _ = split_jws(issued.token)
    wrong_cty = await resign({**header, "cty": "json"}, payload, signer)
    report = await verifier.verify_credential(wrong_cty, trust_for(signer), options())
    assert check(report, "schema") == ("fail", "bad_cty")
    no_typ = await resign({k: v for k, v in header.items() if k != "typ"}, payload, signer)
    report = await verifier.verify_credential(no_typ, trust_for(signer), options())
    assert check(report, "schema") == ("fail", "bad_typ")


def test_envelopes_are_data_urls_and_open_back() -> None:
    """VC Data Model 2.0 4.13.1 (an enveloped credential's id is a data: URL) and 4.3 (the
    value of @context MUST be an ordered set whose first item is the VC 2.0 context)."""
    envelope = vc2.envelope("a.b.c")
    assert envelope == {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "data:application/vc+jwt,a.b.c",
        "type": "EnvelopedVerifiableCredential",
    }
    assert vc2.open_envelope(envelope, field="vc") == ("application/vc+jwt", "a.b.c")
    # Read leniently: the one-string form a client may send still opens.
    single = {**envelope, "@context": "https://www.w3.org/ns/credentials/v2"}
    assert vc2.open_envelope(single, field="vc") == ("application/vc+jwt", "a.b.c")
    presentation = vc2.envelope(
        "a.b.c", "application/vp+jwt", kind="EnvelopedVerifiablePresentation"
    )
    assert presentation["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert presentation["type"] == "EnvelopedVerifiablePresentation"
    assert vc2.parse_data_url("data:application/dc+sd-jwt,a%7Eb~", field="x") == (
        "application/dc+sd-jwt",
        "a~b~",
    )
    for bad, code in [
        ("not an object", "not_enveloped"),
        ({**envelope, "type": "VerifiableCredential"}, "not_enveloped"),
        ({**envelope, "@context": "https://www.w3.org/2018/credentials/v1"}, "bad_context"),
        ({**envelope, "id": "https://example.com"}, "bad_data_url"),
        ({**envelope, "id": "data:application/vc+jwt;base64,YWJj"}, "bad_data_url"),
    ]:
        with pytest.raises(CheckFailed) as raised:
            vc2.open_envelope(bad, field="vc")
        assert raised.value.code == code


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda vc: vc.pop("vc"), "missing_vc"),
        (
            lambda vc: vc["vc"].update({"@context": ["https://www.w3.org/ns/credentials/v2"]}),
            "bad_context",
        ),
        (lambda vc: vc["vc"].update({"type": ["StudentStatusCredential"]}), "bad_type"),
        (lambda vc: vc["vc"].update({"credentialSubject": {}}), "json_ld"),
        (lambda vc: vc["vc"].update({"credentialSubject": "x"}), "bad_subject"),
        (lambda vc: vc.pop("iss"), "missing_iss"),
        (lambda vc: vc.update({"exp": "tomorrow"}), "bad_numeric_date"),
        (
            lambda vc: vc["vc"].update({"credentialSubject": {"studentStatus": {}}}),
            "subject_schema",
        ),
    ],
)
async def test_jwt_vc_rules_are_enforced(mutate: Any, code: str) -> None:
    signer = es256()
    issued = await issue(JWT_VC, signer)
    _, claims, _ = split_jws(issued.token)
    claims = copy.deepcopy(claims)
    mutate(claims)
    if code == "json_ld":
        claims["vc"]["credentialSubject"] = {"notDefined": True}
    with pytest.raises(CheckFailed) as raised:
        jwt_vc.check_claims(claims)
    assert raised.value.code == code


async def test_issue_document_secures_a_vc_api_credential_in_each_format() -> None:
    signer, holder = es256(), es256()
    document = _document(
        evidence=[{"type": "DataProviderAttestation", "asOf": "2026-06-01T00:00:00Z"}]
    )
    for fmt in CredentialFormat:
        issued = await issuance.issue_document(
            document,
            fmt=fmt,
            template=templates.latest("student_status"),
            key=issuance.IssuingKey(signer),
            issued_at=NOW,
            holder_jwk=holder.public_jwk() if fmt is CredentialFormat.SD_JWT_VC else None,
        )
        assert issued.id == "7f1b2a4e-52a3-4a85-a2f4-1f6a3b9f7e10"
        report = await verifier.verify_credential(issued.token, trust_for(signer), options())
        assert report.verified, (fmt, report.to_json())
        assert issued.vouched_at is not None


async def test_issue_document_needs_a_vct_for_untemplated_sd_jwt_and_keeps_foreign_ids() -> None:
    signer = es256()
    document = _document(
        id="https://university.example/credentials/1",
        **{
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://www.w3.org/ns/credentials/undefined-terms/v2",
            ],
            "type": ["VerifiableCredential", "AlumniCredential"],
            "credentialSubject": {"id": "did:example:1", "alumniOf": "Example U"},
        },
    )
    with pytest.raises(InvalidRequest) as raised:
        await issuance.issue_document(
            document,
            fmt=CredentialFormat.SD_JWT_VC,
            template=None,
            key=issuance.IssuingKey(signer),
            issued_at=NOW,
        )
    assert raised.value.field == "options.vct"
    issued = await issuance.issue_document(
        document,
        fmt=CredentialFormat.SD_JWT_VC,
        template=None,
        key=issuance.IssuingKey(signer),
        issued_at=NOW,
        vct="urn:example:alumni",
    )
    assert len(issued.id) == 36  # recorded under a UUID; the credential keeps its own id
    report = await verifier.verify_credential(issued.token, trust_for(signer), options())
    assert report.claims is not None
    assert report.claims["sub"] == "did:example:1"
    assert check(report, "freshness") == ("not_checked", None)
    with pytest.raises(InvalidRequest):
        await issuance.issue_document(
            {**document, "credentialSubject": [{"a": 1}]},
            fmt=CredentialFormat.SD_JWT_VC,
            template=None,
            key=issuance.IssuingKey(signer),
            issued_at=NOW,
            vct="urn:x",
        )
    with pytest.raises(InvalidRequest):
        await issuance.issue_document(
            {**document, "validFrom": "yesterday"},
            fmt=CredentialFormat.VC2_JOSE,
            template=None,
            key=issuance.IssuingKey(signer),
            issued_at=NOW,
        )


async def test_issue_refuses_a_subject_that_breaks_the_template() -> None:
    with pytest.raises(InvalidRequest) as raised:
        await issue(VC2, es256(), subject={"studentStatus": {}})
    assert raised.value.field == "credentialSubject"


async def test_a_dp_without_as_of_vouches_at_issuance_and_a_future_as_of_is_clamped() -> None:
    template = templates.latest("student_status")
    assert issuance.freshness_window(template, None, NOW) == (NOW, NOW + timedelta(days=30))
    later = NOW + timedelta(days=3)
    assert issuance.freshness_window(template, later, NOW)[0] == NOW
