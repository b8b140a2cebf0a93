"""SD-JWT VC: our issuer and verifier against the reference sd-jwt library (the oracle).

The oracle (``sd_jwt`` 0.10.4) checks our issuance and makes presentations our verifier must
accept; then the attacks the oracle does not catch (typ, vct, expiry, the KB-JWT iat window)
and the ones it does (tampered or duplicated disclosures, wrong audience or nonce) are
refused by ours, each with its own reason.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from credentials_support import (
    AGE,
    ISSUER,
    NOW,
    check,
    decode_part,
    eddsa,
    encode_part,
    es256,
    issue,
    jwcrypto_key,
    options,
    resign,
    trust_for,
)
from pavilion import jose
from pavilion.credentials import sd_jwt, verifier
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.templates import CredentialFormat
from pavilion.errors import InvalidRequest
from pavilion.jose import b64url, b64url_decode

SD = CredentialFormat.SD_JWT_VC
AUD = "https://verifier.example"
NONCE = "nonce-7f3a"


def _oracle_verify(
    token: str, issuer_key: JWK, *, aud: str | None = None, nonce: str | None = None
) -> dict[str, Any]:
    verifier_ = SDJWTVerifier(token, lambda iss, header: issuer_key, aud, nonce)
    payload: dict[str, Any] = verifier_.get_verified_payload()
    return payload


async def test_the_reference_library_verifies_our_sd_jwt_vc_and_sees_every_claim() -> None:
    issuer, holder = es256(), es256()
    issued = await issue(SD, issuer, holder=holder)
    header = decode_part(issued.token.split(".")[0])
    assert header["typ"] == "dc+sd-jwt"
    payload = _oracle_verify(issued.token, jwcrypto_key(issuer))
    assert payload["student_status"] == {"current": True}
    assert payload["vct"] == "https://pavilion.example/vct/student-status/v1"
    assert payload["iss"] == ISSUER
    assert payload["cnf"]["jwk"] == holder.public_jwk()
    assert payload["evidence"][0]["type"] == "DataProviderAttestation"
    # Nothing of the subject is readable without the disclosures.
    signed = decode_part(issued.token.split("~")[0].split(".")[1])
    assert "student_status" not in signed
    assert signed["_sd_alg"] == "sha-256"
    assert len(signed["_sd"]) == 1


async def test_every_nested_claim_is_its_own_disclosure() -> None:
    issued = await issue(SD, es256(), claim_type="age_over", subject=AGE)
    disclosures = issued.token.split("~")[1:-1]
    decoded = [json.loads(b64url_decode(d)) for d in disclosures]
    names = sorted(d[1] for d in decoded)
    assert names == ["18", "age_equal_or_over"]
    assert all(len(d[0]) >= 22 for d in decoded)  # 128-bit salts


async def test_oracle_presentations_with_key_binding_pass_our_verifier() -> None:
    issuer, holder_signer = es256(), es256()
    # The oracle stamps its Key-Binding JWT with the wall clock: issue on the wall clock too.
    issued = await issue(SD, issuer, holder=holder_signer, now=datetime.now(UTC))
    holder = SDJWTHolder(issued.token)
    holder.create_presentation(
        {"student_status": {"current": True}},
        nonce=NONCE,
        aud=AUD,
        holder_key=JWK.from_pyca(holder_signer._key),
        sign_alg="ES256",
    )
    presentation = holder.sd_jwt_presentation
    report = await verifier.verify_credential(
        presentation,
        trust_for(issuer),
        options(now=_now_of(presentation), audience=AUD, nonce=NONCE),
        presentation=True,
    )
    assert report.verified, report.to_json()
    assert report.claims is not None
    assert report.claims["student_status"] == {"current": True}


def _now_of(presentation: str) -> datetime:
    kb = decode_part(presentation.rsplit("~", maxsplit=1)[-1].split(".")[1])
    return datetime.fromtimestamp(kb["iat"], UTC)


async def test_our_presentations_pass_the_oracle_with_partial_disclosure() -> None:
    issuer, holder = es256(), es256()
    issued = await sd_jwt.issue(
        signer=issuer,
        issuer=ISSUER,
        vct="urn:example:club-membership",
        claims={"membership": {"group": "chess club", "member": True}, "nickname": "Ann"},
        issued_at=NOW,
        valid_until=NOW + timedelta(days=30),
        holder_jwk=holder.public_jwk(),
        decoys=3,
    )
    presentation = await sd_jwt.present(
        issued.token, holder=holder, audience=AUD, nonce=NONCE, issued_at=NOW, reveal={"membership"}
    )
    payload = _oracle_verify(presentation, jwcrypto_key(issuer), aud=AUD, nonce=NONCE)
    assert payload["membership"] == {"group": "chess club", "member": True}
    assert "nickname" not in payload
    report = await verifier.verify_credential(
        presentation, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert report.verified, report.to_json()
    assert report.claims is not None
    assert "nickname" not in report.claims
    # 2 real top-level digests + 3 decoys
    assert len(issued.payload["_sd"]) == 5


async def test_arrays_are_disclosed_element_by_element_and_the_oracle_agrees() -> None:
    issuer = es256()
    issued = await sd_jwt.issue(
        signer=issuer,
        issuer=ISSUER,
        vct="urn:example:vct",
        claims={"groups": ["a", {"b": 1}]},
        issued_at=NOW,
        valid_until=None,
    )
    assert _oracle_verify(issued.token, jwcrypto_key(issuer))["groups"] == ["a", {"b": 1}]
    parsed = sd_jwt.parse(issued.token)
    assert sd_jwt.disclose(parsed.jws.claims(), parsed.disclosures)["groups"] == ["a", {"b": 1}]
    # Withholding one element hides it (and only it).
    element = next(d for d in parsed.disclosures if json.loads(b64url_decode(d))[1] == "a")
    rest = [d for d in parsed.disclosures if d != element]
    assert sd_jwt.disclose(parsed.jws.claims(), rest)["groups"] == [{"b": 1}]


async def test_the_rfc_9901_disclosure_digest_vector() -> None:
    # RFC 9901 section 5.1 example: the family_name disclosure and its SHA-256 digest.
    disclosure = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    assert json.loads(b64url_decode(disclosure)) == [
        "_26bc4LT-ac6q2KI6cBW5es",
        "family_name",
        "Möbius",
    ]
    assert sd_jwt.digest_of(disclosure) == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"


# -- attacks the oracle catches too ------------------------------------------------------------


async def _issued_with_holder() -> tuple[Any, Any, Any]:
    issuer, holder = es256(), es256()
    issued = await issue(SD, issuer, holder=holder, claim_type="age_over", subject=AGE)
    return issuer, holder, issued


async def test_a_tampered_disclosure_is_unreferenced_and_refused() -> None:
    issuer, _, issued = await _issued_with_holder()
    jwt_part, *disclosures, _ = issued.token.split("~")
    salt, name, value = json.loads(b64url_decode(disclosures[0]))
    tampered = b64url(
        json.dumps([salt, name, not value if isinstance(value, bool) else value]).encode()
    )
    if tampered == disclosures[0]:
        tampered = b64url(json.dumps([salt + "x", name, value]).encode())
    token = "~".join([jwt_part, tampered, *disclosures[1:]]) + "~"
    report = await verifier.verify_credential(token, trust_for(issuer), options())
    assert check(report, "disclosures") == ("fail", "unreferenced_disclosure")
    assert not report.verified
    assert report.claims is None


async def test_a_duplicated_disclosure_is_refused() -> None:
    issuer, _, issued = await _issued_with_holder()
    jwt_part, *disclosures, _ = issued.token.split("~")
    token = "~".join([jwt_part, *disclosures, disclosures[0]]) + "~"
    report = await verifier.verify_credential(token, trust_for(issuer), options())
    assert check(report, "disclosures") == ("fail", "duplicate_disclosure")


async def test_a_disclosure_from_another_credential_is_refused() -> None:
    issuer, _, issued = await _issued_with_holder()
    other = await issue(
        SD, issuer, claim_type="age_over", subject={"ageOver": {"threshold": 21, "over": True}}
    )
    jwt_part, *disclosures, _ = issued.token.split("~")
    token = "~".join([jwt_part, *disclosures, other.token.split("~")[-2]]) + "~"
    report = await verifier.verify_credential(token, trust_for(issuer), options())
    assert check(report, "disclosures") == ("fail", "unreferenced_disclosure")


@pytest.mark.parametrize(
    ("audience", "nonce", "code"),
    [("https://other.example", NONCE, "kb_wrong_audience"), (AUD, "another", "kb_wrong_nonce")],
)
async def test_a_key_binding_jwt_for_another_audience_or_nonce_is_refused(
    audience: str, nonce: str, code: str
) -> None:
    issuer, holder, issued = await _issued_with_holder()
    presentation = await sd_jwt.present(
        issued.token, holder=holder, audience=audience, nonce=nonce, issued_at=NOW
    )
    report = await verifier.verify_credential(
        presentation, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert check(report, "key_binding") == ("fail", code)
    with pytest.raises(ValueError, match="Invalid"):  # the oracle refuses it too
        _oracle_verify(presentation, jwcrypto_key(issuer), aud=AUD, nonce=NONCE)


# -- what the reference library leaves out --------------------------------------------------


async def test_expired_and_not_yet_valid_credentials_are_refused_though_the_oracle_accepts() -> (
    None
):
    issuer, _, issued = await _issued_with_holder()
    _oracle_verify(issued.token, jwcrypto_key(issuer))  # the oracle has no clock
    late = await verifier.verify_credential(
        issued.token, trust_for(issuer), options(now=NOW + timedelta(days=400))
    )
    assert check(late, "validity") == ("fail", "expired")
    early = await verifier.verify_credential(
        issued.token, trust_for(issuer), options(now=NOW - timedelta(hours=1))
    )
    assert check(early, "validity") == ("fail", "not_yet_valid")


async def test_a_wrong_typ_is_refused_though_the_oracle_accepts() -> None:
    issuer = es256()
    oracle_issuer = SDJWTIssuer(
        {"iss": ISSUER, "vct": "urn:example:vct", SDObj("given_name"): "Ann"},
        JWK.from_pyca(issuer._key),
        extra_header_parameters={"kid": issuer.key_id},
    )
    token = oracle_issuer.sd_jwt_issuance
    assert decode_part(token.split(".")[0])["typ"] == "example+sd-jwt"
    _oracle_verify(token, jwcrypto_key(issuer))
    report = await verifier.verify_credential(token, trust_for(issuer), options())
    assert check(report, "schema") == ("fail", "bad_typ")


async def test_a_missing_or_unexpected_vct_is_refused() -> None:
    issuer = es256()
    header = {"alg": "ES256", "kid": issuer.key_id, "typ": "dc+sd-jwt"}
    payload = {"iss": ISSUER, "iat": int(NOW.timestamp()), "_sd": [], "_sd_alg": "sha-256"}
    token = await resign(header, payload, issuer) + "~"
    report = await verifier.verify_credential(token, trust_for(issuer), options())
    assert check(report, "schema") == ("fail", "missing_vct")
    issued = await issue(SD, issuer)
    strict = await verifier.verify_credential(
        issued.token, trust_for(issuer), options(expected_vct={"urn:other"})
    )
    assert check(strict, "schema") == ("fail", "unexpected_vct")


@pytest.mark.parametrize(
    ("shift", "code"),
    [(timedelta(minutes=10), "kb_too_old"), (timedelta(minutes=-10), "kb_in_future")],
)
async def test_the_key_binding_iat_window_is_enforced(shift: timedelta, code: str) -> None:
    issuer, holder, issued = await _issued_with_holder()
    presentation = await sd_jwt.present(
        issued.token, holder=holder, audience=AUD, nonce=NONCE, issued_at=NOW
    )
    report = await verifier.verify_credential(
        presentation,
        trust_for(issuer),
        options(now=NOW + shift, audience=AUD, nonce=NONCE),
        presentation=True,
    )
    assert check(report, "key_binding") == ("fail", code)


async def test_sd_hash_binds_the_presented_disclosures() -> None:
    issuer, holder, issued = await _issued_with_holder()
    presentation = await sd_jwt.present(
        issued.token, holder=holder, audience=AUD, nonce=NONCE, issued_at=NOW
    )
    parts = presentation.split("~")
    stripped = "~".join([parts[0], *parts[2:]])  # one disclosure dropped after signing the KB-JWT
    report = await verifier.verify_credential(
        stripped, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert check(report, "key_binding") == ("fail", "kb_sd_hash_mismatch")


async def test_a_key_binding_jwt_signed_by_another_key_or_typed_wrong_is_refused() -> None:
    issuer, _, issued = await _issued_with_holder()
    thief = es256()
    stolen = await sd_jwt.present(
        issued.token, holder=thief, audience=AUD, nonce=NONCE, issued_at=NOW
    )
    report = await verifier.verify_credential(
        stolen, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert check(report, "key_binding") == ("fail", "bad_signature")

    _, holder, issued = await _issued_with_holder()
    presented = sd_jwt.select(issued.token)
    kb = await resign(
        {"alg": "ES256", "typ": "JWT"},
        {
            "iat": int(NOW.timestamp()),
            "aud": AUD,
            "nonce": NONCE,
            "sd_hash": sd_jwt.sd_hash(presented),
        },
        holder,
    )
    parsed = sd_jwt.parse(presented + kb)
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.check_key_binding(
            parsed,
            sd_jwt.disclose(parsed.jws.claims(), parsed.disclosures),
            audience=AUD,
            nonce=NONCE,
            now=NOW,
        )
    assert raised.value.code == "kb_typ"


async def test_a_presentation_without_key_binding_or_holder_key_is_refused() -> None:
    issuer, _, issued = await _issued_with_holder()
    report = await verifier.verify_credential(
        issued.token, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert check(report, "key_binding") == ("fail", "kb_missing")
    unbound = await issue(SD, issuer)
    holder = es256()
    presentation = await sd_jwt.present(
        unbound.token, holder=holder, audience=AUD, nonce=NONCE, issued_at=NOW
    )
    report = await verifier.verify_credential(
        presentation, trust_for(issuer), options(audience=AUD, nonce=NONCE), presentation=True
    )
    assert check(report, "key_binding") == ("fail", "no_holder_key")
    expectations = await verifier.verify_credential(
        presentation, trust_for(issuer), options(), presentation=True
    )
    assert check(expectations, "key_binding") == ("fail", "kb_expectations_missing")


async def test_a_credential_with_a_kb_jwt_but_no_expectations_reports_it_unchecked() -> None:
    issuer, holder, issued = await _issued_with_holder()
    presentation = await sd_jwt.present(
        issued.token, holder=holder, audience=AUD, nonce=NONCE, issued_at=NOW
    )
    report = await verifier.verify_credential(presentation, trust_for(issuer), options())
    assert check(report, "key_binding") == ("not_checked", None)
    assert report.verified


# -- the processing rules, one by one ----------------------------------------------------------


def _disclosure(*items: Any) -> str:
    return b64url(json.dumps(list(items)).encode())


@pytest.mark.parametrize(
    ("payload", "disclosures", "code"),
    [
        ({"_sd_alg": "sha-512", "_sd": []}, [], "unsupported_sd_alg"),
        ({"_sd": "x"}, [], "malformed_digest"),
        ({"_sd": [1]}, [], "malformed_digest"),
        ({"_sd": ["d", "d"]}, [], "duplicate_digest"),
        ({"a": 1, "_sd": ["<0>"]}, [["s", "a", 2]], "claim_overwrite"),
        ({"_sd": ["<0>"]}, [["s", "x"]], "wrong_disclosure_kind"),
        ({"list": [{"...": "<0>"}]}, [["s", "x", 1]], "wrong_disclosure_kind"),
        ({"_sd": ["<0>"]}, [["s", "iss", "https://evil"]], "forbidden_disclosure"),
    ],
)
def test_processing_rules_refuse_malformed_structures(
    payload: dict[str, Any], disclosures: list[list[Any]], code: str
) -> None:
    encoded = [_disclosure(*d) for d in disclosures]
    text = json.dumps(payload)
    for index, item in enumerate(encoded):
        text = text.replace(f"<{index}>", sd_jwt.digest_of(item))
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.disclose(json.loads(text), encoded)
    assert raised.value.code == code


@pytest.mark.parametrize(
    "disclosure",
    [
        b64url(b"not json"),
        _disclosure("only-salt"),
        _disclosure("s", "_sd", 1),
        _disclosure("s", 5, 1),
        _disclosure(1, "name", 1),
        "abcde",
    ],
)
def test_malformed_disclosures_are_refused(disclosure: str) -> None:
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.disclose({"_sd": [sd_jwt.digest_of(disclosure)]}, [disclosure])
    assert raised.value.check is CheckName.DISCLOSURES


def test_parse_refuses_what_is_not_an_sd_jwt() -> None:
    for token in ("a.b.c", 42):
        with pytest.raises(CheckFailed) as raised:
            sd_jwt.parse(token)
        assert raised.value.code == "malformed_sd_jwt"
    with pytest.raises(CheckFailed) as raised:
        sd_jwt.parse("a.b.c~!!~")
    assert raised.value.code == "malformed_disclosure"


def test_the_issuer_refuses_reserved_and_never_disclosable_claims() -> None:
    with pytest.raises(InvalidRequest) as raised:
        sd_jwt.build_payload(visible={}, disclosable={"exp": 1})
    assert raised.value.field == "exp"
    with pytest.raises(InvalidRequest):
        sd_jwt.build_payload(visible={"a": 1}, disclosable={"a": 2})
    with pytest.raises(InvalidRequest):
        sd_jwt.build_payload(visible={}, disclosable={"_sd": 2})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "n": "x", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" * 31)},
        {"kty": "EC", "crv": "P-256"},
    ],
)
def test_holder_keys_must_be_public_keys_on_the_curve(jwk: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"must be|not a valid"):
        jose.holder_key(jwk)


def test_holder_keys_are_reduced_to_their_public_members() -> None:
    holder = es256()
    jwk = holder.public_jwk()
    assert jose.holder_key(jwk) == {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    with pytest.raises(ValueError, match="PUBLIC"):
        jose.holder_key({**jwk, "d": "secret"})
    ed = eddsa().public_jwk()
    assert jose.holder_key(ed) == {"kty": "OKP", "crv": "Ed25519", "x": ed["x"]}


def test_sd_hash_is_sha256_over_the_presented_form() -> None:
    assert sd_jwt.sd_hash("a.b.c~d~") == b64url(hashlib.sha256(b"a.b.c~d~").digest())


def test_tokens_round_trip_through_encode_helpers() -> None:
    assert decode_part(encode_part({"a": 1})) == {"a": 1}
