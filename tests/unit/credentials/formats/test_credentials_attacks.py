"""Hostile tokens against every format: each refused before any key is trusted, with a reason."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from credentials_support import (
    NOW,
    check,
    encode_part,
    es256,
    issue,
    make_chain,
    options,
    resign,
    split_jws,
    trust_for,
)
from pavilion.credentials import verifier
from pavilion.credentials.jws import parse_compact, verify_with_jwk
from pavilion.credentials.report import CheckFailed
from pavilion.credentials.templates import CredentialFormat
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.jose import b64url

FORMATS = list(CredentialFormat)


def _jwt_of(token: str) -> tuple[str, str]:
    """(issuer JWT, the SD-JWT tail after it, empty for plain JWTs)."""
    head, sep, tail = token.partition("~")
    return head, sep + tail


@pytest.mark.parametrize("fmt", FORMATS)
async def test_alg_none_is_refused(fmt: CredentialFormat) -> None:
    signer = es256()
    issued = await issue(fmt, signer)
    jwt, tail = _jwt_of(issued.token)
    header, payload, _ = split_jws(jwt)
    for alg in ("none", "None", "NONE"):
        unsigned = f"{encode_part({**header, 'alg': alg})}.{encode_part(payload)}." + tail
        report = await verifier.verify_credential(unsigned, trust_for(signer), options())
        assert check(report, "signature") == ("fail", "alg_none")
        assert not report.verified
        assert report.claims is None


@pytest.mark.parametrize("fmt", FORMATS)
async def test_hs256_with_the_public_key_as_the_secret_is_refused(fmt: CredentialFormat) -> None:
    signer = es256()
    issued = await issue(fmt, signer)
    jwt, tail = _jwt_of(issued.token)
    header, payload, _ = split_jws(jwt)
    signing_input = f"{encode_part({**header, 'alg': 'HS256'})}.{encode_part(payload)}"
    public_pem = signer._key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64url(mac)}{tail}"
    report = await verifier.verify_credential(forged, trust_for(signer), options())
    assert check(report, "signature") == ("fail", "alg_not_allowed")
    assert "HS256" in report.failures()[0].reason


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_swapped_kid_is_refused(fmt: CredentialFormat) -> None:
    """Signed by the attacker, kid pointing at the issuer's key: the signature fails."""
    issuer, attacker = es256(), es256()
    issued = await issue(fmt, attacker)
    jwt, tail = _jwt_of(issued.token)
    header, payload, _ = split_jws(jwt)
    swapped = await resign({**header, "kid": issuer.key_id}, payload, attacker) + tail
    report = await verifier.verify_credential(swapped, trust_for(issuer), options())
    assert check(report, "signature") == ("fail", "bad_signature")
    # and the genuine token with its kid edited to another trusted key fails too
    other = es256()
    genuine = await issue(fmt, issuer)
    jwt, tail = _jwt_of(genuine.token)
    _, p, s = jwt.split(".")
    header = split_jws(jwt)[0]
    edited = f"{encode_part({**header, 'kid': other.key_id})}.{p}.{s}{tail}"
    report = await verifier.verify_credential(edited, trust_for(issuer, other), options())
    assert check(report, "signature") == ("fail", "bad_signature")


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_unknown_or_missing_kid_is_refused(fmt: CredentialFormat) -> None:
    stranger = es256()
    issued = await issue(fmt, stranger)
    report = await verifier.verify_credential(issued.token, trust_for(es256()), options())
    assert check(report, "signature") == ("fail", "unknown_kid")
    jwt, tail = _jwt_of(issued.token)
    header, payload, _ = split_jws(jwt)
    anonymous = await resign({k: v for k, v in header.items() if k != "kid"}, payload, stranger)
    report = await verifier.verify_credential(anonymous + tail, trust_for(stranger), options())
    assert check(report, "signature") == ("fail", "no_key_id")


