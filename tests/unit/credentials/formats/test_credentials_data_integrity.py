"""Data Integrity proofs (eddsa-rdfc-2022, ecdsa-rdfc-2019): the specs' own test vectors, the
MUSTs of the verification algorithms, and a check that recomputes every proof independently
(pyld's canonicalisation and pyca's signature verification, called directly)."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pyld import jsonld as pyld_jsonld

from credentials_support import eddsa, es256
from pavilion.credentials import jsonld
from pavilion.credentials.data_integrity import did, multikey, proofs
from pavilion.credentials.data_integrity.canon import canonicalize
from pavilion.credentials.data_integrity.did import Resolver
from pavilion.credentials.report import CheckFailed, CheckName
from pavilion.errors import InvalidRequest
from pavilion.keystore.software_signer import SoftwareSigner

VECTORS = Path(__file__).parents[3] / "data" / "data_integrity"
ISSUER = "https://vc.example/issuers/5678"
VECTOR_TIME = datetime(2024, 1, 1, tzinfo=UTC)
KEYS = json.loads((VECTORS / "keys.json").read_text("utf-8"))


def vector(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VECTORS / name).read_text("utf-8"))
    return loaded


def controller(issuer: str, *public_keys: str) -> dict[str, Any]:
    """A controller document listing each Multikey for assertionMethod."""
    methods = [
        {
            "id": f"{issuer}#{key}",
            "type": "Multikey",
            "controller": issuer,
            "publicKeyMultibase": key,
        }
        for key in public_keys
    ]
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": issuer,
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }


VECTOR_RESOLVER = Resolver(
    controllers={
        ISSUER: controller(
            ISSUER, KEYS["ed25519"]["publicKeyMultibase"], KEYS["p256"]["publicKeyMultibase"]
        )
    }
)


async def test_the_eddsa_rdfc_2022_test_vector_verifies() -> None:
    result = await proofs.verify_proof(
        vector("eddsa-rdfc-2022-signed.json"), VECTOR_RESOLVER, now=VECTOR_TIME, controller=ISSUER
    )
    assert result.cryptosuite == "eddsa-rdfc-2022"
    assert result.controller == ISSUER
    assert result.created == datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)


def test_the_ecdsa_rdfc_2019_test_vector_signature_verifies() -> None:
    """The vector predates the typed cryptosuite literal (see tests/data/data_integrity):
    its signature covers its published proof configuration and our canonical document."""
    signed = vector("ecdsa-rdfc-2019-p256-signed.json")
    document = {k: v for k, v in signed.items() if k != "proof"}
    document_hash = hashlib.sha256(canonicalize(document).encode()).digest()
    assert document_hash.hex() == (
        "517744132ae165a5349155bef0bb0cf2258fff99dfe1dbd914b938d775a36017"
    )  # the vector's own document hash
    proof_canon = (VECTORS / "ecdsa-rdfc-2019-p256-proof-canon.txt").read_bytes()
    data = hashlib.sha256(proof_canon).digest() + document_hash
    method = did.did_key_method(f"did:key:{KEYS['p256']['publicKeyMultibase']}")
    signature = multikey.multibase_decode(signed["proof"]["proofValue"])
    proofs.verify_signature(method, "ecdsa-rdfc-2019", data, signature)
    with pytest.raises(CheckFailed, match="does not verify"):
        proofs.verify_signature(method, "ecdsa-rdfc-2019", data[::-1], signature)


async def test_signing_the_eddsa_vector_reproduces_its_proof_value() -> None:
    """Ed25519 is deterministic: the published key must give the published proofValue."""
    private = multikey.multibase_decode(KEYS["ed25519"]["privateKeyMultibase"])
    assert private[:2] == b"\x80\x26"  # the ed25519-priv multicodec header
    signer = SoftwareSigner(ed25519.Ed25519PrivateKey.from_private_bytes(private[2:]))
    signed = vector("eddsa-rdfc-2022-signed.json")
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    again = await proofs.add_proof(
        unsigned,
        signer,
        verification_method=signed["proof"]["verificationMethod"],
        created=datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC),
    )
    assert again == signed


def independent_check(secured: dict[str, Any]) -> None:
    """The cryptosuites' verification, written again here on pyld and pyca only."""
    documents = {url: {"@context": jsonld.cached_context(url)} for url in jsonld.CONTEXT_FILES}

    def loader(url: str, options: Any = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(documents[url])}

    def canon(value: dict[str, Any]) -> bytes:
        options = {"algorithm": "URDNA2015", "format": "application/n-quads"}
        text: str = pyld_jsonld.normalize(value, {**options, "documentLoader": loader})
        return hashlib.sha256(text.encode()).digest()

    document = copy.deepcopy(secured)
    proof = document.pop("proof")
    value = proof.pop("proofValue")
    data = canon({**proof, "@context": document["@context"]}) + canon(document)
    signature = multikey.base58btc_decode(value[1:])
    method = proof["verificationMethod"].split("#")[1]
    key = multikey.decode_public_key(method)
    if proof["cryptosuite"] == "eddsa-rdfc-2022":
        assert isinstance(key, ed25519.Ed25519PublicKey)
        key.verify(signature, data)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def unsigned_credential(issuer: str) -> dict[str, Any]:
    return {
        "@context": [jsonld.VC_V2, jsonld.EXAMPLES_V2],
        "id": "urn:uuid:0b6e2f4e-5c43-4f0e-9a57-5f3c6f1d2a10",
        "type": ["VerifiableCredential", "ExampleAlumniCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abc", "alumniOf": "Example University"},
    }


