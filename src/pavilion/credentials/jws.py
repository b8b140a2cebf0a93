"""Strict compact-JWS parsing and verification against one known key, for the verifiers.

Every malformed or refused token becomes a :class:`~pavilion.credentials.report.CheckFailed`
naming the check, so a verification report says why. Encoding and signing (base64url, compact
JSON, ``sign_compact``, JWKS verification) live in :mod:`pavilion.jose`, which every layer
shares; the tests check both against joserfc and PyJWT.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey
from joserfc.jws import JWSRegistry

from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.jose import ALLOWED_ALGORITHMS, b64url_decode_strict
from pavilion.parsing import loads_json

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: The key a JOSE algorithm needs: (kty, crv). Anything else is refused before any crypto runs.
_KEY_FOR_ALG = {
    "ES256": ("EC", "P-256"),
    "Ed25519": ("OKP", "Ed25519"),
    "EdDSA": ("OKP", "Ed25519"),
}
_imported_keys: dict[str, ECKey | OKPKey] = {}

#: joserfc's implementations of the algorithms we accept: ES256, and Ed25519 under its RFC 9864
#: name ``Ed25519`` (what the connector signs) or the deprecated ``EdDSA`` (tokens signed before).
_ALGORITHMS = {alg: JWSRegistry.algorithms[alg] for alg in ALLOWED_ALGORITHMS}


@dataclass(frozen=True)
class CompactJws:
    """A compact JWS split and decoded, signature not yet checked."""

    token: str
    header: dict[str, Any]
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def signing_input(self) -> bytes:
        """``BASE64URL(header) || '.' || BASE64URL(payload)``, as received."""
        return self.token[: self.token.rindex(".")].encode("ascii")

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object (duplicate member names refused); a fresh copy."""
        value = _strict_json(self.payload, "payload")
        if not isinstance(value, dict):
            raise CheckFailed(
                CheckName.SCHEMA, "payload_not_object", "the payload is not a JSON object"
            )
        return value


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def _strict_json(data: bytes, what: str) -> Any:
    try:
        return loads_json(data.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckFailed(
            CheckName.SCHEMA, f"malformed_{what}", f"the JWS {what} is not valid JSON: {exc}"
        ) from exc


def _b64_part(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise CheckFailed(
            CheckName.SCHEMA, "malformed_jws", f"the JWS {what} is not unpadded base64url"
        )
    try:
        return b64url_decode_strict(text)
    except binascii.Error as exc:
        raise CheckFailed(
            CheckName.SCHEMA, "malformed_jws", f"the JWS {what} is not unpadded base64url"
        ) from exc


def parse_compact(token: object) -> CompactJws:
    """Split a compact JWS and refuse what we never accept, before touching any key.

    Refused: anything but three base64url parts, a header that is not a JSON object,
    ``alg`` ``none`` or any algorithm other than ES256 and Ed25519/EdDSA (so HS256 with a public key
    as the secret never reaches a MAC), and ``crit`` (no extension is understood here).
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise CheckFailed(
            CheckName.SCHEMA, "malformed_jws", "not a compact JWS (three base64url parts)"
        )
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = _strict_json(_b64_part(header_b64, "header"), "header")
    if not isinstance(header, dict):
        raise CheckFailed(CheckName.SCHEMA, "malformed_header", "the JWS header is not an object")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise CheckFailed(CheckName.SIGNATURE, "missing_alg", "the JWS header has no alg")
    if alg.lower() == "none":
        raise CheckFailed(
            CheckName.SIGNATURE, "alg_none", "alg 'none' (an unsigned token) is never accepted"
        )
    if alg not in ALLOWED_ALGORITHMS:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "alg_not_allowed",
            f"algorithm {alg!r} is not accepted (only {', '.join(ALLOWED_ALGORITHMS)})",
        )
    if "crit" in header:
        raise CheckFailed(
            CheckName.SIGNATURE, "crit_unsupported", "critical header parameters are not supported"
        )
    payload = _b64_part(payload_b64, "payload")
    signature = _b64_part(signature_b64, "signature")
    return CompactJws(token, header, payload, signature)


def check_key_fits(alg: str, jwk: dict[str, Any], where: str = "key") -> None:
    """The key must be a public key of the type the algorithm needs."""
    if "d" in jwk:
        raise CheckFailed(
            CheckName.SIGNATURE, "private_key", f"the {where} is a private key; send the public one"
        )
    kty, crv = _KEY_FOR_ALG[alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "key_alg_mismatch",
            f"the {where} ({jwk.get('kty')}/{jwk.get('crv')}) cannot verify alg {alg}",
        )


def _import_key(jwk: dict[str, Any]) -> ECKey | OKPKey:
    members: dict[str, str | list[str]] = {
        k: str(jwk[k]) for k in ("kty", "crv", "x", "y") if k in jwk
    }
    cache_key = json.dumps(members, sort_keys=True)
    key = _imported_keys.get(cache_key)
    if key is None:
        key = (
            ECKey.import_key(members) if members.get("kty") == "EC" else OKPKey.import_key(members)
        )
        if len(_imported_keys) > 4096:
            _imported_keys.clear()
        _imported_keys[cache_key] = key
    return key


def verify_with_jwk(parsed: CompactJws, jwk: dict[str, Any], *, where: str = "key") -> None:
    """Check the signature with joserfc against one public JWK, or raise CheckFailed."""
    check_key_fits(parsed.alg, jwk, where)
    try:
        key = _import_key(jwk)
        # joserfc's own ES256/Ed25519 implementation over the signing input we parsed strictly
        # (parse_compact already refused every other algorithm).
        valid = _ALGORITHMS[parsed.alg].verify(parsed.signing_input, parsed.signature, key)
    except (JoseError, ValueError, TypeError) as exc:
        raise CheckFailed(
            CheckName.SIGNATURE,
            "bad_signature",
            f"the signature does not verify with the {where} ({type(exc).__name__})",
        ) from exc
    if not valid:
        raise CheckFailed(
            CheckName.SIGNATURE, "bad_signature", f"the signature does not verify with the {where}"
        )