async def test_a_kid_that_is_not_the_x5c_key_is_refused() -> None:
    _, root, dp, leaf = await make_chain()
    issued = await issue(CredentialFormat.VC2_JOSE, dp, x5c=(trust_x509.to_x5c(leaf),))
    header, payload, _ = split_jws(issued.token)
    other = es256()
    token = await resign({**header, "kid": other.key_id}, payload, dp)
    report = await verifier.verify_credential(
        token,
        verifier.TrustContext(jwks={other.key_id: other.public_jwk()}, anchors=[root]),
        options(),
    )
    assert check(report, "signature") == ("fail", "kid_mismatch")


async def test_a_self_made_certificate_does_not_make_a_key_trusted() -> None:
    """An attacker's own root in x5c: the signature checks out, the chain does not."""
    _, _, attacker_dp, attacker_leaf = await make_chain()
    _, real_root, _, _ = await make_chain()
    issued = await issue(
        CredentialFormat.SD_JWT_VC, attacker_dp, x5c=(trust_x509.to_x5c(attacker_leaf),)
    )
    report = await verifier.verify_credential(
        issued.token, verifier.TrustContext(anchors=[real_root]), options()
    )
    assert check(report, "signature")[0] == "pass"
    assert check(report, "chain") == ("fail", "unknown_root")
    assert not report.verified
    nothing = await verifier.verify_credential(issued.token, verifier.TrustContext(), options())
    assert check(nothing, "chain") == ("fail", "no_trust_anchors")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"alg": "RS256"}, "alg_not_allowed"),
        ({"alg": "ES384"}, "alg_not_allowed"),
        ({"typ": "vc+jwt"}, "missing_alg"),
        ({"alg": "ES256", "crit": ["b64"], "b64": False}, "crit_unsupported"),
    ],
)
def test_headers_we_never_accept(header: dict[str, Any], code: str) -> None:
    token = f"{encode_part(header)}.{encode_part({'a': 1})}.{b64url(b'x' * 64)}"
    with pytest.raises(CheckFailed) as raised:
        parse_compact(token)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("only.two", "malformed_jws"),
        ("a.b.c.d", "malformed_jws"),
        ("!!.b.c", "malformed_jws"),
        (f"{b64url(b'[1]')}.e30.", "malformed_header"),
        (f"{b64url(b'{nope')}.e30.", "malformed_header"),
        (b64url(b'{"alg":"ES256","alg":"none"}') + ".e30.", "malformed_header"),
        (b64url(b'{"alg":"ES256"}') + "." + b64url(b"[1]") + ".", "payload_not_object"),
    ],
)
def test_malformed_tokens_are_refused(token: str, code: str) -> None:
    with pytest.raises(CheckFailed) as raised:
        parse_compact(token).claims()
    assert raised.value.code == code


async def test_garbage_never_raises_out_of_the_verifier() -> None:
    for garbage in ("", "not a token", "a.b.c", "x~y~", "e30.e30.e30"):
        report = await verifier.verify_credential(garbage, trust_for(es256()), options())
        assert not report.verified
        assert report.failures()
        assert all(c.reason for c in report.checks)


def test_key_type_must_fit_the_algorithm_and_be_public() -> None:
    signer = es256()
    parsed = parse_compact(f"{encode_part({'alg': 'EdDSA', 'kid': 'k'})}.e30.{b64url(b'x' * 64)}")
    with pytest.raises(CheckFailed) as raised:
        verify_with_jwk(parsed, signer.public_jwk())
    assert raised.value.code == "key_alg_mismatch"
    with pytest.raises(CheckFailed) as raised:
        verify_with_jwk(parsed, {**signer.public_jwk(), "d": "x"})
    assert raised.value.code == "private_key"


async def test_a_payload_edited_after_signing_fails_the_signature() -> None:
    signer = es256()
    issued = await issue(CredentialFormat.JWT_VC, signer)
    header, _, signature = issued.token.split(".")
    claims = split_jws(issued.token)[1]
    claims["exp"] = int(NOW.timestamp()) + 10**8
    forged = f"{header}.{encode_part(claims)}.{signature}"
    report = await verifier.verify_credential(forged, trust_for(signer), options())
    assert check(report, "signature") == ("fail", "bad_signature")