async def did_key_proof(signer: SoftwareSigner) -> tuple[dict[str, Any], str]:
    public = multikey.encode_public_key(multikey.public_key_from_jwk(signer.public_jwk()))
    issuer = f"did:key:{public}"
    secured = await proofs.add_proof(
        unsigned_credential(issuer),
        signer,
        verification_method=f"{issuer}#{public}",
        created=VECTOR_TIME,
    )
    return secured, issuer


@pytest.mark.parametrize("make", [eddsa, es256], ids=["eddsa-rdfc-2022", "ecdsa-rdfc-2019"])
async def test_our_proofs_verify_here_and_independently(make: Any) -> None:
    signer = make()
    secured, issuer = await did_key_proof(signer)
    assert secured["proof"]["cryptosuite"] == proofs.CRYPTOSUITES[signer.algorithm]
    independent_check(secured)
    result = await proofs.verify_proof(secured, Resolver(), now=VECTOR_TIME, controller=issuer)
    assert result.verification_method == secured["proof"]["verificationMethod"]


async def refused(secured: dict[str, Any], resolver: Resolver | None = None, **kw: Any) -> str:
    with pytest.raises(CheckFailed) as caught:
        await proofs.verify_proof(
            secured, resolver or VECTOR_RESOLVER, now=kw.pop("now", VECTOR_TIME), **kw
        )
    return caught.value.code


def _proof(**changes: Any) -> dict[str, Any]:
    secured = vector("eddsa-rdfc-2022-signed.json")
    secured["proof"].update(changes)
    return secured


