"""JWTs with cryptography keys through joserfc: what PyJWT (tests only) signs verifies, and
every refusal names its check as the DP agent and the token server report it."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

from pavilion.errors import VerificationFailed
from pavilion.jose import (
    check_claims,
    decode_jwt,
    encode_jwt,
    jose_key,
    jwks_keys,
    public_jwk,
    unverified_claims,
    unverified_header,
)

EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(header: Any, payload: bytes) -> str:
    return f"{_part(json.dumps(header).encode())}.{_part(payload)}.{_part(b'sig')}"


def _reason(call: Any) -> str:
    with pytest.raises(VerificationFailed) as info:
        call()
    return str(info.value.extra["reason"])


@pytest.mark.parametrize(("key", "algorithm"), [(EC_KEY, "ES256"), (ED_KEY, "EdDSA")])
def test_what_one_library_signs_the_other_verifies(key: Any, algorithm: str) -> None:
    ours = encode_jwt({"sub": "s"}, jose_key(key), algorithm, {"kid": "k"})
    assert jwt.get_unverified_header(ours) == {"alg": algorithm, "typ": "JWT", "kid": "k"}
    assert jwt.decode(ours, key.public_key(), [algorithm]) == {"sub": "s"}
    theirs = jwt.encode({"sub": "t"}, key, algorithm, {"kid": "k"})
    header, claims = decode_jwt(theirs, jose_key(key.public_key()), [algorithm])
    assert (header["kid"], claims) == ("k", {"sub": "t"})
    assert jwks_keys({"keys": [public_jwk(key) | {"kid": "k"}]})[0][:2] == ("k", algorithm)


def test_malformed_tokens_are_decode_errors() -> None:
    for token in ("a*b.c.d", "a.b", _raw([1], b"{}"), _raw({"alg": "ES256", "kid": 1}, b"{}")):
        assert _reason(lambda token=token: unverified_header(token)) == "DecodeError"
    assert _reason(lambda: unverified_claims(_raw({"alg": "ES256"}, b"not json"))) == "DecodeError"
    assert _reason(lambda: unverified_claims(_raw({"alg": "ES256"}, b"[1]"))) == "DecodeError"
    assert unverified_claims(_raw({"alg": "ES256"}, b'{"iss": "i"}')) == {"iss": "i"}


def test_signature_and_algorithm_are_checked() -> None:
    public = jose_key(EC_KEY.public_key())
    unsigned = _raw({"alg": "none"}, b'{"sub": "s"}')
    assert _reason(lambda: decode_jwt(unsigned, public, ["ES256"])) == "InvalidAlgorithmError"
    forged = jwt.encode({"sub": "s"}, ec.generate_private_key(ec.SECP256R1()), "ES256")
    assert _reason(lambda: decode_jwt(forged, public, ["ES256"])) == "InvalidSignatureError"
    wrong_type = jwt.encode({"sub": "s"}, ED_KEY, "EdDSA")  # an Ed25519 token, an EC key
    assert _reason(lambda: decode_jwt(wrong_type, public, ["EdDSA"])) == "DecodeError"
    with pytest.raises(TypeError, match="X25519"):
        jose_key(x25519.X25519PrivateKey.generate())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("claims", "kwargs", "reason"),
    [
        ({}, {"require": ["exp"]}, "MissingRequiredClaimError"),
        ({}, {"issuer": "i"}, "MissingRequiredClaimError"),
        ({"iss": "x"}, {"issuer": "i"}, "InvalidIssuerError"),
        ({}, {"audience": "a"}, "MissingRequiredClaimError"),
        ({"aud": {"a": 1}}, {"audience": "a"}, "InvalidAudienceError"),
        ({"aud": ["b", "c"]}, {"audience": ["a", "d"]}, "InvalidAudienceError"),
        ({"sub": 1}, {}, "InvalidSubjectError"),
        ({"jti": 1}, {}, "InvalidJTIError"),
    ],
)
def test_claims_are_refused_by_name(
    claims: dict[str, Any], kwargs: dict[str, Any], reason: str
) -> None:
    assert _reason(lambda: check_claims(claims, **kwargs)) == reason


def test_good_claims_pass() -> None:
    check_claims(
        {"iss": "i", "aud": ["x", "a"], "sub": "s", "jti": "j", "exp": 1},
        require=["exp", "sub"],
        issuer="i",
        audience=["a", "b"],
    )
