"""JOSE encodings every layer shares: base64url, compact JSON, compact JWS, JWK checks.

One module at the bottom of the dependency order (it imports only ``pavilion.errors``), so the
audit log, the keystores, the data pipeline, the privacy engine and the credential formats
encode the same way without importing one another. Signatures come from any object with the
shape of :class:`JwsSigner` (the keystore's ``Signer`` is one: software key or HSM); this
module only encodes. Strict parsing with per-check verification reports stays with the
credential verifier (:mod:`pavilion.credentials.jws`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pavilion.errors import VerificationFailed
from pavilion.parsing import loads_json

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

#: The JWS ``alg`` a signing key's type signs under. An Ed25519 key signs as ``Ed25519``, the
#: fully specified name of RFC 9864, which deprecates the polymorphic ``EdDSA`` (the keystore
#: still names the key type ``EdDSA``).
JWS_ALG_FOR_KEY = {"ES256": "ES256", "EdDSA": "Ed25519"}
#: The JWS algorithms the connector accepts: what it signs, and ``EdDSA`` for Ed25519 tokens
#: signed before 0.2.0 or by other issuers.
ALLOWED_ALGORITHMS = ("ES256", "Ed25519", "EdDSA")
#: The two names of an Ed25519 signature; a JWK's ``alg`` under either fits both.
ED25519_ALGORITHMS = frozenset({"Ed25519", "EdDSA"})

_B64URL_TABLE = bytes.maketrans(b"+/", b"-_")
_B64URL_DECODE_TABLE = str.maketrans("-_", "+/")
_B64URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2), the fast way (binascii, one translate)."""
    return binascii.b2a_base64(data, newline=False).translate(_B64URL_TABLE).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (characters outside the alphabet are skipped)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_decode_strict(text: str) -> bytes:
    """Decode unpadded base64url already checked against the alphabet (strict binascii)."""
    padded = text.translate(_B64URL_DECODE_TABLE) + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded, strict_mode=True)


def b64url_decode_canonical(text: str) -> bytes:
    """Decode unpadded base64url that is the one spelling of its bytes (RFC 4648 section 3.5).

    The alphabet only, no padding, and the unused bits of the last character zero: a value
    with non-zero trailing bits decodes to the same bytes as the canonical one, so accepting it
    would let two strings stand for one element. Raises ValueError otherwise.
    """
    if not isinstance(text, str) or len(text) % 4 == 1 or not _B64URL_ALPHABET.fullmatch(text):
        raise ValueError("not unpadded base64url")
    try:
        decoded = b64url_decode_strict(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not unpadded base64url") from exc
    if b64url(decoded) != text:
        raise ValueError("non-canonical base64url: the unused trailing bits are not zero")
    return decoded


def compact_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (msgspec: the issue path encodes several documents per credential)."""
    return msgspec.json.encode(value)


_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def holder_key(jwk: Mapping[str, Any]) -> dict[str, str]:
    """The holder's public key for ``cnf``: a P-256 or Ed25519 public JWK, checked on the curve.

    Raises ValueError (a request model turns it into a 422 naming the field).
    """
    if not isinstance(jwk, Mapping):
        raise ValueError("must be a JWK object")
    if "d" in jwk:
        raise ValueError("must be the holder's PUBLIC key; it contains the private 'd'")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv == "P-256":
            x, y = b64url_decode(str(jwk["x"])), b64url_decode(str(jwk["y"]))
            if len(x) != 32 or len(y) != 32:
                raise ValueError("x and y must be 32 bytes")
            ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
            return {"kty": "EC", "crv": "P-256", "x": str(jwk["x"]), "y": str(jwk["y"])}
        if kty == "OKP" and crv == "Ed25519":
            x = b64url_decode(str(jwk["x"]))
            ed25519.Ed25519PublicKey.from_public_bytes(x)
            return {"kty": "OKP", "crv": "Ed25519", "x": str(jwk["x"])}
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ValueError(f"is not a valid {kty}/{crv} public key: {exc}") from exc
    raise ValueError("must be an EC P-256 or OKP Ed25519 public JWK")


class JwsSigner(Protocol):
    """What signing a compact JWS needs of a key (``keystore.signer.Signer`` has this shape)."""

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    async def sign(self, message: bytes) -> bytes: ...


def jws_alg(key_algorithm: str) -> str:
    """The JWS ``alg`` of a signing key type: ``Ed25519`` for ``EdDSA`` keys, else the same."""
    return JWS_ALG_FOR_KEY.get(key_algorithm, key_algorithm)


def import_key_set(jwks: Mapping[str, Any]) -> KeySet:
    """A joserfc key set from a JWKS, an Ed25519 key's ``alg`` left out.

    joserfc refuses a key whose ``alg`` differs from the token's, and an Ed25519 key published
    as ``EdDSA`` (before 0.2.0) must verify ``Ed25519`` tokens, and the other way round. The
    key type still has to fit the algorithm (joserfc checks ``kty`` and the curve).
    """
    from joserfc.jwk import KeySet  # joserfc is imported when a JWKS is first used

    keys = jwks.get("keys")
    if isinstance(keys, list):
        keys = [
            {k: v for k, v in key.items() if k != "alg"}
            if isinstance(key, Mapping) and key.get("alg") in ED25519_ALGORITHMS
            else key
            for key in keys
        ]
    return KeySet.import_key_set({**jwks, "keys": keys})  # type: ignore[typeddict-item]


@contextmanager
def quiet_eddsa() -> Iterator[None]:
    """Silence joserfc's deprecation warning for ``EdDSA``, a name accepted on input only.

    The warning is about the name a token's signer chose, not something the connector's users
    can act on, so it never reaches them.
    """
    from joserfc.errors import SecurityWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        yield


async def sign_compact(header: dict[str, Any], payload: dict[str, Any], signer: JwsSigner) -> str:
    """JWS compact serialisation (RFC 7515 section 7.1); ``alg`` and ``kid`` come from the key."""
    protected = {**header, "alg": jws_alg(signer.algorithm), "kid": signer.key_id}
    signing_input = f"{b64url(compact_json(protected))}.{b64url(compact_json(payload))}"
    signature = await signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


def verify_compact(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with joserfc against a JWKS; only asymmetric algorithms we issue are accepted."""
    from joserfc import jws
    from joserfc.errors import JoseError

    try:
        key_set = import_key_set(jwks)
        with quiet_eddsa():
            result = jws.deserialize_compact(token, key_set, algorithms=list(ALLOWED_ALGORITHMS))
        payload = loads_json(result.payload)
    except (JoseError, ValueError) as exc:
        raise VerificationFailed(f"credential signature does not verify: {exc}") from exc
    if not isinstance(payload, dict):
        raise VerificationFailed("credential payload is not a JSON object")
    return dict(result.protected), payload


def unverified_payload(token: str) -> bytes:
    """The decoded payload of a compact JWS whose signature was checked elsewhere before."""
    return b64url_decode(token.split(".")[1])