async def test_each_verification_must_fails_with_its_reason() -> None:
    # The signature covers the document: any change to a claim breaks it.
    tampered = vector("eddsa-rdfc-2022-signed.json")
    tampered["credentialSubject"]["alumniOf"] = "Another School"
    assert await refused(tampered) == "bad_signature"
    # ...and the proof options (created is hashed in the proof configuration).
    assert await refused(_proof(created="2023-02-24T23:36:39Z")) == "bad_signature"
    # proof type and cryptosuite must be the ones specified.
    assert await refused(_proof(type="Ed25519Signature2020")) == "unknown_proof_type"
    assert await refused(_proof(cryptosuite="eddsa-jcs-2022")) == "unknown_cryptosuite"
    # proofValue: multibase base58btc, 64 bytes.
    assert await refused(_proof(proofValue="u" + "A" * 86)) == "bad_proof_value"
    assert await refused(_proof(proofValue="z" + "1" * 10)) == "bad_proof_value"
    assert await refused(_proof(proofValue="z0OIl")) == "bad_proof_value"
    # created/expires: dateTimeStamps; an expired proof fails.
    assert await refused(_proof(created="2023-02-24")) == "bad_proof_date"
    assert await refused(_proof(expires="2023-03-01T00:00:00Z")) == "proof_expired"
    # the proof purpose must be the one the verifier expects.
    assert await refused(_proof(proofPurpose="authentication")) == "wrong_proof_purpose"
    # proof.@context must be a prefix of the document's @context.
    assert await refused(_proof(**{"@context": [jsonld.VC_V1]})) == "proof_context_mismatch"
    # the controller must be the issuer.
    code = await refused(vector("eddsa-rdfc-2022-signed.json"), controller="https://x.example")
    assert code == "controller_not_issuer"
    # a cryptosuite with the other curve's key.
    swapped = _proof(
        verificationMethod=f"{ISSUER}#{KEYS['p256']['publicKeyMultibase']}",
    )
    assert await refused(swapped) == "wrong_key_type"
    # one proof at a time; a document without one.
    two = vector("eddsa-rdfc-2022-signed.json")
    two["proof"] = [two["proof"], two["proof"]]
    assert await refused(two) == "proof_set"
    assert await refused({"@context": [jsonld.VC_V2]}) == "no_proof"


async def test_a_proof_list_of_one_is_a_proof() -> None:
    secured = vector("eddsa-rdfc-2022-signed.json")
    secured["proof"] = [secured["proof"]]
    assert (await proofs.verify_proof(secured, VECTOR_RESOLVER, now=VECTOR_TIME)).controller


async def test_terms_that_expansion_would_drop_are_refused_before_the_signature() -> None:
    """An undefined term vanishes in JSON-LD expansion: the proof would not cover it."""
    secured, issuer = await did_key_proof(eddsa())
    secured["@context"] = [jsonld.VC_V2]  # the examples @vocab gone: alumniOf is undefined
    with pytest.raises(CheckFailed) as caught:
        await proofs.verify_proof(secured, Resolver(), now=VECTOR_TIME)
    assert caught.value.check is CheckName.SCHEMA
    with pytest.raises(InvalidRequest):
        await proofs.add_proof(
            {**unsigned_credential(issuer), "@context": [jsonld.VC_V2]},
            eddsa(),
            verification_method="did:key:z#z",
            created=VECTOR_TIME,
        )


async def test_add_proof_refuses_a_document_that_has_one() -> None:
    with pytest.raises(InvalidRequest, match="already carries a proof"):
        await proofs.add_proof(
            vector("eddsa-rdfc-2022-signed.json"),
            eddsa(),
            verification_method="x",
            created=VECTOR_TIME,
        )


async def test_verification_methods_must_be_authorised_by_their_controller() -> None:
    document = controller(ISSUER, KEYS["ed25519"]["publicKeyMultibase"])
    document["authentication"] = document.pop("assertionMethod")
    resolver = Resolver(controllers={ISSUER: document})
    assert await refused(vector("eddsa-rdfc-2022-signed.json"), resolver) == "method_not_authorized"
    # a method the controller does not have, and a URL nobody resolves
    assert await refused(_proof(verificationMethod=f"{ISSUER}#zUnknown")) == (
        "unresolvable_verification_method"
    )
    assert await refused(_proof(verificationMethod="https://other.example/k#1")) == (
        "unresolvable_verification_method"
    )
    assert await refused(_proof(verificationMethod=7)) == "bad_verification_method"


async def test_did_key_rules() -> None:
    signer = eddsa()
    public = multikey.encode_public_key(multikey.public_key_from_jwk(signer.public_jwk()))
    method = did.did_key_method(f"did:key:{public}#{public}")
    assert method.controller == f"did:key:{public}"
    assert "assertionMethod" in method.relationships
    with pytest.raises(CheckFailed, match="fragment repeats the key"):
        did.did_key_method(f"did:key:{public}#other")
    with pytest.raises(CheckFailed):
        did.did_key_method("did:key:zNotAKey")


