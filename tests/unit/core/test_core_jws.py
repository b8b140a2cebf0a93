"""Compact JWS over a Signer, checked by joserfc and PyJWT, and hostile tokens refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from jose_support import pyjwk
from pavilion.credentials.jwt_vc import issue_jwt_vc
from pavilion.errors import VerificationFailed
from pavilion.jose import (
    b64url,
    b64url_decode,
    b64url_decode_canonical,
    sign_compact,
    verify_compact,
)
from pavilion.keystore.software import SoftwareKeystore


@pytest.fixture
def keystore(tmp_path: Path) -> SoftwareKeystore:
    return SoftwareKeystore.open(tmp_path)


async def test_jwt_vc_verifies_with_pyjwt_and_joserfc(keystore: SoftwareKeystore) -> None:
    now = datetime.now(UTC)
    issued = await issue_jwt_vc(
        signer=keystore.signer("credential-signing"),
        issuer="https://connector.example",
        claim_type="age_over",
        subject_claims={"ageOver": {"threshold": 18, "over": True}},
        issued_at=now,
        ttl=timedelta(hours=1),
        evidence={"type": "DataProviderAttestation"},
    )
    jwks = {"keys": keystore.public_jwks()}
    header, payload = verify_compact(issued.token, jwks)
    assert header == {"typ": "JWT", "alg": "ES256", "kid": issued.key_id}
    assert payload["jti"] == f"urn:uuid:{issued.id}"
    decoded = jwt.decode(issued.token, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["ES256"])
    assert decoded["exp"] - decoded["iat"] == 3600
    assert decoded["vc"]["type"][1] == "AgeOverCredential"


async def test_tampered_none_and_hmac_tokens_are_refused(keystore: SoftwareKeystore) -> None:
    signer = keystore.signer("credential-signing")
    jwks = {"keys": keystore.public_jwks()}
    token = await sign_compact({"typ": "JWT"}, {"sub": "a"}, signer)
    header, payload, signature = token.split(".")
    forged_payload = b64url(json.dumps({"sub": "b"}).encode())
    with pytest.raises(VerificationFailed):
        verify_compact(f"{header}.{forged_payload}.{signature}", jwks)
    none_header = b64url(json.dumps({"alg": "none", "kid": signer.key_id}).encode())
    with pytest.raises(VerificationFailed):
        verify_compact(f"{none_header}.{payload}.", jwks)
    # HS256 "signed" with the public key as the secret: the classic key-confusion attack.
    hs_header = b64url(json.dumps({"alg": "HS256", "kid": signer.key_id}).encode())
    secret = json.dumps(jwks["keys"][0]).encode()
    mac = hmac.new(secret, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(VerificationFailed):
        verify_compact(f"{hs_header}.{payload}.{b64url(mac)}", jwks)
    array_payload = await sign_compact({}, {"x": 1}, signer)
    h, _, _ = array_payload.split(".")
    with pytest.raises(VerificationFailed):
        verify_compact(f"{h}.{b64url(b'[1]')}.x", jwks)


@pytest.mark.parametrize("size", [1, 2, 3, 31, 32, 33, 64])
def test_canonical_base64url_round_trips_every_length(size: int) -> None:
    data = bytes(range(size))
    assert b64url_decode_canonical(b64url(data)) == data


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("AB", "non-canonical"),  # one byte uses 8 of 12 bits: "AA" is its only spelling
        ("AAB", "non-canonical"),  # two bytes use 16 of 18 bits
        ("AA==", "not unpadded base64url"),  # RFC 7515 section 2: no padding
        ("A", "not unpadded base64url"),  # no length leaves one character over
        ("A+", "not unpadded base64url"),  # base64, not base64url
        ("A A", "not unpadded base64url"),
    ],
)
def test_non_canonical_base64url_is_refused(text: str, reason: str) -> None:
    """RFC 4648 section 3.5: the pad bits are set to zero, so a decoder may reject others."""
    with pytest.raises(ValueError, match=reason):
        b64url_decode_canonical(text)


async def test_ed25519_tokens_say_ed25519_and_an_independent_library_verifies_them(
    keystore: SoftwareKeystore,
) -> None:
    """RFC 9864: an Ed25519 key signs as "Ed25519" (never the deprecated "EdDSA") and is
    published as such; pyca/cryptography and PyJWT verify the token without pavilion's help."""
    signer = keystore.signer("audit-signing")  # the keystore's key type is still "EdDSA"
    token = await sign_compact({"typ": "JWT"}, {"sub": "a"}, signer)
    header_b64, payload_b64, signature_b64 = token.split(".")
    assert json.loads(b64url_decode(header_b64))["alg"] == "Ed25519"
    [jwk] = keystore.public_jwks("audit-signing")
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "Ed25519")

    public = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    public.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}".encode())
    with pytest.raises(InvalidSignature):
        public.verify(b64url_decode(signature_b64), f"{header_b64}.{payload_b64}x".encode())
    assert jwt.decode(token, pyjwk(jwk).key, algorithms=["Ed25519"]) == {"sub": "a"}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        header, payload = verify_compact(token, {"keys": [jwk]})
    assert (header["alg"], payload) == ("Ed25519", {"sub": "a"})


async def test_eddsa_tokens_signed_before_still_verify_without_a_warning_for_the_user(
    keystore: SoftwareKeystore,
) -> None:
    """Tokens and JWKS from before 0.2.0 say "EdDSA": accepted on input, with either JWKS, and
    joserfc's deprecation warning for the name never reaches the user."""
    signer = keystore.signer("audit-signing")
    header_b64 = b64url(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": signer.key_id}).encode())
    signing_input = header_b64 + "." + b64url(b'{"sub":"a"}')
    legacy = f"{signing_input}.{b64url(await signer.sign(signing_input.encode()))}"
    new = await sign_compact({"typ": "JWT"}, {"sub": "a"}, signer)
    [jwk] = keystore.public_jwks("audit-signing")
    old_jwk = {**jwk, "alg": "EdDSA"}  # as the JWKS published it before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for token, key in ((legacy, jwk), (legacy, old_jwk), (new, old_jwk)):
            header, payload = verify_compact(token, {"keys": [key]})
            assert payload == {"sub": "a"}
    assert header["alg"] == "Ed25519"
    # Only our algorithms, whatever the JWK says: HS256 with the public key as secret fails.
    forged = b64url(b'{"alg":"HS256","typ":"JWT"}') + ".e30.AAAA"
    with pytest.raises(VerificationFailed):
        verify_compact(forged, {"keys": [jwk]})
