"""Integrity: digests of what came in and went out, signed batch manifests, DP signatures.

- Every upload is hashed (SHA-256) while it streams in.
- A DP may sign its upload with a JWS with detached content (RFC 7515 Appendix F): the JWS
  ``BASE64URL(header) + ".." + BASE64URL(signature)`` travels in a header and the body is the
  payload. The signing input ``ASCII(BASE64URL(header) || '.' || BASE64URL(payload))`` is
  hashed as the body streams (base64url is computed in 3-byte groups), so a 500 MB upload is
  verified without holding it, with the ECDSA/RSA "prehashed" verification of pyca
  cryptography. EdDSA has no prehashed form and is refused for uploads.
- The connector signs a manifest per batch (input digest, row counts, output digest) with the
  keystore's audit-signing key as a compact JWS; reading a batch checks the signature and that
  the stored rows still hash to the signed output digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from pavilion.errors import InvalidRequest, VerificationFailed
from pavilion.jose import b64url, b64url_decode, sign_compact, verify_compact
from pavilion.keystore.signer import Signer
from pavilion.parsing import loads_json

MANIFEST_TYPE: Final = "pavilion-batch-manifest+jws"
SIGNATURE_HEADER: Final = "x-jws-signature"

_EC_ALGORITHMS: Final = {
    "ES256": ("P-256", "sha256", hashes.SHA256, 32),
    "ES384": ("P-384", "sha384", hashes.SHA384, 48),
    "ES512": ("P-521", "sha512", hashes.SHA512, 66),
}
_RSA_ALGORITHMS: Final = {
    "RS256": ("sha256", hashes.SHA256, False),
    "RS384": ("sha384", hashes.SHA384, False),
    "RS512": ("sha512", hashes.SHA512, False),
    "PS256": ("sha256", hashes.SHA256, True),
    "PS384": ("sha384", hashes.SHA384, True),
    "PS512": ("sha512", hashes.SHA512, True),
}
UPLOAD_ALGORITHMS: Final = tuple(sorted([*_EC_ALGORITHMS, *_RSA_ALGORITHMS]))
_MIN_RSA_BITS: Final = 2048
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class DetachedJws:
    protected_b64: str
    header: dict[str, Any]
    signature: bytes

    @property
    def algorithm(self) -> str:
        return str(self.header["alg"])

    @property
    def key_id(self) -> str | None:
        kid = self.header.get("kid")
        return str(kid) if kid is not None else None


def parse_detached_jws(token: str) -> DetachedJws:
    """Split a JWS compact serialisation with detached content; refuse anything else."""
    parts = token.strip().split(".")
    where = SIGNATURE_HEADER
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise InvalidRequest(
            "the upload signature must be a JWS with detached content: "
            "BASE64URL(header)..BASE64URL(signature)",
            field=where,
        )
    if parts[1]:
        raise InvalidRequest(
            "the upload signature must not carry the payload (RFC 7515 Appendix F)", field=where
        )
    try:
        header = loads_json(b64url_decode(parts[0]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "the upload signature is not valid base64url JSON", field=where
        ) from exc
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise InvalidRequest("the upload signature's header has no 'alg'", field=where)
    if header["alg"] not in UPLOAD_ALGORITHMS:
        raise InvalidRequest(
            f"upload signatures use one of {', '.join(UPLOAD_ALGORITHMS)}, not {header['alg']} "
            "(EdDSA cannot be verified while an upload streams)",
            field=where,
        )
    if "crit" in header or header.get("b64") is False:
        raise InvalidRequest(
            "the upload signature uses critical header parameters (such as b64) this "
            "connector does not support",
            field=where,
        )
    return DetachedJws(parts[0], header, signature)


def hash_name(algorithm: str) -> str:
    if algorithm in _EC_ALGORITHMS:
        return _EC_ALGORITHMS[algorithm][1]
    return _RSA_ALGORITHMS[algorithm][0]


class SigningInputHasher:
    """Hashes ``BASE64URL(header) || '.' || BASE64URL(payload)`` as the payload streams."""

    def __init__(self, protected_b64: str, algorithm: str) -> None:
        self._hash = hashlib.new(hash_name(algorithm))
        self._hash.update(protected_b64.encode("ascii") + b".")
        self._pending = b""

    def update(self, chunk: bytes) -> None:
        data = self._pending + chunk
        whole = len(data) - len(data) % 3
        if whole:
            self._hash.update(base64.urlsafe_b64encode(data[:whole]))
        self._pending = data[whole:]

    def digest(self) -> bytes:
        final = self._hash.copy()
        if self._pending:
            final.update(base64.urlsafe_b64encode(self._pending).rstrip(b"="))
        return final.digest()


def public_key_of(jwk: dict[str, Any]) -> tuple[str, Any]:
    """(RFC 7638 thumbprint, pyca public key) of a DP's public JWK; private keys are refused."""
    if _PRIVATE_MEMBERS & set(jwk):
        raise InvalidRequest("send the public key only (the JWK has private members)", field="jwk")
    if jwk.get("kty") not in ("EC", "RSA"):
        raise InvalidRequest("upload keys are EC (P-256/384/521) or RSA JWKs", field="jwk.kty")
    try:
        key = JWKRegistry.import_key(jwk)
        public = key.get_op_key("verify")
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidRequest(f"not a valid public JWK: {exc}", field="jwk") from exc
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < _MIN_RSA_BITS:
        raise InvalidRequest(f"RSA keys need at least {_MIN_RSA_BITS} bits", field="jwk.n")
    return str(key.thumbprint()), public


