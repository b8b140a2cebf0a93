"""The narrow signing interface every key backend implements."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Literal, Protocol, runtime_checkable

Algorithm = Literal["ES256", "EdDSA"]


@runtime_checkable
class Signer(Protocol):
    """A private key that signs and never shows itself.

    ``sign`` returns the raw signature in its JOSE form: ``r || s`` (64 bytes) for ES256 over
    SHA-256 of the message, and the 64-byte Ed25519 signature for EdDSA.
    """

    @property
    def key_id(self) -> str:
        """RFC 7638 JWK thumbprint (base64url SHA-256) of the public key."""
        ...

    @property
    def algorithm(self) -> Algorithm: ...

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, with ``kid`` and ``alg`` set."""
        ...

    async def sign(self, message: bytes) -> bytes: ...


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())
