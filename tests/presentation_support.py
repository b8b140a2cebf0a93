"""A holder for the presentation tests: a did:key and vp+jwt presentations signed by joserfc.

The presentations are built and signed with joserfc, not with the connector's JOSE code, so
the verifier is checked against an independent producer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from pavilion.credentials.data_integrity.multikey import encode_public_key
from pavilion.keystore.software_signer import public_jwk_of

V2 = "https://www.w3.org/ns/credentials/v2"


@dataclass
class Holder:
    """A holder key and its did:key (the DID is the key; its one method is ``did#key``)."""

    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def ed25519(cls) -> Holder:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def p256(cls) -> Holder:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def alg(self) -> str:
        """RFC 9864's name for Ed25519 (joserfc warns on the deprecated ``EdDSA``)."""
        return "Ed25519" if isinstance(self.private, ed25519.Ed25519PrivateKey) else "ES256"

    @property
    def did(self) -> str:
        return f"did:key:{encode_public_key(self.private.public_key())}"

    @property
    def kid(self) -> str:
        return f"{self.did}#{encode_public_key(self.private.public_key())}"

    def public_jwk(self) -> dict[str, str]:
        jwk = public_jwk_of(self.private.public_key())
        return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}

    def sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        key = (
            OKPKey.import_key(self.private)
            if isinstance(self.private, ed25519.Ed25519PrivateKey)
            else ECKey.import_key(self.private)
        )
        body = json.dumps(payload).encode()
        return jws.serialize_compact({"alg": self.alg, **header}, body, key, algorithms=[self.alg])

    def present(
        self,
        credentials: list[Any],
        *,
        audience: str = "https://verifier.example",
        nonce: str = "n-0S6_WzA2Mj",
        header: dict[str, Any] | None = None,
        **members: Any,
    ) -> str:
        """A vp+jwt: the presentation is the payload, aud and nonce bind it to one verifier."""
        payload: dict[str, Any] = {
            "@context": [V2],
            "type": ["VerifiablePresentation"],
            "holder": self.did,
            "verifiableCredential": credentials,
            "aud": audience,
            "nonce": nonce,
            "iat": int(time.time()),
        }
        payload.update(members)
        payload = {k: v for k, v in payload.items() if v is not None}
        protected = {"typ": "vp+jwt", "cty": "vp", "kid": self.kid, **(header or {})}
        return self.sign({k: v for k, v in protected.items() if v is not None}, payload)


def envelope_presentation(token: str) -> dict[str, Any]:
    return {
        "@context": [V2],
        "type": "EnvelopedVerifiablePresentation",
        "id": f"data:application/vp+jwt,{token}",
    }
