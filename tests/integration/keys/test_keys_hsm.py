"""The PKCS#11 keystore on a real SoftHSM2 token: protected keys, state in labels, AES-GCM key
wrapping inside the token, and the whole connector running on it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, MechanismFlag

from connector_support import Api
from keys_support import Token, spec_token_status, unverified, verify_with_pyjwt
from pavilion.config.settings import Settings
from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.base import KeyLifecycleError, Keystore
from pavilion.keystore.factory import hsm_config, open_keystore
from pavilion.keystore.hsm import HsmKeystore, format_label, parse_label
from pavilion.keystore.pkcs11 import Pkcs11Token
from pavilion.synth.roster import StudentRecord, pick_examples
from pavilion.tenancy.models import PLATFORM_TENANT_ID, Tenant

pytestmark = pytest.mark.softhsm


def test_labels_carry_purpose_state_and_name() -> None:
    label = format_label("credential-signing", "active", "es256-20260101T000000000000-ab")
    assert parse_label(label) == ("credential-signing", "active", "es256-20260101T000000000000-ab")
    for foreign in ("issuer-2025", "pavilion:x:active:n", "pavilion:audit-signing:lost:n", "a:b"):
        assert parse_label(foreign) is None


async def test_defaults_are_generated_inside_the_token_and_never_extractable(
    hsm_keystore_settings: Settings,
) -> None:
    keystore = open_keystore(hsm_keystore_settings)
    assert isinstance(keystore, HsmKeystore)
    assert isinstance(keystore, Keystore)
    try:
        assert keystore.backend == "pkcs11"
        assert {(m.purpose, m.algorithm, m.state) for m in keystore.list_keys()} == {
            ("credential-signing", "ES256", "active"),
            ("audit-signing", "EdDSA", "active"),
            ("key-encryption", "A256GCM", "active"),
        }
        # What the token itself says about the objects.
        for info in await keystore.token.alist_keys():
            assert parse_label(info.label) is not None
            assert info.sensitive
            assert not info.extractable
            assert info.never_extractable
            assert info.local
        secret = (await keystore.token.alist_secret_keys())[0]
        assert (secret.length, secret.sensitive, secret.extractable, secret.local) == (
            32,
            True,
            False,
            True,
        )
        assert [e.action for e in keystore.usage.drain()[1]] == ["created-default"] * 3
        keystore.health()
    finally:
        await keystore.aclose()
    with pytest.raises(CryptoError, match="is not open"):
        keystore.health()


async def test_lifecycle_state_lives_on_the_token(hsm_keystore_settings: Settings) -> None:
    keystore = open_keystore(hsm_keystore_settings)
    try:
        first = keystore.signer("credential-signing")
        signature = await first.sign(b"old")
        pending = await keystore.acreate("credential-signing", "ES256")
        assert pending.state == "pending"
        assert keystore.signer("credential-signing").key_id == first.key_id
        assert await keystore.aactivate(pending.key_id)
        assert keystore.signer("credential-signing").key_id == pending.key_id
        jwks = {"keys": keystore.public_jwks()}
        assert {k["kid"] for k in jwks["keys"]} == {first.key_id, pending.key_id}
        old_jwk = next(k for k in jwks["keys"] if k["kid"] == first.key_id)
        assert jwt.get_algorithm_by_name("ES256").verify(b"old", jwt.PyJWK(old_jwk).key, signature)
        with pytest.raises(KeyLifecycleError, match="rotate to a new key first"):
            await keystore.aretire(pending.key_id)
        assert (await keystore.aretire(first.key_id)).state == "retired"
        assert (await keystore.aretire(first.key_id)).state == "retired"
        with pytest.raises(KeyLifecycleError, match="not a usable signing key"):
            keystore.signer_for(first.key_id)
        assert keystore.signer_for(pending.key_id).key_id == pending.key_id
        rotated_eddsa = await keystore.acreate("credential-signing", "EdDSA", activate=True)
        assert keystore.signer("credential-signing", "EdDSA").key_id == rotated_eddsa.key_id
        labels = {info.label for info in await keystore.token.alist_keys()}
        assert (
            format_label("credential-signing", "retired", first_name(keystore, first.key_id))
            in labels
        )
    finally:
        await keystore.aclose()

    # A new process reads the same states from the labels.
    reopened = open_keystore(hsm_keystore_settings)
    try:
        states = {m.key_id: m.state for m in reopened.list_keys()}
        assert states[first.key_id] == "retired"
        assert states[pending.key_id] == "active"
        assert first.key_id not in {k["kid"] for k in reopened.public_jwks()}
    finally:
        await reopened.aclose()


def first_name(keystore: Keystore, key_id: str) -> str:
    return next(m.name for m in keystore.list_keys() if m.key_id == key_id)


async def test_data_keys_are_wrapped_by_aes_gcm_inside_the_token(
    hsm_keystore_settings: Settings,
) -> None:
    keystore = open_keystore(hsm_keystore_settings)
    try:
        kek_id, blob = keystore.wrap_key(b"d" * 32, b"tenant-a")
        assert len(blob) == 12 + 32 + 16  # IV, ciphertext, GCM tag
        assert b"d" * 8 not in blob
        assert keystore.unwrap_key(kek_id, blob, b"tenant-a") == b"d" * 32
        with pytest.raises(CryptoError, match="tampered or wrong context"):
            keystore.unwrap_key(kek_id, blob, b"tenant-b")
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        with pytest.raises(CryptoError, match="tampered or wrong context"):
            keystore.unwrap_key(kek_id, tampered, b"tenant-a")
        with pytest.raises(CryptoError, match="tampered or wrong context"):
            keystore.unwrap_key(kek_id, blob[:20], b"tenant-a")
        with pytest.raises(CryptoError, match="unknown key-encryption key"):
            keystore.unwrap_key("nope", blob, b"tenant-a")

        rotated = await keystore.acreate("key-encryption", "A256GCM", activate=True)
        new_id, _ = keystore.wrap_key(b"e" * 32, b"tenant-a")
        assert new_id == rotated.name != kek_id
        assert keystore.unwrap_key(kek_id, blob, b"tenant-a") == b"d" * 32  # old still opens
        await keystore.aretire(kek_id)
        with pytest.raises(CryptoError, match="is retired"):
            keystore.unwrap_key(kek_id, blob, b"tenant-a")
    finally:
        await keystore.aclose()


async def test_a_key_made_by_another_process_is_found_and_refreshed(
    hsm_keystore_settings: Settings,
) -> None:
    server = open_keystore(hsm_keystore_settings)
    cli = open_keystore(
        hsm_keystore_settings
    )  # same process shares the login; labels are the state
    try:
        kek = await cli.acreate("key-encryption", "A256GCM", activate=True)
        kek_id, blob = cli.wrap_key(b"k" * 32, b"t")
        assert kek_id == kek.name
        assert server.unwrap_key(kek_id, blob, b"t") == b"k" * 32  # looked up on the token
        rotated = await cli.acreate("credential-signing", "ES256", activate=True)
        assert server.signer("credential-signing").key_id != rotated.key_id
        await server.arefresh()
        assert server.signer("credential-signing").key_id == rotated.key_id
        lazy = server.signer("credential-signing", "EdDSA")  # generated on first use
        assert lazy.algorithm == "EdDSA"
        assert [e.action for e in server.usage.drain()[1]][-1] == "created-on-first-use"
    finally:
        await server.aclose()
        await cli.aclose()


async def test_unprotected_keys_under_the_connector_prefix_are_refused(
    hsm_keystore_settings: Settings, hsm_token: Token
) -> None:
    config = hsm_config(hsm_keystore_settings)
    with Pkcs11Token(config) as token:  # a foreign key: ignored
        token.generate_key("issuer-2025", "ES256")
    # An extractable AES key that claims to be ours, made with python-pkcs11 directly.
    lib = pkcs11.lib(hsm_token.module)
    lib.reinitialize()
    try:
        session = lib.get_token(token_label=hsm_token.label).open(rw=True, user_pin=hsm_token.pin)
        with session:
            session.generate_key(
                KeyType.AES,
                256,
                id=b"\x01" * 16,
                label=format_label("key-encryption", "active", "a256gcm-20260101T000000000000-x"),
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
            )
    finally:
        lib.finalize()
    with pytest.raises(ConfigurationError, match="is not protected as the connector requires"):
        HsmKeystore.open(config)


async def test_the_connector_runs_end_to_end_on_the_hsm(
    hsm_api: Api, roster: list[StudentRecord]
) -> None:
    api = hsm_api
    assert api.rt.keystore.backend == "pkcs11"
    hsm_kids = {m.key_id for m in api.rt.keystore.list_keys()}
    provider = await api.register_provider()
    student = pick_examples(roster).current
    response = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
    )
    assert response.status_code == 201, response.text
    credential = response.json()["credential"]
    header, _ = unverified(credential)
    assert header["kid"] in hsm_kids  # signed inside the token
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    claims = verify_with_pyjwt(credential, jwks, require=["exp"])
    assert claims["vc"]["credentialSubject"] == {"studentStatus": {"current": True}}

    # The tenant's data key is wrapped by the token's AES key.
    async with api.rt.db.transaction(None) as session:
        tenant = await session.get(Tenant, api.tenant_id)
    assert tenant is not None
    assert tenant.kek_id in {
        m.name for m in api.rt.keystore.list_keys() if m.purpose == "key-encryption"
    }

    # The status list is signed in the token too, and revocation works end to end.
    reference = claims["status"]["status_list"]
    listed = await api.client.get(urlsplit(reference["uri"]).path)
    list_claims = verify_with_pyjwt(listed.text, jwks)
    assert unverified(listed.text)[0]["kid"] == header["kid"]
    assert spec_token_status(list_claims["status_list"], reference["idx"]) == 0
    credential_id = claims["jti"].removeprefix("urn:uuid:")
    revoked = await api.client.post(
        f"/v1/credentials/{credential_id}/status",
        json={"action": "revoke"},
        headers=api.auth("tenant-admin"),
    )
    assert revoked.json()["state"] == "revoked"
    assert await api.rt.status_lists.resolve_status(reference["uri"], reference["idx"]) == 1

    # Rotation inside the HSM: the old credential verifies until its key is retired.
    rotated = await api.client.post(
        "/v1/keys/rotate",
        json={"purpose": "credential-signing"},
        headers=api.auth("platform-admin"),
    )
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["key"]["key_id"]
    second = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
    )
    assert unverified(second.json()["credential"])[0]["kid"] == new_kid
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    assert verify_with_pyjwt(credential, jwks)["vc"]
    retire = await api.client.post(
        f"/v1/keys/{header['kid']}/retire", headers=api.auth("platform-admin")
    )
    assert retire.json()["key"]["state"] == "retired"
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    assert header["kid"] not in {k["kid"] for k in jwks["keys"]}
    assert verify_with_pyjwt(second.json()["credential"], jwks)["vc"]

    # Every HSM signature is counted in the platform log.
    await api.rt.keys.flush_usage()
    leaves = await api.rt.audit.leaves(PLATFORM_TENANT_ID, start=0, limit=1000)
    counted: dict[str, int] = {}
    for leaf in leaves:
        event: dict[str, Any] = leaf["event"]
        if event["kind"] == "key-usage":
            counted[event["key_id"]] = counted.get(event["key_id"], 0) + event["count"]
    assert counted[header["kid"]] == 2  # the first credential and its status list
    assert counted[new_kid] == 1
    ready = await api.client.get("/readyz")
    assert ready.json()["checks"]["keystore"] == "ok"
