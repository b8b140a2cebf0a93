"""Data Integrity proofs with the ``eddsa-rdfc-2022`` and ``ecdsa-rdfc-2019`` cryptosuites.

Written from W3C *Verifiable Credential Data Integrity 1.0* (sections 2.1 and 4) and the two
cryptosuite specifications (*Data Integrity EdDSA Cryptosuites v1.0*, section 3.3;
*Data Integrity ECDSA Cryptosuites v1.0*, section 3.3, P-256 only):

* proof configuration: ``type`` ``DataIntegrityProof``, ``cryptosuite``, ``created`` (an XML
  Schema dateTimeStamp), ``verificationMethod``, ``proofPurpose``, and the document's
  ``@context``; canonicalised with RDFC-1.0;
* transformation: the document without ``proof``, canonicalised with RDFC-1.0;
* hashing: SHA-256(canonical proof configuration) || SHA-256(canonical document);
* signing: Ed25519 over those 64 bytes, or ECDSA P-256 with SHA-256 over them (``r || s``),
  both through a :class:`~pavilion.keystore.signer.Signer` (an HSM signs); ``proofValue`` is
  the multibase base58btc (``z``) signature.

Verification refuses, each with its own reason: another proof ``type`` or ``cryptosuite``, a
``proofValue`` that is not base58btc or not 64 bytes, a ``created``/``expires`` that is not a
dateTimeStamp, an expired proof, a ``proof.@context`` that the document's ``@context`` does not
start with, another ``proofPurpose`` than expected, a verification method its controller does
not list for that purpose, a key of the wrong curve, a controller that is not the issuer, a
document with terms its contexts do not define (JSON-LD expansion would silently drop them),
and a signature that does not verify; a presentation's proof (``authentication``) also names
the verifier's ``challenge`` and ``domain`` (section 4.3), else a ``key_binding`` failure.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pavilion.credentials import jsonld
from pavilion.credentials.data_integrity.canon import CanonicalizationError, canonicalize
from pavilion.credentials.data_integrity.did import Resolver, VerificationMethod
from pavilion.credentials.data_integrity.multikey import (
    MultibaseError,
    PublicKey,
    multibase_decode,
    multibase_encode,
)
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.credentials.timeutil import iso, parse_date_time_stamp
from pavilion.errors import InvalidRequest
from pavilion.keystore.signer import Signer

PROOF_TYPE: Final = "DataIntegrityProof"
EDDSA_RDFC_2022: Final = "eddsa-rdfc-2022"
ECDSA_RDFC_2019: Final = "ecdsa-rdfc-2019"
#: The format name a credential secured with an embedded proof is recorded and reported as.
FORMAT_NAME: Final = "data_integrity"
#: Signer algorithm -> the cryptosuite it signs.
CRYPTOSUITES: Final = {"EdDSA": EDDSA_RDFC_2022, "ES256": ECDSA_RDFC_2019}


@dataclass(frozen=True)
class VerifiedProof:
    cryptosuite: str
    verification_method: str
    controller: str
    created: datetime | None
    #: The verification method's public key (the caller decides whether it trusts it).
    key: PublicKey
    #: The proof's options as signed (everything but ``proofValue``).
    options: dict[str, Any]


def _fail(code: str, reason: str) -> CheckFailed:
    return CheckFailed(CheckName.SIGNATURE, code, reason)


def hash_data(document: Mapping[str, Any], proof_config: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical proof configuration, then of the canonical document."""
    try:
        proof_canon = canonicalize(dict(proof_config))
        document_canon = canonicalize(dict(document))
    except CanonicalizationError as exc:
        raise _fail("canonicalization_failed", f"RDF canonicalisation failed: {exc}") from exc
    return (
        hashlib.sha256(proof_canon.encode()).digest()
        + hashlib.sha256(document_canon.encode()).digest()
    )


