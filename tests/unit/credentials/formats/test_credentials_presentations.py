"""VC 2.0 presentations secured with JOSE (vp+jwt), held to VC-JOSE-COSE and VC Data Model
2.0 section 4.13, and the holder binding of the credentials they carry."""

from __future__ import annotations

from typing import Any

import pytest

from credentials_support import NOW, STUDENT, es256, issue, options, trust_for
from pavilion.credentials import presentations, vc2, verifier
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.report import CheckName, CheckStatus
from pavilion.credentials.templates import CredentialFormat
from presentation_support import V2, Holder

AUDIENCE = "https://verifier.example"
NONCE = "n-0S6_WzA2Mj"
EXPECT = presentations.Expectations(audience=AUDIENCE, nonce=NONCE, now=NOW)
IAT = int(NOW.timestamp())


def _status(report: Any, name: CheckName) -> tuple[str, str | None]:
    check = report.get(name)
    assert check is not None, report.to_json()
    return check.status.value, check.code


async def _envelope_for(holder: Holder | None) -> dict[str, Any]:
    subject = {"id": holder.did, **STUDENT} if holder is not None else STUDENT
    issued = await issue(CredentialFormat.VC2_JOSE, es256(), subject=subject)
    return vc2.envelope(issued.token)


@pytest.mark.parametrize("make", [Holder.ed25519, Holder.p256], ids=["Ed25519", "P-256"])
async def test_a_vp_jwt_signed_by_its_holders_did_key_verifies(make: Any) -> None:
    holder = make()
    token = holder.present([await _envelope_for(holder)], iat=IAT)
    presented = await presentations.verify_vp_jwt(token, Resolver(), EXPECT)
    assert presented.verified, presented.report.to_json()
    assert presented.holder == holder.did
    assert presented.report.header is not None
    assert presented.report.header["typ"] == "vp+jwt"
    assert [path for path, _ in presented.credentials] == [
        "verifiablePresentation.verifiableCredential[0]"
    ]
    for name in (CheckName.SIGNATURE, CheckName.SCHEMA, CheckName.KEY_BINDING):
        assert _status(presented.report, name)[0] == "pass"


@pytest.mark.parametrize(
    ("header", "members", "check", "code"),
    [
        # VC-JOSE-COSE: typ vp+jwt (required here), cty vp when present.
        ({"typ": None}, {}, CheckName.SCHEMA, "bad_typ"),
        ({"typ": "JWT"}, {}, CheckName.SCHEMA, "bad_typ"),
        ({"typ": "vc+jwt"}, {}, CheckName.SCHEMA, "bad_typ"),
        ({"cty": "json"}, {}, CheckName.SCHEMA, "bad_cty"),
        # "kid MUST be present when the key of the holder is expressed as a DID URL".
        ({"kid": None}, {}, CheckName.SIGNATURE, "no_holder_key"),
        ({"kid": "https://holder.example/keys/1"}, {}, CheckName.SIGNATURE, "no_holder_key"),
        # "The JWT Claim Names vc and vp MUST NOT be present."
        ({}, {"vp": {"type": "VerifiablePresentation"}}, CheckName.SCHEMA, "jwt_vc_claim"),
        ({}, {"vc": {}}, CheckName.SCHEMA, "jwt_vc_claim"),
        # Secured by its JWS: not also by an embedded proof.
        ({}, {"proof": {"type": "DataIntegrityProof"}}, CheckName.SCHEMA, "embedded_proof"),
        # VC Data Model 2.0 4.13: type, id, holder, and credentials as objects.
        ({}, {"type": ["Presentation"]}, CheckName.SCHEMA, "data_model"),
        ({}, {"id": "not a url"}, CheckName.SCHEMA, "data_model"),
        ({}, {"holder": {"name": "no id"}}, CheckName.SCHEMA, "data_model"),
        (
            {},
            {"@context": ["https://www.w3.org/2018/credentials/v1"]},
            CheckName.SCHEMA,
            "data_model",
        ),
        ({}, {"verifiableCredential": ["eyJhbGciOi.x.y"]}, CheckName.SCHEMA, "data_model"),
        ({}, {"unknownTerm": 1}, CheckName.SCHEMA, "data_model"),
        # A holder is the controller of the key that signed; iss, when present, the holder.
        ({}, {"holder": "did:example:someone-else"}, CheckName.KEY_BINDING, "holder_key_mismatch"),
        ({}, {"iss": "did:example:someone-else"}, CheckName.SCHEMA, "iss_mismatch"),
        # Bound to this verification: aud names the domain, nonce is the challenge.
        ({}, {"aud": "https://other.example"}, CheckName.KEY_BINDING, "vp_wrong_audience"),
        ({}, {"aud": None}, CheckName.KEY_BINDING, "vp_wrong_audience"),
        ({}, {"nonce": "replayed"}, CheckName.KEY_BINDING, "vp_wrong_nonce"),
        ({}, {"nonce": None}, CheckName.KEY_BINDING, "vp_wrong_nonce"),
        # iat and exp time the signature (VC-JOSE-COSE).
        ({}, {"iat": IAT - 3600}, CheckName.VALIDITY, "vp_too_old"),
        ({}, {"iat": IAT + 3600}, CheckName.VALIDITY, "not_yet_valid"),
        ({}, {"exp": IAT - 3600}, CheckName.VALIDITY, "expired"),
        ({}, {"iat": "yesterday"}, CheckName.VALIDITY, "bad_numeric_date"),
    ],
)
async def test_presentations_breaking_the_rules_fail_the_named_check(
    header: dict[str, Any], members: dict[str, Any], check: CheckName, code: str
) -> None:
    holder = Holder.ed25519()
    token = holder.present([await _envelope_for(holder)], header=header, **{"iat": IAT, **members})
    presented = await presentations.verify_vp_jwt(token, Resolver(), EXPECT)
    assert not presented.verified
    assert _status(presented.report, check) == ("fail", code)


