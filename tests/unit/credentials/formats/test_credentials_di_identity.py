"""Who the connector signs Data Integrity proofs as: did:key of the key, or its did:web (the
did:key and did:web method specifications), and the options that pick the cryptosuite."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from credentials_support import eddsa, es256
from di_support import key_of_jwk, key_of_multikey
from pavilion.config.settings import load_settings
from pavilion.credentials import embedded
from pavilion.credentials.data_integrity import did
from pavilion.credentials.data_integrity.identity import IssuerDid, did_key_of, multikey_of
from pavilion.errors import ConfigurationError, InvalidRequest


def _der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def test_did_key_is_the_key_and_its_one_method_repeats_it() -> None:
    for signer in (eddsa(), es256()):
        jwk = signer.public_jwk()
        issuer, method = did_key_of(jwk)
        multibase = multikey_of(jwk)
        assert issuer == f"did:key:{multibase}"
        assert method == f"{issuer}#{multibase}"
        assert multibase.startswith("z6Mk" if signer.algorithm == "EdDSA" else "zDn")
        # an independent decoder gets the same public key back
        decoded = key_of_multikey(multibase)
        assert _der(key_of_jwk(jwk)) == _der(decoded)
        assert IssuerDid().method_for(jwk) == (issuer, method)
    assert IssuerDid().document([eddsa().public_jwk()]) is None
    assert IssuerDid().document_path() is None


def test_a_did_web_lists_every_key_for_assertion_under_its_thumbprint() -> None:
    keys = [es256().public_jwk(), eddsa().public_jwk()]
    issuer = IssuerDid("did:web:connector.example%3A8443")
    document = issuer.document(keys)
    assert document is not None
    assert document["id"] == "did:web:connector.example%3A8443"
    ids = [f"did:web:connector.example%3A8443#{k['kid']}" for k in keys]
    assert [m["id"] for m in document["verificationMethod"]] == ids
    assert document["assertionMethod"] == ids
    assert "authentication" not in document  # these keys never authenticate the connector
    assert issuer.method_for(keys[0]) == ("did:web:connector.example%3A8443", ids[0])
    assert issuer.document_path() == "/.well-known/did.json"
    assert IssuerDid("did:web:connector.example:issuers:acme").document_path() == (
        "/issuers/acme/did.json"
    )
    # the resolver finds each key under the relationship a credential proof claims
    methods = did.controller_methods(document)
    assert {m.id for m in methods if "assertionMethod" in m.relationships} == set(ids)


@pytest.mark.parametrize(
    "bad", ["did:key:z6Mk", "did:web:", "did:web:a%2Fb", "did:web:host#key", "https://x"]
)
def test_a_did_web_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"did:web|fragment|host"):
        IssuerDid(bad)


def test_the_did_web_setting_is_checked_at_start_up() -> None:
    assert load_settings(None, did_web="did:web:connector.example").did_web
    assert load_settings(None).did_web == ""
    for bad in ("did:key:z6Mk", "did:web:host#key", "did:web:a/b"):
        with pytest.raises(ConfigurationError, match="PAVILION_DID_WEB"):
            load_settings(None, did_web=bad)


def test_each_cryptosuite_names_the_key_algorithm_that_signs_it() -> None:
    assert embedded.algorithm_for("eddsa-rdfc-2022") == "EdDSA"
    assert embedded.algorithm_for("ecdsa-rdfc-2019") == "ES256"
    with pytest.raises(InvalidRequest) as caught:
        embedded.algorithm_for("bbs-2023")
    assert caught.value.field == "options.cryptosuite"