async def add_proof(
    document: Mapping[str, Any],
    signer: Signer,
    *,
    verification_method: str,
    created: datetime,
    proof_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """The document with a ``DataIntegrityProof`` signed by ``signer`` (its algorithm picks
    the cryptosuite). The document must be well-formed JSON-LD for the cached contexts.
    ``challenge`` and ``domain`` bind a presentation's proof to one verifier."""
    if "proof" in document:
        raise InvalidRequest("the document already carries a proof", field="credential.proof")
    cryptosuite = CRYPTOSUITES.get(signer.algorithm)
    if cryptosuite is None:  # pragma: no cover - Signer.algorithm is ES256 or EdDSA
        raise InvalidRequest(f"no Data Integrity cryptosuite for {signer.algorithm}")
    jsonld.check_document(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": cryptosuite,
        "created": iso(created),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    try:
        data = hash_data(document, {**proof, "@context": document["@context"]})
    except CheckFailed as exc:
        raise InvalidRequest(exc.reason, field="credential") from exc
    signature = await signer.sign(data)
    return {
        **copy.deepcopy(dict(document)),
        "proof": {**proof, "proofValue": multibase_encode(signature)},
    }


def _proof_object(secured: Mapping[str, Any]) -> dict[str, Any]:
    proof = secured.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise _fail("proof_set", "proof sets and chains are not supported: send one proof")
        proof = proof[0]
    if not isinstance(proof, dict):
        raise _fail("no_proof", "the document has no proof object")
    return proof


def _check_binding(proof: Mapping[str, Any], challenge: str | None, domain: str | None) -> None:
    """Data Integrity 1.0 section 4.3 (Verify Proof): an expected ``domain`` MUST equal the
    proof's (or be one of them, when it lists several); an expected ``challenge`` MUST equal
    the proof's."""
    if domain is not None:
        given = proof.get("domain")
        if domain not in (given if isinstance(given, list) else [given]):
            raise CheckFailed(
                CheckName.KEY_BINDING,
                "wrong_domain",
                "the proof's domain does not name this verifier (options.domain)",
            )
    if challenge is not None and proof.get("challenge") != challenge:
        raise CheckFailed(
            CheckName.KEY_BINDING,
            "wrong_challenge",
            "the proof's challenge is not this verification's (options.challenge)",
        )


def _check_proof_options(
    proof: Mapping[str, Any], document: Mapping[str, Any], *, purpose: str, now: datetime
) -> None:
    if proof.get("type") != PROOF_TYPE:
        raise _fail("unknown_proof_type", f"proof type must be {PROOF_TYPE}")
    if proof.get("cryptosuite") not in (EDDSA_RDFC_2022, ECDSA_RDFC_2019):
        raise _fail(
            "unknown_cryptosuite",
            f"cryptosuite {proof.get('cryptosuite')!r} is not {EDDSA_RDFC_2022} or "
            f"{ECDSA_RDFC_2019}",
        )
    if proof.get("proofPurpose") != purpose:
        raise _fail(
            "wrong_proof_purpose",
            f"proofPurpose must be {purpose}, not {proof.get('proofPurpose')!r}",
        )
    for member in ("created", "expires"):
        if member in proof:
            try:
                moment = parse_date_time_stamp(proof[member], f"proof.{member}")
            except CheckFailed as exc:
                raise _fail("bad_proof_date", exc.reason) from exc
            if member == "expires" and now >= moment:
                raise _fail("proof_expired", f"the proof expired at {iso(moment)}")
    if "@context" in proof:
        expected = proof["@context"] if isinstance(proof["@context"], list) else [proof["@context"]]
        actual = document.get("@context")
        actual = actual if isinstance(actual, list) else [actual]
        if actual[: len(expected)] != expected:
            raise _fail(
                "proof_context_mismatch",
                "the document's @context does not start with the proof's @context",
            )


def verify_signature(
    method: VerificationMethod, cryptosuite: str, data: bytes, signature: bytes
) -> None:
    """Check a proof's signature over its hash data with the verification method's key."""
    key = method.key
    try:
        if cryptosuite == EDDSA_RDFC_2022:
            if not isinstance(key, Ed25519PublicKey):
                raise _fail("wrong_key_type", f"{method.id} is not an Ed25519 key")
            key.verify(signature, data)
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise _fail("wrong_key_type", f"{method.id} is not a P-256 key")
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise _fail(
            "bad_signature", f"the {cryptosuite} proof does not verify with {method.id}"
        ) from exc


async def verify_proof(
    secured: Mapping[str, Any],
    resolver: Resolver,
    *,
    now: datetime,
    purpose: str = "assertionMethod",
    controller: str | None = None,
    challenge: str | None = None,
    domain: str | None = None,
) -> VerifiedProof:
    """Verify the one Data Integrity proof of ``secured``; raises CheckFailed (signature;
    key_binding for a ``challenge`` or ``domain`` the proof does not carry)."""
    proof = _proof_object(secured)
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    _check_proof_options(proof, unsecured, purpose=purpose, now=now)
    _check_binding(proof, challenge, domain)
    try:
        signature = multibase_decode(proof.get("proofValue"))
    except MultibaseError as exc:
        raise _fail("bad_proof_value", f"proofValue: {exc}") from exc
    if len(signature) != 64:
        raise _fail("bad_proof_value", "proofValue must hold a 64-byte signature")
    method = await resolver.method(proof.get("verificationMethod"))
    if purpose not in method.relationships:
        raise _fail(
            "method_not_authorized",
            f"{method.id} is not listed for {purpose} by its controller {method.controller}",
        )
    if controller is not None and method.controller != controller:
        raise _fail(
            "controller_not_issuer",
            f"the verification method's controller {method.controller} is not the issuer "
            f"{controller}",
        )
    try:
        jsonld.check_document(unsecured)
    except jsonld.JsonLdError as exc:
        raise CheckFailed(CheckName.SCHEMA, "json_ld", exc.detail) from exc
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    options["@context"] = unsecured.get("@context")
    data = hash_data(unsecured, options)
    cryptosuite = str(proof["cryptosuite"])
    verify_signature(method, cryptosuite, data, signature)
    created = (
        parse_date_time_stamp(proof["created"], "proof.created") if "created" in proof else None
    )
    return VerifiedProof(
        cryptosuite,
        method.id,
        method.controller,
        created,
        key=method.key,
        options={k: v for k, v in proof.items() if k != "proofValue"},
    )