def test_did_web_urls_follow_the_method_specification() -> None:
    assert did.did_web_url("did:web:w3c-ccg.github.io") == (
        "https://w3c-ccg.github.io/.well-known/did.json"
    )
    assert did.did_web_url("did:web:w3c-ccg.github.io:user:alice") == (
        "https://w3c-ccg.github.io/user/alice/did.json"
    )
    assert did.did_web_url("did:web:example.com%3A3000:user:alice") == (
        "https://example.com:3000/user/alice/did.json"
    )
    for bad in ("did:web:", "did:key:z6Mk", "did:web:a%2Fb"):
        with pytest.raises(CheckFailed):
            did.did_web_url(bad)


async def test_did_web_through_an_injected_fetcher() -> None:
    signer = es256()
    public = multikey.encode_public_key(multikey.public_key_from_jwk(signer.public_jwk()))
    issuer = "did:web:issuer.example"
    documents = {"https://issuer.example/.well-known/did.json": controller(issuer, public)}
    fetched: list[str] = []

    async def fetch(url: str) -> Any:
        fetched.append(url)
        return documents.get(url)

    secured = await proofs.add_proof(
        unsigned_credential(issuer),
        signer,
        verification_method=f"{issuer}#{public}",
        created=VECTOR_TIME,
    )
    result = await proofs.verify_proof(
        secured, Resolver(did_web=fetch), now=VECTOR_TIME, controller=issuer
    )
    assert result.controller == issuer
    assert fetched
    # a document that is not the DID's, and did:web without a fetcher
    documents["https://issuer.example/.well-known/did.json"] = controller(
        "did:web:evil.example", public
    )
    assert await refused(secured, Resolver(did_web=fetch)) == "bad_controller_document"
    assert await refused(secured, Resolver()) == "unresolvable_verification_method"


def test_multikeys_round_trip_and_are_strict() -> None:
    for signer in (eddsa(), es256()):
        key = multikey.public_key_from_jwk(signer.public_jwk())
        encoded = multikey.encode_public_key(key)
        assert encoded.startswith("z6Mk" if signer.algorithm == "EdDSA" else "zDn")
        assert multikey.encode_public_key(multikey.decode_public_key(encoded)) == encoded
    assert multikey.base58btc_encode(b"\0\0\x01") == "112"
    assert multikey.base58btc_decode("112") == b"\0\0\x01"
    bad = [
        "6MkNoPrefix",
        multikey.multibase_encode(b"\xed\x01" + b"\0" * 31),
        multikey.multibase_encode(b"\x80\x24" + b"\x02" + b"\xff" * 32),
        multikey.multibase_encode(b"\x12\x00" + b"\0" * 32),
    ]
    for text in bad:
        with pytest.raises(multikey.MultibaseError):
            multikey.decode_public_key(text)
    with pytest.raises(multikey.MultibaseError):
        multikey.encode_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(multikey.MultibaseError):
        multikey.public_key_from_jwk({"kty": "RSA"})


def test_controller_documents_with_unusable_methods_are_refused() -> None:
    document = controller(ISSUER, KEYS["ed25519"]["publicKeyMultibase"])
    document["verificationMethod"][0]["type"] = "RsaVerificationKey2018"
    with pytest.raises(CheckFailed, match="not Multikey"):
        did.controller_methods(document)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "d": "A" * 43}
    document["verificationMethod"][0] = {"id": "#k", "type": "JsonWebKey", "publicKeyJwk": jwk}
    with pytest.raises(CheckFailed, match="private key"):
        did.controller_methods(document)
    with pytest.raises(CheckFailed, match="no id"):
        did.controller_methods({})
    embedded = {
        "id": ISSUER,
        "assertionMethod": [
            {"id": "#k", "type": "JsonWebKey", "publicKeyJwk": eddsa().public_jwk()}
        ],
    }
    (method,) = did.controller_methods(embedded)
    assert method.id == f"{ISSUER}#k"
    assert method.relationships == {"assertionMethod"}
