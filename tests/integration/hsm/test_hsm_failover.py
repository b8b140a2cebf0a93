"""A standby token with the same keys (replicated wrapped under a key-encryption key), to which
signing fails over while the primary cannot sign: two SoftHSM2 tokens."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hsm_support import SoftHsm, verify_with_cryptography

from keys_support import hide_token_objects, restore_token_objects
from pavilion.errors import ConfigurationError
from pavilion.keystore.hsm import HsmKeystore
from pavilion.keystore.pkcs11 import Pkcs11Token, Pkcs11Unavailable, wrapping
from pavilion.keystore.pkcs11.wrapping import REPLICATION_KEK_LABEL
from pavilion.keystore.replication import replicate
from pavilion.observability.metrics import REGISTRY

pytestmark = pytest.mark.softhsm

FAST = {"recovery_initial_s": 0.2, "recovery_max_s": 0.4}
STANDBY = "pavilion-standby"


def metric(name: str, token: str) -> float:
    return REGISTRY.get_sample_value(name, {"token": token}) or 0.0


def open_pair(softhsm: SoftHsm) -> HsmKeystore:
    softhsm.init_token(STANDBY)
    return HsmKeystore.open(
        softhsm.config(**FAST), standby=softhsm.config(token_label=STANDBY, **FAST)
    )


def replicate_now(softhsm: SoftHsm) -> tuple[list[str], list[str], list[str], list[str]]:
    with (
        Pkcs11Token(softhsm.config()) as primary,
        Pkcs11Token(softhsm.config(token_label=STANDBY)) as standby,
    ):
        report = replicate(primary, standby)
    return report.copied, report.relabelled, report.present, report.skipped


async def test_signing_fails_over_to_the_standby_with_the_same_public_key(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    keystore = open_pair(softhsm)
    try:
        # With a standby, keys are generated sensitive and extractable (only ever wrapped).
        for info in await keystore.token.alist_keys():
            assert (info.sensitive, info.extractable, info.local) == (True, True, True)
        signer = keystore.signer("credential-signing")
        jwk = signer.public_jwk()
        tenant_key = keystore.wrap_key(b"d" * 32, b"tenant-a")

        copied, relabelled, _, skipped = replicate_now(softhsm)
        assert any(label.startswith("pavilion:credential-signing:active:") for label in copied)
        assert any(label.startswith("pavilion:key-encryption:active:") for label in copied)
        for reason in skipped:  # SoftHSM2 2.6 cannot wrap Ed25519 keys: said, not hidden
            assert reason.startswith("pavilion:audit-signing:"), reason
            assert "KeyNotWrappable" in reason
        assert relabelled == []
        standby = keystore.standby
        assert standby is not None
        assert not standby.started  # logged in on first use
        primary_keys = {k.label: k for k in await keystore.token.alist_keys()}

        verify_with_cryptography(jwk, b"before", await signer.sign(b"before"))

        # The primary loses its keys: signing goes on through the standby, same kid.
        failovers = metric("pavilion_hsm_failover_signatures_total", STANDBY)
        hide_token_objects(softhsm.tokendir, tmp_path / "stash", only=softhsm.label)
        for message in (b"after 1", b"after 2", b"after 3"):
            signature = await signer.sign(message)
            verify_with_cryptography(jwk, message, signature)  # pyca, the original public key
        assert keystore.token.recovery.failed
        # What the operator sees in /metrics.
        assert metric("pavilion_hsm_token_up", softhsm.label) == 0
        assert metric("pavilion_hsm_failover_signatures_total", STANDBY) == failovers + 3
        assert signer.key_id == jwk["kid"]
        await keystore.ahealth()  # ready: the standby signs
        # Tenant data keys still open (the AES key-encryption key was replicated too).
        assert keystore.unwrap_key(*tenant_key, b"tenant-a") == b"d" * 32
        new_tenant_key = keystore.wrap_key(b"n" * 32, b"tenant-b")  # sealed by the standby
        pinned = keystore.signer_for(signer.key_id)
        verify_with_cryptography(jwk, b"pinned", await pinned.sign(b"pinned"))
        # The replicated copies on the standby: same CKA_ID, label and public key.
        for copy in await standby.alist_keys():
            assert copy.key_id == primary_keys[copy.label].key_id
            assert copy.cka_id == primary_keys[copy.label].cka_id
            assert copy.sensitive
            assert not copy.local  # unwrapped, not generated there
        assert REPLICATION_KEK_LABEL in {s.label for s in await standby.alist_secret_keys()}

        # The primary comes back and takes over again, without a restart.
        restore_token_objects(softhsm.tokendir, tmp_path / "stash")
        deadline = time.monotonic() + 10
        while keystore.token.recovery.failed:
            assert time.monotonic() < deadline, keystore.token.recovery.last_error
            verify_with_cryptography(jwk, b"again", await signer.sign(b"again"))
            await asyncio.sleep(0.05)
        assert metric("pavilion_hsm_token_up", softhsm.label) == 1
        # What the standby sealed, the primary opens: the same AES key on both tokens.
        assert keystore.unwrap_key(*new_tenant_key, b"tenant-b") == b"n" * 32

        # Both gone: a 503-class error that names both tokens.
        hide_token_objects(softhsm.tokendir, tmp_path / "stash2")
        with pytest.raises(Pkcs11Unavailable, match="standby cannot sign either"):
            await signer.sign(b"nowhere")
        await asyncio.sleep(1.05)  # readiness answers from its last probe for one second
        with pytest.raises(Pkcs11Unavailable):
            await keystore.ahealth()
        restore_token_objects(softhsm.tokendir, tmp_path / "stash2")
    finally:
        await keystore.aclose()


async def test_replication_follows_rotation_and_is_idempotent(softhsm: SoftHsm) -> None:
    keystore = open_pair(softhsm)
    try:
        first, _, _, _ = replicate_now(softhsm)
        again = replicate_now(softhsm)
        assert (again[0], again[1]) == ([], [])
        assert set(again[2]) == set(first)
        rotated = await keystore.acreate("credential-signing", "ES256", activate=True)
        copied, relabelled, _, _ = replicate_now(softhsm)
        assert copied == [f"pavilion:credential-signing:active:{rotated.name}"]
        assert [label.split(":")[2] for label in relabelled] == ["inactive"]
    finally:
        await keystore.aclose()


def test_blocking_signers_fail_over_too(softhsm: SoftHsm, tmp_path: Path) -> None:
    softhsm.init_token(STANDBY)
    with (
        Pkcs11Token(softhsm.config(**FAST)) as primary,
        Pkcs11Token(softhsm.config(token_label=STANDBY, **FAST)) as standby,
    ):
        made = primary.generate_key(
            "pavilion:credential-signing:active:k", "ES256", extractable=True
        )
        replicate(primary, standby)
        signer = made.with_standby(standby)
        hide_token_objects(softhsm.tokendir, tmp_path / "stash", only=softhsm.label)
        for message in (b"one", b"two"):
            verify_with_cryptography(signer.public_jwk(), message, signer.sign_blocking(message))
        hide_token_objects(softhsm.tokendir, tmp_path / "stash2")
        with pytest.raises(Pkcs11Unavailable, match="standby cannot sign either"):
            signer.sign_blocking(b"none")
        restore_token_objects(softhsm.tokendir, tmp_path / "stash")
        restore_token_objects(softhsm.tokendir, tmp_path / "stash2")


def test_replication_refuses_mismatched_keys_and_reports_what_it_cannot_copy(
    softhsm: SoftHsm,
) -> None:
    softhsm.init_token(STANDBY)
    softhsm.init_token("second-standby")
    with (
        Pkcs11Token(softhsm.config()) as primary,
        Pkcs11Token(softhsm.config(token_label=STANDBY)) as standby,
        Pkcs11Token(softhsm.config(token_label="second-standby")) as fresh,
    ):
        standby.run(wrapping.generate_kek)
        with pytest.raises(ConfigurationError, match="are the two swapped"):
            replicate(primary, standby)
        primary.run(wrapping.generate_kek)
        with pytest.raises(ConfigurationError, match="different replication keys"):
            replicate(primary, standby)

        primary.generate_key("pavilion:credential-signing:pending:locked", "ES256")
        primary.generate_key("pavilion:credential-signing:pending:open", "ES256", extractable=True)
        primary.generate_key("not-the-connectors", "ES256", extractable=True)
        report = replicate(primary, fresh)
        assert report.kek == "sent"  # the primary had one: only sent
        assert report.copied == ["pavilion:credential-signing:pending:open"]
        (skipped,) = report.skipped
        assert skipped.startswith("pavilion:credential-signing:pending:locked: could not wrap")
        assert "KeyUnextractable" in skipped
        assert [k.label for k in fresh.list_keys()] == ["pavilion:credential-signing:pending:open"]


async def test_a_standby_that_does_not_open_is_reported_with_the_primary(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    missing = Pkcs11Token(softhsm.config(token_label="no-such-standby", **FAST))
    async with Pkcs11Token(softhsm.config(**FAST)) as primary:
        made = await primary.agenerate_key("k", "ES256", extractable=True)
        signer = made.with_standby(missing)
        assert signer.standby is not None
        assert signer.standby.token is missing
        hide_token_objects(softhsm.tokendir, tmp_path / "stash")
        with pytest.raises(Pkcs11Unavailable) as caught:
            await signer.sign(b"m")
        assert "its standby cannot sign either" in caught.value.detail
        assert "'no-such-standby' did not open" in caught.value.detail
        assert caught.value.retry_after_s >= 1
        assert missing.recovery.failed  # tried again only after its own backoff
        with pytest.raises(Pkcs11Unavailable, match="standby cannot sign either"):
            await asyncio.to_thread(signer.sign_blocking, b"m")
        restore_token_objects(softhsm.tokendir, tmp_path / "stash")
    await missing.aclose()
