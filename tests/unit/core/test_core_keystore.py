"""The software keystore: sealed at rest, thumbprint kids, refuses tampering."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from joserfc.jwk import ECKey, OKPKey

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.software import SoftwareKeystore


async def test_keys_persist_and_kids_are_rfc7638_thumbprints(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    signer = keystore.signer("credential-signing")
    reopened = SoftwareKeystore.open(tmp_path)
    assert reopened.signer("credential-signing").key_id == signer.key_id
    jwk = signer.public_jwk()
    assert ECKey.import_key(jwk).thumbprint() == signer.key_id
    audit = keystore.signer("audit-signing")
    assert audit.algorithm == "EdDSA"
    assert OKPKey.import_key(audit.public_jwk()).thumbprint() == audit.key_id
    # The raw r||s signature verifies with an independent library's ES256.
    message = b"header.payload"
    signature = await signer.sign(message)
    assert len(signature) == 64
    algorithm = jwt.get_algorithm_by_name("ES256")
    public = jwt.PyJWK(jwk).key
    assert algorithm.verify(message, public, signature)


def test_private_keys_are_sealed_on_disk(tmp_path: Path) -> None:
    SoftwareKeystore.open(tmp_path)
    document = json.loads((tmp_path / "keystore.json").read_text())
    assert {k["purpose"] for k in document["keys"]} == {
        "credential-signing",
        "audit-signing",
        "key-encryption",
    }
    assert "PRIVATE" not in (tmp_path / "keystore.json").read_text()
    assert (tmp_path / "master.key").stat().st_mode & 0o077 == 0


def test_wrong_master_key_and_tampering_are_refused(tmp_path: Path) -> None:
    SoftwareKeystore.open(tmp_path)
    other = base64.b64encode(b"k" * 32).decode()
    with pytest.raises(CryptoError, match="wrong master key or tampered"):
        SoftwareKeystore.open(tmp_path, other).signer("credential-signing")
    with pytest.raises(ConfigurationError, match="not valid base64"):
        SoftwareKeystore.open(tmp_path, "***")
    with pytest.raises(ConfigurationError, match="32 bytes"):
        SoftwareKeystore.open(tmp_path, base64.b64encode(b"short").decode())
    (tmp_path / "keystore.json").write_text('{"version": 99}')
    with pytest.raises(ConfigurationError, match="unreadable"):
        SoftwareKeystore.open(tmp_path)


def test_data_keys_wrap_to_their_context(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path, base64.b64encode(b"m" * 32).decode())
    kek_id, blob = keystore.wrap_key(b"d" * 32, b"tenant-a")
    assert keystore.unwrap_key(kek_id, blob, b"tenant-a") == b"d" * 32
    with pytest.raises(CryptoError, match="tampered or wrong context"):
        keystore.unwrap_key(kek_id, blob, b"tenant-b")
    with pytest.raises(CryptoError, match="unknown key-encryption key"):
        keystore.unwrap_key("nope", blob, b"tenant-a")
    with pytest.raises(CryptoError, match="unsupported key algorithm"):
        keystore.create_key("credential-signing", "RS256")


def test_jwks_keeps_every_unretired_key(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    keystore.create_key("credential-signing", "ES256")
    jwks = keystore.public_jwks()
    assert len(jwks) == 2
    assert all("d" not in k for k in jwks)
    keystore.health()
