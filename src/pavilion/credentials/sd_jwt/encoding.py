"""The encodings of RFC 9901: disclosures and their digests, ``sd_hash``, the SD-JWT itself.

A Disclosure is ``base64url(JSON [salt, claim name, value])`` for an object member and
``base64url(JSON [salt, value])`` for an array element; its digest is
``base64url(SHA-256(ASCII(disclosure)))``; digests sit in ``_sd`` (objects) or in
``{"...": digest}`` (array elements). An SD-JWT is ``<issuer JWT>~<disclosure>~...~``, and a
presentation appends a Key-Binding JWT.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pavilion.credentials.jws import CompactJws, parse_compact
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.jose import b64url, b64url_decode_strict, compact_json
from pavilion.parsing import loads_json

SD_JWT_VC_TYP = "dc+sd-jwt"
SD_JWT_VC_MEDIA_TYPE = "application/dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
#: SD-JWT VC: claims that must stay visible (never selectively disclosable).
NEVER_DISCLOSABLE = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})
RESERVED_NAMES = frozenset({"_sd", "...", "_sd_alg"})
B64URL = re.compile(r"[A-Za-z0-9_-]+")
#: How old a Key-Binding JWT may be when it arrives.
DEFAULT_KB_MAX_AGE = timedelta(minutes=5)


def new_salt() -> str:
    """128 bits from the OS CSPRNG (RFC 9901 recommends at least 128)."""
    return b64url(secrets.token_bytes(16))


def digest_of(disclosure: str) -> str:
    """base64url(SHA-256(ASCII(disclosure))): what ``_sd`` and ``...`` hold."""
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def encode_disclosure(salt: str, name: str | None, value: Any) -> str:
    """A Disclosure: ``[salt, name, value]`` for an object member, ``[salt, value]`` else."""
    return b64url(compact_json([salt, value] if name is None else [salt, name, value]))


def sd_hash(presented: str) -> str:
    """The Key-Binding JWT's ``sd_hash`` over ``<issuer JWT>~<disclosures>~``."""
    return b64url(hashlib.sha256(presented.encode("ascii")).digest())


@dataclass(frozen=True)
class ParsedSdJwt:
    jws: CompactJws
    disclosures: tuple[str, ...]
    #: The Key-Binding JWT, when the token is a presentation.
    kb_jwt: str | None

    @property
    def presented(self) -> str:
        """``<issuer JWT>~<disclosures>~``: the input of ``sd_hash``."""
        return "~".join([self.jws.token, *self.disclosures]) + "~"


def parse(token: object) -> ParsedSdJwt:
    if not isinstance(token, str) or "~" not in token:
        raise CheckFailed(
            CheckName.SCHEMA,
            "malformed_sd_jwt",
            "not an SD-JWT (<issuer JWT>~<disclosures>~[<KB-JWT>])",
        )
    parts = token.split("~")
    jwt, disclosures, last = parts[0], parts[1:-1], parts[-1]
    for disclosure in disclosures:
        if not B64URL.fullmatch(disclosure):
            raise CheckFailed(
                CheckName.DISCLOSURES,
                "malformed_disclosure",
                "a disclosure is empty or not base64url",
            )
    return ParsedSdJwt(parse_compact(jwt), tuple(disclosures), last or None)


def decode_disclosure(disclosure: str) -> list[Any]:
    if len(disclosure) % 4 == 1:
        raise CheckFailed(
            CheckName.DISCLOSURES, "malformed_disclosure", "a disclosure is not base64url"
        )
    try:
        value = loads_json(b64url_decode_strict(disclosure).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise CheckFailed(
            CheckName.DISCLOSURES, "malformed_disclosure", "a disclosure is not base64url JSON"
        ) from exc
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise CheckFailed(
            CheckName.DISCLOSURES,
            "malformed_disclosure",
            "a disclosure must be [salt, name, value] or [salt, value]",
        )
    if len(value) == 3 and (not isinstance(value[1], str) or value[1] in RESERVED_NAMES):
        raise CheckFailed(
            CheckName.DISCLOSURES,
            "malformed_disclosure",
            "a disclosure's claim name must be a string other than _sd, _sd_alg and ...",
        )
    return value


def digests_in(value: Any) -> list[str]:
    """Digests referenced directly by this value (its _sd members and ... array elements)."""
    found: list[str] = []
    if isinstance(value, dict):
        found += [d for d in value.get("_sd", []) if isinstance(d, str)]
        for key, inner in value.items():
            if key != "_sd":
                found += digests_in(inner)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and set(item) == {"..."}:
                found.append(item["..."])
            else:
                found += digests_in(item)
    return found
