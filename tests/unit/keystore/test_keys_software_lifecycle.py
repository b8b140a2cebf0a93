"""The software keystore's lifecycle: states in the sealed file, shared safely between processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from jose_support import pyjwk, pyjwt_algorithm
from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.base import KeyLifecycleError, Keystore
from pavilion.keystore.software import SoftwareKeystore


def _verify(jwk: dict[str, str], message: bytes, signature: bytes) -> bool:
    return bool(pyjwt_algorithm(jwk["alg"]).verify(message, pyjwk(jwk).key, signature))


async def test_rotation_publishes_the_new_key_and_keeps_the_old_one_until_retired(
    tmp_path: Path,
) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    assert isinstance(keystore, Keystore)
    assert keystore.backend == "software"
    first = keystore.signer("credential-signing")
    old_signature = await first.sign(b"old")

    pending = await keystore.acreate("credential-signing", "ES256")
    assert pending.state == "pending"
    assert keystore.signer("credential-signing").key_id == first.key_id  # still signs
    assert {k["kid"] for k in keystore.public_jwks()} == {first.key_id, pending.key_id}

    activated = await keystore.aactivate(pending.key_id)
    assert activated.state == "active"
    assert keystore.signer("credential-signing").key_id == pending.key_id
    states = {m.key_id: m.state for m in keystore.list_keys()}
    assert states[first.key_id] == "inactive"
    # The old key still verifies what it signed, from the published JWKS.
    old_jwk = next(k for k in keystore.public_jwks() if k["kid"] == first.key_id)
    assert _verify(old_jwk, b"old", old_signature)

    with pytest.raises(KeyLifecycleError, match="rotate to a new key first"):
        await keystore.aretire(pending.key_id)
    retired = await keystore.aretire(first.key_id)
    assert retired.state == "retired"
    assert first.key_id not in {k["kid"] for k in keystore.public_jwks()}
    with pytest.raises(KeyLifecycleError, match="never used again"):
        await keystore.aactivate(first.key_id)
    with pytest.raises(KeyLifecycleError, match="not a usable signing key"):
        keystore.signer_for(first.key_id)
    assert (await keystore.aretire(first.key_id)).state == "retired"  # idempotent

    # All of it is in the sealed file: a new process sees the same states.
    reopened = SoftwareKeystore.open(tmp_path)
    assert {m.key_id: m.state for m in reopened.list_keys()} == {
        m.key_id: m.state for m in keystore.list_keys()
    }
    assert reopened.signer("credential-signing").key_id == pending.key_id


async def test_create_with_activate_and_pinned_signers(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    before = keystore.signer("credential-signing").key_id
    name = keystore.create_key("credential-signing", "ES256", activate=True)
    now = keystore.signer("credential-signing")
    assert now.key_id != before
    assert name in {m.name for m in keystore.list_keys()}
    pinned = keystore.signer_for(before)  # an inactive key still signs when asked by kid
    assert pinned.key_id == before
    with pytest.raises(KeyLifecycleError):
        keystore.signer_for(
            next(m.name for m in keystore.list_keys() if m.purpose == "key-encryption")
        )


async def test_eddsa_credential_key_is_created_on_first_use_and_recorded(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    defaults = [e.action for e in keystore.usage.drain()[1]]
    assert defaults == ["created-default"] * 3
    signer = keystore.signer("credential-signing", "EdDSA")
    assert signer.algorithm == "EdDSA"
    assert keystore.signer("credential-signing", "EdDSA") is signer
    assert [e.action for e in keystore.usage.drain()[1]] == ["created-default"]
    assert keystore.public_jwks()[0]["alg"] == "ES256"  # the default stays first
    with pytest.raises(CryptoError, match="no active audit-signing ES256"):
        keystore.signer("audit-signing", "ES256")


async def test_key_encryption_keys_rotate_and_old_wraps_still_open(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    old_id, old_blob = keystore.wrap_key(b"k" * 32, b"tenant-a")
    new = await keystore.acreate("key-encryption", "A256GCM", activate=True)
    new_id, _ = keystore.wrap_key(b"k" * 32, b"tenant-a")
    assert new_id == new.name != old_id
    assert keystore.unwrap_key(old_id, old_blob, b"tenant-a") == b"k" * 32
    await keystore.aretire(old_id)
    with pytest.raises(CryptoError, match="is retired"):
        keystore.unwrap_key(old_id, old_blob, b"tenant-a")


async def test_a_running_process_sees_another_process_rotate(tmp_path: Path) -> None:
    server = SoftwareKeystore.open(tmp_path)
    cli = SoftwareKeystore.open(tmp_path)
    rotated = await cli.acreate("credential-signing", "ES256", activate=True)
    assert server.signer("credential-signing").key_id != rotated.key_id
    await server.arefresh()
    assert server.signer("credential-signing").key_id == rotated.key_id
    await server.arefresh()  # nothing changed: no reload
    assert server.signer("credential-signing").key_id == rotated.key_id
    await server.aclose()


def _create_keys(directory: str, count: int) -> None:
    keystore = SoftwareKeystore.open(Path(directory))
    for _ in range(count):
        keystore.create_key("credential-signing", "ES256")


def test_two_processes_writing_at_once_lose_no_key(tmp_path: Path) -> None:
    SoftwareKeystore.open(tmp_path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_create_keys, args=(str(tmp_path), 5)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    keys = SoftwareKeystore.open(tmp_path).list_keys()
    assert sum(1 for k in keys if k.state == "pending") == 10


def test_a_file_with_an_unknown_state_is_refused(tmp_path: Path) -> None:
    SoftwareKeystore.open(tmp_path)
    path = tmp_path / "keystore.json"
    document = json.loads(path.read_text())
    document["keys"][0]["state"] = "compromised"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigurationError, match="unknown state 'compromised'"):
        SoftwareKeystore.open(tmp_path)


async def test_a_refused_change_leaves_the_file_untouched(tmp_path: Path) -> None:
    keystore = SoftwareKeystore.open(tmp_path)
    before = (tmp_path / "keystore.json").read_bytes()
    active = keystore.signer("credential-signing").key_id
    with pytest.raises(KeyLifecycleError):
        await keystore.aretire(active)
    assert (tmp_path / "keystore.json").read_bytes() == before
    assert keystore.signer("credential-signing").key_id == active


async def test_two_processes_creating_the_lazy_key_make_only_one(tmp_path: Path) -> None:
    server = SoftwareKeystore.open(tmp_path)
    cli = SoftwareKeystore.open(tmp_path)
    made = cli.signer("credential-signing", "EdDSA")
    # The server's memory has no EdDSA key; under the lock it finds the one the CLI made.
    assert server.signer("credential-signing", "EdDSA").key_id == made.key_id
    eddsa = [
        m
        for m in server.list_keys()
        if m.algorithm == "EdDSA" and m.purpose == "credential-signing"
    ]
    assert len(eddsa) == 1
    signature = await made.sign(b"m")
    jwk = made.public_jwk()
    assert _verify(jwk, b"m", signature)


def test_a_sealed_key_that_is_not_a_signing_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pavilion.keystore.software import _aad

    keystore = SoftwareKeystore.open(tmp_path)
    document = json.loads((tmp_path / "keystore.json").read_text())
    entry = next(e for e in document["keys"] if e["purpose"] == "credential-signing")
    rsa_der = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    import base64

    nonce = base64.b64decode(entry["nonce"])
    sealed = keystore._aead.encrypt(nonce, rsa_der, _aad(entry["name"], entry["purpose"]))
    entry["sealed"] = base64.b64encode(sealed).decode()
    (tmp_path / "keystore.json").write_text(json.dumps(document))
    with pytest.raises(CryptoError, match="is not a signing key"):
        SoftwareKeystore.open(tmp_path).signer("credential-signing")
