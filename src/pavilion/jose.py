"""JOSE encodings every layer shares: base64url, compact JSON, compact JWS, JWK checks.

One module at the bottom of the dependency order (it imports only ``pavilion.errors``), so the
audit log, the keystores, the data pipeline, the privacy engine and the credential formats
encode the same way without importing one another. Signatures come from any object with the
shape of :class:`JwsSigner` (the keystore's ``Signer`` is one: software key or HSM); this
module only encodes. Strict parsing with per-check verification reports stays with the
credential verifier (:mod:`pavilion.credentials.jws`).

Plain JWTs (RFC 7519) signed with, and checked against, ``cryptography`` keys go through
joserfc here: client assertions (RFC 7523), OAuth2 access tokens (RFC 9068) and their JWKS.
:func:`decode_jwt` checks the signature under an explicit algorithm allow-list and
:func:`check_claims` the required claims, issuer and audience; times are left to the caller's
injected clock. A refusal is a :class:`~pavilion.errors.VerificationFailed` whose
``extra["reason"]`` names the check (``DecodeError``, ``InvalidSignatureError``,
``MissingRequiredClaimError``, ``InvalidIssuerError``, ``InvalidAudienceError``, ...).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, SecurityWarning
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey, import_key

from pavilion.errors import VerificationFailed
from pavilion.parsing import loads_json

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


# --- JWTs with cryptography keys (joserfc) ----------------------------------------------------

#: A ``cryptography`` key that signs or verifies a JWT.
CryptoKey = (
    ec.EllipticCurvePrivateKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PrivateKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PrivateKey
    | ed448.Ed448PublicKey
    | rsa.RSAPrivateKey
    | rsa.RSAPublicKey
)
_EDWARDS_KEYS = (
    ed25519.Ed25519PrivateKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PrivateKey,
    ed448.Ed448PublicKey,
)
#: A key as joserfc holds it.
JoseKey = Key

#: The algorithm a JWK without ``alg`` is used with, by key type (and curve).
_DEFAULT_ALGORITHMS: dict[tuple[object, object], str] = {
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("EC", "secp256k1"): "ES256K",
    ("OKP", "Ed25519"): "EdDSA",
    ("OKP", "Ed448"): "EdDSA",
    ("RSA", None): "RS256",
    ("oct", None): "HS256",
}
#: The key type each JWS algorithm family needs (RFC 7518 section 3.1, RFC 8037).
_KEY_TYPE_OF = {"ES": "EC", "RS": "RSA", "PS": "RSA", "HS": "oct", "Ed": "OKP"}
_KNOWN_ALGORITHMS = frozenset(
    {
        *("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
        *("ES256", "ES256K", "ES384", "ES512", "EdDSA"),
    }
)


def jose_key(key: CryptoKey) -> JoseKey:
    """The joserfc form of a ``cryptography`` key (private or public)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECKey.import_key(key)
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RSAKey.import_key(key)
    if isinstance(key, _EDWARDS_KEYS):
        return OKPKey.import_key(key)
    raise TypeError(f"a {type(key).__name__} cannot sign or verify a JWT")


def public_jwk(key: CryptoKey) -> dict[str, Any]:
    """The public JWK of a ``cryptography`` key (RFC 7517), without ``kid`` or ``alg``."""
    return dict(jose_key(key).as_dict(private=False))


