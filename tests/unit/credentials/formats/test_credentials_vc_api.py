"""VC-API shapes: envelopes in, verification results and problem details out; edge rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from credentials_support import NOW, es256, issue, options, trust_for
from pavilion import jose
from pavilion.credentials import issuance, sd_jwt, vc2, vc_api, verifier
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.sd_jwt.encoding import digests_in
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.timeutil import numeric_date, parse_date_time_stamp, validity_check
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.errors import CryptoError, InvalidRequest
from pavilion.jose import sign_compact

V2 = "https://www.w3.org/ns/credentials/v2"


def _envelope(
    media: str, token: str, kind: str = "EnvelopedVerifiableCredential"
) -> dict[str, Any]:
    return {"@context": V2, "type": kind, "id": f"data:{media},{token}"}


def test_secured_forms_map_media_types_to_formats() -> None:
    assert vc_api.secured_form("a.b.c", field="vc") == ("a.b.c", None)
    assert vc_api.secured_form(_envelope("application/vc+jwt", "a.b.c"), field="vc") == (
        "a.b.c",
        CredentialFormat.VC2_JOSE,
    )
    assert vc_api.secured_form(_envelope("application/dc+sd-jwt", "a.b.c~"), field="vc")[1] is (
        CredentialFormat.SD_JWT_VC
    )
    # Only the media types registered for what an envelope holds (VC-JOSE-COSE, SD-JWT VC):
    # a VC 1.1 JWT is no VC 2.0 credential, and vc+sd-jwt is not an SD-JWT VC.
    for media_type, reason in (
        ("application/jwt", "send the compact JWT itself"),
        ("application/vc+sd-jwt", "application/dc\\+sd-jwt"),
    ):
        with pytest.raises(InvalidRequest, match=reason):
            vc_api.secured_form(_envelope(media_type, "a.b.c"), field="vc")
    with pytest.raises(InvalidRequest) as raised:
        vc_api.secured_form(_envelope("application/vp+jwt", "a.b.c"), field="vc")
    assert raised.value.field == "vc"
    with pytest.raises(InvalidRequest):
        vc_api.secured_form({"type": "VerifiableCredential"}, field="vc")


def test_presentations_are_vp_jwt_or_sd_jwt_with_key_binding() -> None:
    assert vc_api.secured_presentation("x~y", field="vp") == ("x~y", "sd-jwt")
    enveloped = _envelope("application/dc+sd-jwt", "a.b.c~kb", "EnvelopedVerifiablePresentation")
    assert vc_api.secured_presentation(enveloped, field="vp") == ("a.b.c~kb", "sd-jwt")
    # An SD-JWT+KB in a credential envelope is accepted too.
    assert vc_api.secured_presentation(_envelope("application/dc+sd-jwt", "a.b.c~kb"), field="vp")
    # VC-JOSE-COSE: a VC 2.0 presentation secured with JOSE, enveloped or by its typ.
    vp = _envelope("application/vp+jwt", "a.b.c", "EnvelopedVerifiablePresentation")
    assert vc_api.secured_presentation(vp, field="vp") == ("a.b.c", "vp+jwt")
    header = jose.b64url(b'{"alg":"ES256","typ":"vp+jwt"}')
    compact = f"{header}.{jose.b64url(b'{}')}.{jose.b64url(b'sig')}"
    assert vc_api.secured_presentation(compact, field="vp") == (compact, "vp+jwt")
    assert vc_api.secured_presentation("not.a.jws", field="vp")[1] == "sd-jwt"
    with pytest.raises(InvalidRequest, match="vp\\+jwt"):
        vc_api.secured_presentation(
            _envelope("application/vc+jwt", "a.b.c", "EnvelopedVerifiablePresentation"), field="vp"
        )
    with pytest.raises(InvalidRequest) as raised:
        vc_api.secured_presentation({"type": "VerifiablePresentation"}, field="vp")
    assert raised.value.field == "vp"


async def test_results_use_vc_data_model_error_types() -> None:
    signer = es256()
    garbage = await verifier.verify_credential("not-a-token", trust_for(signer), options())
    problems = vc_api.problem_details(garbage)
    assert problems[0]["type"] == "https://www.w3.org/TR/vc-data-model#PARSING_ERROR"
    issued = await issue(CredentialFormat.VC2_JOSE, signer)
    expired = await verifier.verify_credential(
        issued.token, trust_for(signer), options(now=NOW + timedelta(days=400))
    )
    types = {
        p["type"].rsplit("#", 1)[-1].rsplit("/", 1)[-1] for p in vc_api.problem_details(expired)
    }
    assert types == {"RANGE_ERROR", "credential-freshness"}
    result = vc_api.credential_result(expired)
    assert result["verified"] is False
    assert result["credential"]["type"] == ["VerifiableCredential", "StudentStatusCredential"]
    assert result["results"]["proof"][0]["valid"] is True
    assert result["results"]["template"] == "student_status@1"
    combined = vc_api.combined_result([expired], presentation={"type": "VerifiablePresentation"})
    assert combined["verified"] is False
    assert combined["verifiablePresentation"] == {"type": "VerifiablePresentation"}
    assert vc_api.combined_result([], presentation=None)["verified"] is False


def test_request_models_validate_holder_keys_and_options() -> None:
    holder = es256().public_jwk()
    request = vc_api.IssueRequest.model_validate(
        {"credential": {}, "options": {"format": "sd_jwt_vc", "holderJwk": holder}}
    )
    assert request.options.holderJwk == {k: holder[k] for k in ("kty", "crv", "x", "y")}
    with pytest.raises(ValidationError, match="PUBLIC"):
        vc_api.IssueRequest.model_validate(
            {"credential": {}, "options": {"holderJwk": {**holder, "d": "x"}}}
        )
    with pytest.raises(ValidationError, match="mandatoryPointers"):
        vc_api.IssueRequest.model_validate(
            {"credential": {}, "options": {"mandatoryPointers": ["/a"]}}
        )
    with pytest.raises(ValidationError):
        vc_api.VerifyCredentialRequest.model_validate(
            {"verifiableCredential": "x", "options": {"maxAge": 0}}
        )


def test_sd_jwt_edge_rules() -> None:
    with pytest.raises(ValueError, match="JWK object"):
        jose.holder_key("not a mapping")  # type: ignore[arg-type]
    nested = {"a": [{"_sd": ["d1"]}, [{"...": "d2"}]], "_sd": ["d0"]}
    assert sorted(digests_in(nested)) == ["d0", "d1", "d2"]
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["x"] = {}
        cursor = cursor["x"]
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.disclose(deep, [])
    assert raised.value.code == "too_deep"
    header = {"typ": "dc+sd-jwt"}
    for claims, code in [
        ({"vct": "v"}, "missing_iss"),
        ({"vct": "v", "iss": "i", "cnf": {"kid": "x"}}, "bad_cnf"),
        ({"vct": "v", "iss": "i", "status": []}, "bad_status"),
    ]:
        with pytest.raises(CheckFailed) as raised:
            sd_jwt.check_claims(header, claims, expected_vct=None)
        assert raised.value.code == code


async def test_selecting_nested_disclosures_keeps_their_children() -> None:
    issuer = es256()
    issued = await sd_jwt.issue(
        signer=issuer,
        issuer="https://i.example",
        vct="urn:v",
        claims={"a": {"b": [1, {"c": 2}]}, "z": 0},
        issued_at=NOW,
        valid_until=None,
    )
    selected = sd_jwt.select(issued.token.rstrip("~"), {"a"})
    parsed = sd_jwt.parse(selected)
    disclosed = sd_jwt.disclose(parsed.jws.claims(), parsed.disclosures)
    assert disclosed["a"] == {"b": [1, {"c": 2}]}
    assert "z" not in disclosed


async def test_a_key_binding_jwt_without_iat_is_refused() -> None:
    issuer, holder = es256(), es256()
    issued = await issue(CredentialFormat.SD_JWT_VC, issuer, holder=holder)
    presented = sd_jwt.select(issued.token)
    kb = await sign_compact(
        {"typ": "kb+jwt"}, {"aud": "a", "nonce": "n", "sd_hash": sd_jwt.sd_hash(presented)}, holder
    )
    parsed = sd_jwt.parse(presented + kb)
    claims = sd_jwt.disclose(parsed.jws.claims(), parsed.disclosures)
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.check_key_binding(parsed, claims, audience="a", nonce="n", now=NOW)
    assert raised.value.code == "kb_no_iat"


def test_time_rules() -> None:
    for bad in ("2026-02-30T00:00:00Z",):
        with pytest.raises(CheckFailed) as raised:
            parse_date_time_stamp(bad, "validFrom")
        assert raised.value.code == "bad_date_time"
    assert parse_date_time_stamp("2026-01-01T01:00:00+01:00", "x") == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    with pytest.raises(CheckFailed):
        numeric_date({"exp": 10**20}, "exp")
    with pytest.raises(CheckFailed):
        numeric_date({"exp": True}, "exp")
    assert numeric_date({}, "exp") is None
    open_ended = validity_check(None, None, NOW)
    assert open_ended.status.value == "pass"
    assert "no expiry" in open_ended.reason


def test_certificate_keys_must_be_p256_or_ed25519() -> None:
    class Weird:
        algorithm = "ES256"

        def public_jwk(self) -> dict[str, str]:
            return {"kty": "RSA"}

    with pytest.raises(CryptoError):
        trust_x509._public_key(Weird())  # type: ignore[arg-type]


async def test_certificate_helpers_on_unusual_certificates() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("https://x.example")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    assert trust_x509.describe(certificate) == "O=No CN"
    assert trust_x509.provider_of(certificate) is None
    with pytest.raises(CheckFailed) as raised:
        trust_x509.public_jwk_of_certificate(certificate)
    assert raised.value.code == "unsupported_certificate_key"


def test_record_ids_and_attestation_dates() -> None:
    assert len(issuance.record_id_of("urn:uuid:not-a-uuid")) == 36
    assert issuance.record_id_of("urn:uuid:7F1B2A4E-52A3-4A85-A2F4-1F6A3B9F7E10") == (
        "7f1b2a4e-52a3-4a85-a2f4-1f6a3b9f7e10"
    )
    assert issuance.evidence_as_of([{"type": "DataProviderAttestation", "asOf": "soon"}]) is None
    assert issuance.evidence_as_of({"type": "Other"}) is None
    assert issuance.default_valid_until(None, NOW) == NOW + timedelta(days=365)


def test_envelopes_round_trip_through_issued_credentials() -> None:
    issued = issuance.Issued(
        id="i",
        format=CredentialFormat.SD_JWT_VC,
        token="a.b.c~",
        key_id="k",
        valid_from=NOW,
        valid_until=NOW,
    )
    assert issued.media_type == "application/dc+sd-jwt"
    assert vc2.open_envelope(issued.envelope(), field="x") == ("application/dc+sd-jwt", "a.b.c~")
