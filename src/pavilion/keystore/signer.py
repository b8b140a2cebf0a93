"""The narrow signing interface every key backend implements."""

from __future__ import annotations

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
