"""A :class:`~pavilion.keystore.signer.Signer` over an in-memory pyca private key.

The software keystore hands these out for its unsealed keys; issuer keys wrapped under the
keystore and holder keys in tests and the CLI use them too. :func:`public_jwk_of` is the
public JWK (``kid`` = RFC 7638 thumbprint, ``alg``, ``use``) of an ES256 or EdDSA public key.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pavilion.jose import b64url, jwk_thumbprint, jws_alg
from pavilion.keystore.signer import Algorithm

__all__ = ["SoftwareSigner", "public_jwk_of"]


class SoftwareSigner:
    """A Signer over an in-memory pyca private key."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        self._key = private_key
        self._jwk = public_jwk_of(private_key.public_key())
        self._kid = self._jwk["kid"]

    @property
    def key_id(self) -> str:
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return "EdDSA" if isinstance(self._key, ed25519.Ed25519PrivateKey) else "ES256"

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    async def sign(self, message: bytes) -> bytes:
        return self.sign_blocking(message)

    def sign_blocking(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def public_jwk_of(
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
) -> dict[str, str]:
    """The public JWK with ``kid`` (RFC 7638 thumbprint) and ``alg``."""
    jwk: dict[str, str]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "alg": jws_alg("EdDSA")}
    else:
        numbers = public_key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
            "alg": "ES256",
        }
    jwk["use"] = "sig"
    jwk["kid"] = jwk_thumbprint(jwk)
    return jwk
