"""Integrity: detached JWS checked while streaming (against joserfc), spooling under a limit,
signed batch manifests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from ingest_support import Endless, achunks, chunks, detached_jws, ec_key, public_jwk, rsa_key
from pavilion.errors import InvalidRequest, PayloadTooLarge, VerificationFailed
from pavilion.ingest.integrity import (
    SigningInputHasher,
    encode_signature,
    manifest_digest,
    parse_detached_jws,
    public_key_of,
    sign_manifest,
    verify_detached,
    verify_manifest,
)
from pavilion.ingest.spool import spool
from pavilion.keystore.software import SoftwareKeystore

KEYS: dict[str, Any] = {}


def key_for(alg: str) -> Any:
    if alg not in KEYS:
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}.get(alg)
        KEYS[alg] = ec_key(curve) if curve else rsa_key()
    return KEYS[alg]


def _digest(token: str, body: bytes, chunk: int) -> bytes:
    parsed = parse_detached_jws(token)
    hasher = SigningInputHasher(parsed.protected_b64, parsed.algorithm)
    for part in chunks(body, chunk):
        hasher.update(part)
    return hasher.digest()


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "PS256", "PS512"])
def test_detached_signatures_from_joserfc_verify_while_streaming(alg: str) -> None:
    key = key_for(alg)
    body = b"student_id,given_name\nS1234567,Ana\n" * 100
    token = detached_jws(body, key, alg, kid="k1")
    parsed = parse_detached_jws(token)
    assert parsed.key_id == "k1"
    assert parsed.algorithm == alg
    verify_detached(parsed, _digest(token, body, 7), public_jwk(key))
    tampered = body.replace(b"Ana", b"Bob", 1)
    with pytest.raises(VerificationFailed, match="changed after signing") as caught:
        verify_detached(parsed, _digest(token, tampered, 7), public_jwk(key))
    assert caught.value.extra["reason"] == "dp-signature"


@given(body=st.binary(max_size=300), chunk=st.integers(1, 50))
@settings(max_examples=60, deadline=None)
def test_any_chunking_gives_the_same_signing_input(body: bytes, chunk: int) -> None:
    key = key_for("ES256")
    token = detached_jws(body, key)
    parsed = parse_detached_jws(token)
    verify_detached(parsed, _digest(token, body, chunk), public_jwk(key))


def test_wrong_keys_and_algorithms() -> None:
    body = b"x"
    token = detached_jws(body, key_for("ES256"))
    parsed = parse_detached_jws(token)
    with pytest.raises(VerificationFailed):
        verify_detached(parsed, _digest(token, body, 1), public_jwk(ec_key()))
    with pytest.raises(VerificationFailed, match="needs a P-256 key"):
        verify_detached(parsed, _digest(token, body, 1), public_jwk(key_for("ES384")))
    with pytest.raises(VerificationFailed, match="needs an RSA key"):
        rs = parse_detached_jws(detached_jws(body, key_for("RS256"), "RS256"))
        verify_detached(rs, b"\0" * 32, public_jwk(key_for("ES256")))
    short = parse_detached_jws(encode_signature({"alg": "ES256"}, b"\1" * 10))
    with pytest.raises(VerificationFailed):
        verify_detached(short, b"\0" * 32, public_jwk(key_for("ES256")))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "detached content"),
        ("a.b.c", "must not carry the payload"),
        ("!!..!!", "base64url JSON"),
        (encode_signature({"typ": "x"}, b"s"), "no 'alg'"),
        (encode_signature({"alg": "EdDSA"}, b"s"), "EdDSA cannot be verified"),
        (encode_signature({"alg": "HS256"}, b"s"), "not HS256"),
        (encode_signature({"alg": "ES256", "b64": False, "crit": ["b64"]}, b"s"), "critical"),
    ],
)
def test_malformed_signatures_name_the_header(token: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        parse_detached_jws(token)
    assert caught.value.field == "x-jws-signature"


def test_registered_keys_must_be_public_ec_or_strong_rsa() -> None:
    kid, _ = public_key_of(public_jwk(key_for("ES256")))
    assert kid == key_for("ES256").thumbprint()
    with pytest.raises(InvalidRequest, match="public key only"):
        public_key_of(key_for("ES256").as_dict(private=True))
    okp = OKPKey.import_key(ed25519.Ed25519PrivateKey.generate().public_key()).as_dict(
        private=False
    )
    with pytest.raises(InvalidRequest, match=r"EC .* or RSA") as caught:
        public_key_of(okp)
    assert caught.value.field == "jwk.kty"
    with pytest.raises(InvalidRequest, match="not a valid public JWK"):
        public_key_of({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})
    from joserfc.jwk import RSAKey

    with warnings.catch_warnings():  # joserfc warns about the weak key too
        warnings.simplefilter("ignore")
        weak = RSAKey.generate_key(1024, private=True, auto_kid=False)
        with pytest.raises(InvalidRequest, match="at least 2048 bits"):
            public_key_of(weak.as_dict(private=False))


async def test_spooling_hashes_and_stops_at_the_limit_without_reading_the_rest(
    tmp_path: Path,
) -> None:
    body = b"a,b\n1,2\n" * 1000
    key = key_for("ES256")
    parsed = parse_detached_jws(detached_jws(body, key))
    done = await spool(achunks(body, 333), tmp_path, limit=len(body), signature=parsed)
    assert b"".join(done.plain_chunks()) == body
    assert done.size == len(body)
    import hashlib

    assert done.sha256 == hashlib.sha256(body).hexdigest()
    assert done.signing_digest is not None
    verify_detached(parsed, done.signing_digest, public_jwk(key))
    done.remove()
    assert _spooled_files(tmp_path) == []

    endless = Endless()  # 2 GiB, generated lazily
    with pytest.raises(PayloadTooLarge, match="exceeds the limit of 8388608 bytes") as caught:
        await spool(endless, tmp_path, limit=8 * 1024 * 1024)
    assert caught.value.extra == {"limit_bytes": 8 * 1024 * 1024}
    assert endless.pulled <= 8 * 1024 * 1024 + len(endless.block)
    assert _spooled_files(tmp_path) == []  # the partial file is gone


def _spooled_files(root: Path) -> list[Path]:
    return list(root.rglob("upload-*"))


async def test_manifests_are_signed_and_checked(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path / "ks")
    signer = keystore.signer("audit-signing")
    manifest = {"batch_id": "b1", "rows_applied": 3, "output_sha256": "ab" * 32}
    token = await sign_manifest(manifest, signer)
    jwks = keystore.public_jwks("audit-signing")
    assert verify_manifest(token, jwks, manifest) == manifest
    with pytest.raises(
        VerificationFailed, match="differs from its signed manifest in: rows_applied"
    ):
        verify_manifest(token, jwks, {**manifest, "rows_applied": 4})
    header, _payload, signature = token.split(".")
    forged = json.dumps({**manifest, "rows_applied": 4}).encode()
    from pavilion.jose import b64url

    with pytest.raises(VerificationFailed, match="manifest was altered"):
        verify_manifest(f"{header}.{b64url(forged)}.{signature}", jwks, manifest)
    from pavilion.jose import sign_compact

    other = await sign_compact({"typ": "JWT"}, manifest, signer)
    with pytest.raises(VerificationFailed, match="not a batch manifest"):
        verify_manifest(other, jwks, manifest)
    assert manifest_digest(manifest) == manifest_digest(dict(reversed(manifest.items())))
