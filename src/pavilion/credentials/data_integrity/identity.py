"""Who signs this connector's Data Integrity proofs: the DID of a keystore key and its method.

The controller of a proof's verification method must be the credential's ``issuer`` (a
verifier checks that the issuer authorised the key), so a Data Integrity credential names a
DID as its issuer, never the connector's https issuer id:

* **did:key** (the default): the DID is the signing key itself,
  ``did:key:<Multikey>``, and its one verification method ``did:key:<Multikey>#<Multikey>``
  (W3C CCG did:key). Nothing to publish; a new key is a new DID.
* **did:web** (``PAVILION_DID_WEB``): one DID for the connector whose document lists every
  credential-signing key that still verifies (active, pending and inactive; retired keys
  leave it as they leave the JWKS), each a ``Multikey`` with the key's RFC 7638 thumbprint as
  its fragment, under ``assertionMethod``. The connector serves that document
  (``/.well-known/did.json``, and the DID's own path), so rotation needs no republishing.

Pure: the keys come in as public JWKs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pavilion.credentials.data_integrity.did import did_web_url
from pavilion.credentials.data_integrity.multikey import encode_public_key, public_key_from_jwk
from pavilion.credentials.report import CheckFailed
from pavilion.jose import jwk_thumbprint

DID_CONTEXTS: Final = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


def multikey_of(jwk: Mapping[str, str]) -> str:
    """The ``publicKeyMultibase`` of a public JWK (Ed25519 or P-256)."""
    return encode_public_key(public_key_from_jwk(dict(jwk)))


def did_key_of(jwk: Mapping[str, str]) -> tuple[str, str]:
    """(the did:key DID, its verification method) of a public JWK."""
    multibase = multikey_of(jwk)
    return f"did:key:{multibase}", f"did:key:{multibase}#{multibase}"


def check_did_web(did: str) -> str:
    """``did`` if it is a did:web DID this connector can name itself by, else ValueError."""
    try:
        did_web_url(did)
    except CheckFailed as exc:
        raise ValueError(exc.reason) from exc
    if "#" in did or "?" in did:
        raise ValueError(f"{did!r} must be a DID, without a fragment or a query")
    return did


class IssuerDid:
    """The DID this connector signs Data Integrity proofs as (did:web if set, else did:key)."""

    def __init__(self, did_web: str | None = None) -> None:
        self.did_web = check_did_web(did_web) if did_web else None

    def method_for(self, jwk: Mapping[str, str]) -> tuple[str, str]:
        """(issuer DID, verification method id) for a credential signed by ``jwk``'s key."""
        if self.did_web is None:
            return did_key_of(jwk)
        return self.did_web, f"{self.did_web}#{_kid(jwk)}"

    def document(self, jwks: Sequence[Mapping[str, str]]) -> dict[str, Any] | None:
        """The did:web DID document listing ``jwks`` for assertionMethod (None: no did:web)."""
        if self.did_web is None:
            return None
        did = self.did_web
        methods = [
            {
                "id": f"{did}#{_kid(jwk)}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey_of(jwk),
            }
            for jwk in jwks
        ]
        return {
            "@context": list(DID_CONTEXTS),
            "id": did,
            "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods],
        }

    def document_path(self) -> str | None:
        """The path of the did:web document under the DID's host (None: no did:web)."""
        if self.did_web is None:
            return None
        url = did_web_url(self.did_web)
        return "/" + url.split("/", 3)[3]


def _kid(jwk: Mapping[str, str]) -> str:
    return str(jwk.get("kid") or jwk_thumbprint(dict(jwk)))