def encode_jwt(
    claims: Mapping[str, Any],
    key: JoseKey,
    algorithm: str,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWT signed with ``key`` under ``algorithm`` (``typ`` ``JWT`` unless given)."""
    protected = {"alg": algorithm, "typ": "JWT", **(header or {})}
    with quiet_eddsa():
        return str(jws.serialize_compact(protected, compact_json(dict(claims)), key, [algorithm]))


def _rejected(detail: str, reason: str) -> VerificationFailed:
    return VerificationFailed(detail, extra={"reason": reason})


def unverified_header(token: str) -> dict[str, Any]:
    """A compact JWS's protected header before any check: only to choose the key with.

    The three parts must be base64url, the header a JSON object and ``kid`` (if any) a string.
    """
    parts = token.split(".") if isinstance(token, str) else []
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        for part in parts:
            if not _B64URL_ALPHABET.fullmatch(part):
                raise ValueError("not base64url")
            b64url_decode_strict(part)
        header = loads_json(b64url_decode_strict(parts[0]))
    except (ValueError, binascii.Error) as exc:
        raise _rejected(f"not a compact JWS: {exc}", "DecodeError") from exc
    if not isinstance(header, dict):
        raise _rejected("the JWS header is not a JSON object", "DecodeError")
    if "kid" in header and not isinstance(header["kid"], str):
        raise _rejected("the JWS header's kid is not a string", "DecodeError")
    return header


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims before any check: only to find the party whose key verifies it."""
    unverified_header(token)
    return _json_object(b64url_decode_strict(token.split(".")[1]))


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        claims = loads_json(payload)
    except ValueError as exc:
        raise _rejected("the JWT's payload is not JSON", "DecodeError") from exc
    if not isinstance(claims, dict):
        raise _rejected("the JWT's payload is not a JSON object", "DecodeError")
    return claims


def decode_jwt(
    token: str, key: JoseKey, algorithms: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT whose signature ``key`` verifies under ``algorithms``.

    Only the signature and the shape are checked; :func:`check_claims` does the claims.
    """
    header = unverified_header(token)
    if header.get("alg") not in algorithms:
        raise _rejected("the JWT's algorithm is not allowed", "InvalidAlgorithmError")
    try:
        with quiet_eddsa():
            result = jws.deserialize_compact(token, key, algorithms=list(algorithms))
    except BadSignatureError as exc:
        raise _rejected("Signature verification failed", "InvalidSignatureError") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise _rejected(f"the JWT does not verify with this key: {exc}", "DecodeError") from exc
    return header, _json_object(result.payload)


def check_claims(
    claims: Mapping[str, Any],
    *,
    require: Iterable[str] = (),
    issuer: str | None = None,
    audience: str | Iterable[str] | None = None,
) -> None:
    """Required claims present, ``iss`` equal to ``issuer``, ``aud`` naming one of ``audience``.

    In that order, each refusal naming its check; ``sub`` and ``jti``, when present, must be
    strings. Times (``exp``, ``iat``, ``nbf``) are the caller's, against its own clock.
    """
    for name in require:
        if claims.get(name) is None:
            raise _rejected(f'Token is missing the "{name}" claim', "MissingRequiredClaimError")
    if issuer is not None:
        if "iss" not in claims:
            raise _rejected('Token is missing the "iss" claim', "MissingRequiredClaimError")
        if claims["iss"] != issuer:
            raise _rejected("Invalid issuer", "InvalidIssuerError")
    if audience is not None:
        _check_audience(claims, [audience] if isinstance(audience, str) else list(audience))
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise _rejected("Subject must be a string", "InvalidSubjectError")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise _rejected("JWT ID must be a string", "InvalidJTIError")


def _check_audience(claims: Mapping[str, Any], expected: list[str]) -> None:
    value = claims.get("aud")
    if not value:
        raise _rejected('Token is missing the "aud" claim', "MissingRequiredClaimError")
    named = [value] if isinstance(value, str) else value
    if not isinstance(named, list) or not all(isinstance(a, str) for a in named):
        raise _rejected("Invalid claim format in token", "InvalidAudienceError")
    if not any(a in named for a in expected):
        raise _rejected("Audience doesn't match", "InvalidAudienceError")


def jwks_keys(document: Any) -> list[tuple[str | None, str, JoseKey]]:
    """``(kid, algorithm, key)`` for each usable key of a JWKS; unusable ones are skipped.

    The algorithm is the key's ``alg`` or the one its type and curve imply (EC P-256: ES256,
    RSA: RS256, Ed25519: EdDSA, ...). Raises ValueError when the set has no usable key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS is an object with a 'keys' array")
    found: list[tuple[str | None, str, JoseKey]] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kty, crv = entry.get("kty"), entry.get("crv")
        algorithm = entry.get("alg") or _DEFAULT_ALGORITHMS.get(
            (kty, crv if kty in ("EC", "OKP") else None)
        )
        if algorithm not in _KNOWN_ALGORITHMS or _KEY_TYPE_OF.get(algorithm[:2]) != kty:
            continue
        try:
            with quiet_eddsa():
                key = import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
        kid = entry.get("kid")
        found.append((kid if isinstance(kid, str) and kid else None, algorithm, key))
    if not found:
        raise ValueError("the JWK set has no usable key")
    return found
