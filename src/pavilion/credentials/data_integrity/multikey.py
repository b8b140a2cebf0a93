"""Multibase base58btc and Multikey public keys (Controlled Identifiers 1.0, section 2.2.2).

A Multikey ``publicKeyMultibase`` is ``z`` + base58btc(multicodec header || key bytes):
``0xed 0x01`` then the 32-byte Ed25519 key (``z6Mk...``), or ``0x80 0x24`` then the 33-byte
compressed P-256 point (``zDn...``). Decoding is strict: the ``z`` prefix, the alphabet, the
header and the key length are checked, and a P-256 point must lie on the curve.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pavilion import jose

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {character: value for value, character in enumerate(_ALPHABET)}
ED25519_HEADER: Final = b"\xed\x01"
P256_HEADER: Final = b"\x80\x24"

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


class MultibaseError(ValueError):
    """Not a valid base58btc multibase string or Multikey (internal: callers translate it)."""


def base58btc_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_ALPHABET[remainder])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def base58btc_decode(text: str) -> bytes:
    number = 0
    for character in text:
        value = _INDEX.get(character)
        if value is None:
            raise MultibaseError(f"{character!r} is not a base58btc character")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def multibase_encode(data: bytes) -> str:
    """``z`` + base58btc: the multibase form Data Integrity proofs and Multikeys use."""
    return "z" + base58btc_encode(data)


def multibase_decode(text: object) -> bytes:
    if not isinstance(text, str) or not text.startswith("z") or len(text) < 2:
        raise MultibaseError("expected a base58btc multibase string (starting with 'z')")
    return base58btc_decode(text[1:])


def encode_public_key(key: PublicKey) -> str:
    """The ``publicKeyMultibase`` of an Ed25519 or P-256 public key."""
    if isinstance(key, Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return multibase_encode(ED25519_HEADER + raw)
    if isinstance(key.curve, ec.SECP256R1):
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        return multibase_encode(P256_HEADER + point)
    raise MultibaseError(f"no Multikey encoding for curve {key.curve.name}")


def decode_public_key(text: object) -> PublicKey:
    """The public key of a ``publicKeyMultibase`` (Ed25519 or P-256)."""
    data = multibase_decode(text)
    header, raw = data[:2], data[2:]
    if header == ED25519_HEADER:
        if len(raw) != 32:
            raise MultibaseError("an Ed25519 Multikey holds 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    if header == P256_HEADER:
        if len(raw) != 33:
            raise MultibaseError("a P-256 Multikey holds a 33-byte compressed point")
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as exc:
            raise MultibaseError("the P-256 Multikey is not a point on the curve") from exc
    raise MultibaseError("the Multikey is neither Ed25519 (0xed01) nor P-256 (0x8024)")


def public_key_from_jwk(jwk: dict[str, str]) -> PublicKey:
    """An OKP Ed25519 or EC P-256 public JWK as a key object."""
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return Ed25519PublicKey.from_public_bytes(jose.b64url_decode_strict(jwk["x"]))
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        x = int.from_bytes(jose.b64url_decode_strict(jwk["x"]), "big")
        y = int.from_bytes(jose.b64url_decode_strict(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raise MultibaseError("only Ed25519 (OKP) and P-256 (EC) keys are supported")