def verify_detached(jws: DetachedJws, signing_digest: bytes, jwk: dict[str, Any]) -> None:
    """Check a detached JWS over a prehashed signing input against a DP's registered key."""
    _, public = public_key_of(jwk)
    algorithm = jws.algorithm
    try:
        if algorithm in _EC_ALGORITHMS:
            curve, _, hash_cls, size = _EC_ALGORITHMS[algorithm]
            if (
                not isinstance(public, ec.EllipticCurvePublicKey)
                or public.curve.name
                != {
                    "P-256": "secp256r1",
                    "P-384": "secp384r1",
                    "P-521": "secp521r1",
                }[curve]
            ):
                raise VerificationFailed(f"{algorithm} needs a {curve} key")
            if len(jws.signature) != 2 * size:
                raise InvalidSignature
            r = int.from_bytes(jws.signature[:size], "big")
            s = int.from_bytes(jws.signature[size:], "big")
            public.verify(
                encode_dss_signature(r, s), signing_digest, ec.ECDSA(Prehashed(hash_cls()))
            )
        else:
            _, hash_cls, pss = _RSA_ALGORITHMS[algorithm]
            if not isinstance(public, rsa.RSAPublicKey):
                raise VerificationFailed(f"{algorithm} needs an RSA key")
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=padding.PSS.DIGEST_LENGTH)
                if pss
                else padding.PKCS1v15()
            )
            public.verify(jws.signature, signing_digest, pad, Prehashed(hash_cls()))
    except InvalidSignature as exc:
        raise VerificationFailed(
            "the upload's detached JWS does not verify: the content was changed after signing "
            "or was signed with another key",
            extra={"reason": "dp-signature"},
        ) from exc


# -- batch manifests -------------------------------------------------------------------------


class BatchManifest(TypedDict):
    """What the connector signs for each batch: where it came from, its digests and counts."""

    batch_id: str
    tenant_id: str
    provider_id: str
    profile_version: int
    profile_sha256: str
    format: str
    status: str
    reason: str | None
    received_at: str
    as_of: str
    input_sha256: str
    input_bytes: int
    rows_total: int
    rows_valid: int
    rows_invalid: int
    rows_applied: int
    output_sha256: str
    quality_score: float | None
    dp_signature_kid: str | None


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def sign_manifest(manifest: BatchManifest, signer: Signer) -> str:
    return await sign_compact({"typ": MANIFEST_TYPE}, dict(manifest), signer)


def verify_manifest(
    token: str, jwks: list[dict[str, str]], stored: dict[str, Any]
) -> dict[str, Any]:
    """The signed manifest, after checking its signature and that it equals the stored copy."""
    try:
        header, payload = verify_compact(token, {"keys": jwks})
    except VerificationFailed as exc:
        raise VerificationFailed(
            "the batch manifest's signature does not verify: the manifest was altered",
            extra={"reason": "manifest-signature"},
        ) from exc
    if header.get("typ") != MANIFEST_TYPE:
        raise VerificationFailed("the token is not a batch manifest")
    if payload != stored:
        changed = sorted(k for k in set(payload) | set(stored) if payload.get(k) != stored.get(k))
        raise VerificationFailed(
            f"the stored batch record differs from its signed manifest in: {', '.join(changed)}",
            extra={"reason": "manifest-mismatch", "fields": changed},
        )
    return payload


def encode_signature(header: dict[str, Any], signature: bytes) -> str:
    """A detached JWS from a header and a raw signature (tests and the CLI use it)."""
    protected = b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    return f"{protected}..{b64url(signature)}"
