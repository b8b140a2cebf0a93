"""Keys generated in a real SoftHSM2 token; signatures checked with independent libraries."""

from __future__ import annotations

import hashlib
import json

import jwt
import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hsm_support import SoftHsm, raw_session, verify_with_cryptography
from joserfc.jwk import ECKey, OKPKey
from pkcs11 import Attribute, KeyType, ObjectClass

from jose_support import pyjwk
from pavilion.jose import b64url, b64url_decode, jwk_thumbprint, jws_alg
from pavilion.keystore.pkcs11 import KeyInfo, Pkcs11Signer, Pkcs11Token
from pavilion.keystore.signer import Signer

pytestmark = pytest.mark.softhsm


async def compact_jws(signer: Pkcs11Signer, claims: dict[str, object]) -> str:
    header = {"alg": jws_alg(signer.algorithm), "typ": "JWT", "kid": signer.key_id}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64url(await signer.sign(signing_input.encode("ascii")))


def joserfc_thumbprint(jwk: dict[str, str]) -> str:
    public: dict[str, str | list[str]] = {k: v for k, v in jwk.items() if k not in ("kid", "alg")}
    key = ECKey.import_key(public) if jwk["kty"] == "EC" else OKPKey.import_key(public)
    return str(key.thumbprint())


@pytest.mark.parametrize(
    ("algorithm", "key_type", "jwt_alg"),
    [("ES256", KeyType.EC, "ES256"), ("EdDSA", KeyType.EC_EDWARDS, "Ed25519")],
)
async def test_generated_key_signs_for_independent_verifiers(
    softhsm: SoftHsm, algorithm: str, key_type: KeyType, jwt_alg: str
) -> None:
    async with Pkcs11Token(softhsm.config()) as token:
        signer = await token.agenerate_key("issuer-1", algorithm)  # type: ignore[arg-type]
        assert isinstance(signer, Signer)
        assert signer.algorithm == algorithm
        jwk = signer.public_jwk()
        assert jwk["alg"] == jwt_alg  # an Ed25519 key is published under RFC 9864's name
        assert jwk["kid"] == signer.key_id == jwk_thumbprint(jwk) == joserfc_thumbprint(jwk)

        for message in (b"", b"hello", bytes(range(256)) * 40):
            signature = await signer.sign(message)
            verify_with_cryptography(jwk, message, signature)
            with pytest.raises(InvalidSignature):
                verify_with_cryptography(jwk, message + b"!", signature)
        blocking = signer.sign_blocking(b"from a CLI")
        verify_with_cryptography(jwk, b"from a CLI", blocking)

        token_text = await compact_jws(signer, {"sub": "eligibility", "n": 7})
        claims = jwt.decode(token_text, key=pyjwk(jwk).key, algorithms=[jwt_alg])
        assert claims == {"sub": "eligibility", "n": 7}
        tampered = token_text[:-6] + ("AAAAAA" if not token_text.endswith("AAAAAA") else "BBBBBB")
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(tampered, key=pyjwk(jwk).key, algorithms=[jwt_alg])

        info = signer.info
        assert info == await token.akey_info("issuer-1")
        assert (info.sensitive, info.extractable) == (True, False)
        assert (info.always_sensitive, info.never_extractable, info.local) == (True, True, True)
        assert (info.on_token, info.private) == (True, True)
        cka_id = bytes.fromhex(info.cka_id)
        assert len(cka_id) == 16

    # Read the attributes back with python-pkcs11 directly, not through our worker.
    with raw_session(softhsm) as session:
        private_key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="issuer-1")
        public_key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label="issuer-1")
        assert private_key[Attribute.KEY_TYPE] == key_type
        assert private_key[Attribute.TOKEN] is True
        assert private_key[Attribute.SENSITIVE] is True
        assert private_key[Attribute.EXTRACTABLE] is False
        assert private_key[Attribute.ALWAYS_SENSITIVE] is True
        assert private_key[Attribute.NEVER_EXTRACTABLE] is True
        assert private_key[Attribute.SIGN] is True
        assert private_key[Attribute.ID] == cka_id == public_key[Attribute.ID]
        assert private_key[Attribute.LABEL] == "issuer-1"
        assert public_key[Attribute.TOKEN] is True
        with pytest.raises(pkcs11.AttributeSensitive):
            private_key[Attribute.VALUE]