async def test_an_audience_list_naming_the_verifier_is_accepted() -> None:
    holder = Holder.p256()
    token = holder.present([], aud=["https://a.example", AUDIENCE], iat=IAT)
    presented = await presentations.verify_vp_jwt(token, Resolver(), EXPECT)
    assert presented.verified, presented.report.to_json()


async def test_credentials_in_a_vp_jwt_must_be_enveloped() -> None:
    """VC-JOSE-COSE: credentials secured in presentations MUST use the Enveloped Verifiable
    Credential type; an unsecured (or embedded-proof) credential object is refused."""
    holder = Holder.ed25519()
    unsecured = {
        "@context": [V2],
        "type": ["VerifiableCredential"],
        "issuer": "https://issuer.example",
        "credentialSubject": {"id": holder.did, "name": "x"},
    }
    token = holder.present([unsecured], iat=IAT)
    presented = await presentations.verify_vp_jwt(token, Resolver(), EXPECT)
    assert _status(presented.report, CheckName.SCHEMA) == ("fail", "not_enveloped")


async def test_a_signature_by_another_key_than_the_kid_fails() -> None:
    holder, thief = Holder.ed25519(), Holder.ed25519()
    token = thief.present([], header={"kid": holder.kid}, holder=holder.did, iat=IAT)
    presented = await presentations.verify_vp_jwt(token, Resolver(), EXPECT)
    assert _status(presented.report, CheckName.SIGNATURE)[0] == "fail"
    assert presented.holder is None
    assert _status(presented.report, CheckName.KEY_BINDING)[0] == "not_checked"


async def test_a_did_web_holder_must_list_its_key_for_authentication() -> None:
    holder = Holder.p256()
    did = "did:web:holder.example"
    method = {"id": f"{did}#key-1", "type": "JsonWebKey", "controller": did}
    method["publicKeyJwk"] = holder.public_jwk()  # type: ignore[assignment]
    documents: dict[str, Any] = {}

    async def fetch(url: str) -> Any:
        assert url == "https://holder.example/.well-known/did.json"
        return documents["current"]

    resolver = Resolver(did_web=fetch)
    token = holder.present([], header={"kid": f"{did}#key-1"}, holder=did, iat=IAT)
    documents["current"] = {
        "id": did,
        "verificationMethod": [method],
        "assertionMethod": ["#key-1"],
    }
    refused = await presentations.verify_vp_jwt(token, resolver, EXPECT)
    assert _status(refused.report, CheckName.SIGNATURE) == ("fail", "not_for_authentication")
    documents["current"] = {"id": did, "verificationMethod": [method], "authentication": ["#key-1"]}
    accepted = await presentations.verify_vp_jwt(token, resolver, EXPECT)
    assert accepted.verified, accepted.report.to_json()
    assert accepted.holder == did


async def test_holder_binding_of_each_credential() -> None:
    """A credential bound to the holder passes; bound to someone else fails; a bearer
    credential (no subject id, no cnf) is not checked."""
    holder, other = Holder.ed25519(), Holder.ed25519()
    signer = es256()
    trust = trust_for(signer)

    async def verified(fmt: CredentialFormat, subject: dict[str, Any], jwk: Any = None) -> Any:
        issued = await issue(fmt, signer, subject=subject, holder=jwk)
        return await verifier.verify_credential(issued.token, trust, options())

    def binding(report: Any) -> tuple[str, str | None]:
        check = presentations.holder_binding(report, holder.did, holder.public_jwk())
        return check.status.value, check.code

    vc2_mine = await verified(CredentialFormat.VC2_JOSE, {"id": holder.did, **STUDENT})
    vc2_theirs = await verified(CredentialFormat.VC2_JOSE, {"id": other.did, **STUDENT})
    bearer = await verified(CredentialFormat.VC2_JOSE, STUDENT)
    assert binding(vc2_mine) == ("pass", None)
    assert binding(vc2_theirs) == ("fail", "holder_not_subject")
    assert binding(bearer)[0] == CheckStatus.NOT_CHECKED.value
    sd_mine = await verified(CredentialFormat.SD_JWT_VC, STUDENT, _KeyOf(holder))
    sd_theirs = await verified(CredentialFormat.SD_JWT_VC, STUDENT, _KeyOf(other))
    assert binding(sd_mine) == ("pass", None)
    assert binding(sd_theirs) == ("fail", "holder_not_bound")
    nobody = presentations.holder_binding(vc2_mine, None, None)
    assert nobody.status is CheckStatus.NOT_CHECKED


class _KeyOf:
    """What ``issue(holder=...)`` reads: an object with ``public_jwk()``."""

    def __init__(self, holder: Holder) -> None:
        self._holder = holder

    def public_jwk(self) -> dict[str, str]:
        return self._holder.public_jwk()
