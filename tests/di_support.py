"""An independent Data Integrity verifier for the tests: pyld, PyJWT and pyca only.

It re-does what the cryptosuites specify (eddsa-rdfc-2022 and ecdsa-rdfc-2019, section 3.3
of each: RDFC-1.0 of the proof configuration and of the document, SHA-256 of each,
concatenated, then Ed25519 or ECDSA P-256/SHA-256 over the 64 bytes) without the connector's
code: its own base58btc decoder, pyld called directly (over the context files the connector
ships, as a verifier would have them cached), and the key taken from a JWK (the JWKS, or a
DID document) through PyJWT.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pyld import jsonld as pyld_jsonld

from jose_support import pyjwk

_CONTEXTS = Path(__file__).parents[1] / "src" / "pavilion" / "credentials" / "contexts"
_CONTEXT_FILES = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.json",
    "https://www.w3.org/ns/credentials/examples/v2": "credentials-examples-v2.json",
    "https://pavilion.example/contexts/eligibility/v1": "pavilion-eligibility-v1.json",
}
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _ALPHABET[remainder] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def b58decode(text: str) -> bytes:
    number = 0
    for character in text:
        number = number * 58 + _ALPHABET.index(character)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _loader(url: str, options: Any = None) -> dict[str, Any]:
    document = json.loads((_CONTEXTS / _CONTEXT_FILES[url]).read_text("utf-8"))
    context = document.get("@context", document) if isinstance(document, dict) else document
    return {"contextUrl": None, "documentUrl": url, "document": {"@context": context}}


def _canonical_hash(value: dict[str, Any]) -> bytes:
    options = {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": _loader}
    text: str = pyld_jsonld.normalize(copy.deepcopy(value), options)
    assert text  # a document that canonicalises to nothing signs nothing
    return hashlib.sha256(text.encode()).digest()


def key_of_jwk(jwk: dict[str, Any]) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    key = pyjwk(jwk).key
    assert isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return key


def key_of_multikey(multibase: str) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    """A Multikey's key: ``z`` + base58btc(0xed01 + Ed25519, or 0x8024 + compressed P-256)."""
    assert multibase.startswith("z")
    data = b58decode(multibase[1:])
    if data[:2] == b"\xed\x01":
        return ed25519.Ed25519PublicKey.from_public_bytes(data[2:])
    assert data[:2] == b"\x80\x24"
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data[2:])


def verify_independently(
    secured: dict[str, Any], key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
) -> None:
    """Raises (InvalidSignature, AssertionError) unless ``secured``'s proof verifies."""
    document = copy.deepcopy(secured)
    proof = document.pop("proof")
    signature = b58decode(proof.pop("proofValue")[1:])
    assert len(signature) == 64
    data = _canonical_hash({**proof, "@context": document["@context"]}) + _canonical_hash(document)
    if proof["cryptosuite"] == "eddsa-rdfc-2022":
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(signature, data)
    else:
        assert proof["cryptosuite"] == "ecdsa-rdfc-2019"
        assert isinstance(key, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def sign_independently(
    document: dict[str, Any],
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
    verification_method: str,
    *,
    created: str,
    purpose: str = "authentication",
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """``document`` with a Data Integrity proof made here (a holder's wallet, say)."""
    eddsa = isinstance(private, ed25519.Ed25519PrivateKey)
    proof: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022" if eddsa else "ecdsa-rdfc-2019",
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    data = _canonical_hash({**proof, "@context": document["@context"]}) + _canonical_hash(document)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        signature = private.sign(data)
    else:
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {**copy.deepcopy(document), "proof": {**proof, "proofValue": "z" + b58encode(signature)}}