def test_es256_signs_the_sha256_of_the_message(softhsm: SoftHsm) -> None:
    """The token signs the host digest with CKM_ECDSA: prehashed verification agrees."""
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    with Pkcs11Token(softhsm.config()) as token:
        signer = token.generate_key("k", "ES256")
        signature = signer.sign_blocking(b"payload")
    jwk = signer.public_jwk()
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public.verify(der, hashlib.sha256(b"payload").digest(), ec.ECDSA(Prehashed(hashes.SHA256())))


async def test_kid_is_stable_across_reopening_the_token(softhsm: SoftHsm) -> None:
    with Pkcs11Token(softhsm.config()) as token:
        es = token.generate_key("es", "ES256")
        ed = token.generate_key("ed", "EdDSA")
        before = {s.label: (s.key_id, s.public_jwk()) for s in (es, ed)}
    assert before["es"][0] == joserfc_thumbprint(before["es"][1])
    assert before["ed"][0] == joserfc_thumbprint(before["ed"][1])

    async with Pkcs11Token(softhsm.config()) as reopened:
        for label, (kid, jwk) in before.items():
            signer = await reopened.aget_signer(label)
            assert signer.key_id == kid
            assert signer.public_jwk() == jwk
            verify_with_cryptography(jwk, b"again", await signer.sign(b"again"))

    with Pkcs11Token(softhsm.config()) as again:
        assert again.get_signer("es").key_id == before["es"][0]


async def test_list_and_destroy_keys(softhsm: SoftHsm) -> None:
    token = Pkcs11Token(softhsm.config())
    try:
        assert token.list_keys() == []  # starts the token lazily
        es = token.generate_key("b-es", "ES256")
        ed = await token.agenerate_key("a-ed", "EdDSA")
        listed = token.list_keys()
        assert [k.label for k in listed] == ["a-ed", "b-es"]
        assert all(isinstance(k, KeyInfo) for k in listed)
        assert [k.key_id for k in listed] == [ed.key_id, es.key_id]
        assert [k.algorithm for k in listed] == ["EdDSA", "ES256"]
        assert await token.alist_keys() == listed

        token.destroy_key("b-es")
        assert [k.label for k in token.list_keys()] == ["a-ed"]
        await token.adestroy_key("a-ed")
        assert await token.alist_keys() == []
    finally:
        token.close()
    with raw_session(softhsm) as session:
        assert list(session.get_objects({Attribute.LABEL: "b-es"})) == []


def test_keys_of_other_types_are_listed_out_and_refused(softhsm: SoftHsm) -> None:
    """A P-384 key and an RSA key made by someone else: not offered as signers."""
    from pkcs11.util.ec import encode_named_curve_parameters

    with raw_session(softhsm) as session:
        session.generate_keypair(
            KeyType.EC,
            store=True,
            label="p384",
            id=b"\x01",
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp384r1")},
        )
        session.generate_keypair(KeyType.RSA, 2048, store=True, label="rsa", id=b"\x02")
        # a private key whose public half is missing
        session.generate_keypair(
            KeyType.EC,
            store=True,
            label="orphan",
            id=b"\x03",
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        )
        session.get_key(object_class=ObjectClass.PUBLIC_KEY, label="orphan").destroy()
        for twin_id in (b"\x04", b"\x05"):  # two key pairs with one label
            session.generate_keypair(
                KeyType.EC_EDWARDS,
                store=True,
                label="twin",
                id=twin_id,
                mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: bytes.fromhex("06032b6570")},
            )

    from pavilion.keystore.pkcs11 import KeyNotFound, Pkcs11OperationFailed, UnsupportedKey

    with Pkcs11Token(softhsm.config()) as token:
        token.generate_key("good", "ES256")
        assert [k.label for k in token.list_keys()] == ["good", "twin", "twin"]
        with pytest.raises(UnsupportedKey, match="'p384' on PKCS#11 token 'pavilion-test'"):
            token.get_signer("p384")
        with pytest.raises(UnsupportedKey, match="'rsa'"):
            token.get_signer("rsa")
        with pytest.raises(KeyNotFound, match=r"'orphan' .* has no public key object"):
            token.get_signer("orphan")
        with pytest.raises(Pkcs11OperationFailed, match="2 private keys are labelled 'twin'"):
            token.get_signer("twin")
        with pytest.raises(UnsupportedKey, match="cannot generate a 'RS256' key"):
            token.generate_key("x", "RS256")  # type: ignore[arg-type]
