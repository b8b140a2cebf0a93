"""A token that loses its keys or its device: callers get a typed, retryable error fast, and
the token recovers on its own once the HSM is back (no restart)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hsm_support import SoftHsm, verify_with_cryptography

from keys_support import hide_token_objects, restore_token_objects
from pavilion.errors import KeystoreUnavailable
from pavilion.keystore.pkcs11 import Pkcs11Token, Pkcs11Unavailable

pytestmark = pytest.mark.softhsm

FAST = {"recovery_initial_s": 0.2, "recovery_max_s": 0.4}


async def sign_when_back(token: Pkcs11Token, sign: object, timeout: float = 10.0) -> bytes:
    """Sign until it works (the token recovers on its own); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await sign(b"back")  # type: ignore[operator,no-any-return]
        except Pkcs11Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_lost_keys_answer_unavailable_and_the_token_recovers(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    async with Pkcs11Token(softhsm.config(**FAST)) as token:
        signer = await token.agenerate_key("k", "ES256")
        verify_with_cryptography(signer.public_jwk(), b"m", await signer.sign(b"m"))

        hide_token_objects(softhsm.tokendir, tmp_path / "stash")
        with pytest.raises(Pkcs11Unavailable, match="cannot sign") as first:
            await signer.sign(b"m")
        assert isinstance(first.value, KeystoreUnavailable)  # 503 with Retry-After at the API
        assert token.recovery.failed
        started = time.monotonic()
        with pytest.raises(Pkcs11Unavailable, match="next recovery attempt") as fast:
            await signer.sign(b"m")
        assert time.monotonic() - started < 0.1  # fails fast between attempts
        assert fast.value.retry_after_s >= 1
        await asyncio.sleep(0.25)
        with pytest.raises(Pkcs11Unavailable):  # the attempt finds the keys still gone
            await signer.sign(b"m")
        assert token.recovery.failures >= 2

        restore_token_objects(softhsm.tokendir, tmp_path / "stash")
        signature = await sign_when_back(token, signer.sign)
        verify_with_cryptography(signer.public_jwk(), b"back", signature)
        assert not token.recovery.failed
        # Everything else works again on the new session too.
        assert [k.label for k in await token.alist_keys()] == ["k"]


def test_an_unreachable_token_recovers_in_blocking_callers(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    with Pkcs11Token(softhsm.config(**FAST)) as token:
        signer = token.generate_key("k", "EdDSA")
        token_dir = next(softhsm.tokendir.iterdir())
        away = tmp_path / "away"
        token_dir.rename(away)  # the whole token is gone: not found when the module restarts
        with pytest.raises(Pkcs11Unavailable, match="cannot sign"):
            signer.sign_blocking(b"m")
        time.sleep(0.25)
        with pytest.raises(Pkcs11Unavailable):
            signer.sign_blocking(b"m")  # recovery: the module restarts, the token is not back
        assert "not back" in token.recovery.last_error or "not logged in" in (
            token.recovery.last_error
        )
        with pytest.raises(Pkcs11Unavailable, match=r"not logged in|next recovery"):
            token.list_keys()  # no session until the token is back

        away.rename(token_dir)
        deadline = time.monotonic() + 10
        while True:
            try:
                signature = signer.sign_blocking(b"back")
                break
            except Pkcs11Unavailable:
                assert time.monotonic() < deadline, token.recovery.last_error
                time.sleep(0.05)
        verify_with_cryptography(signer.public_jwk(), b"back", signature)
        assert not token.recovery.failed
        assert [k.label for k in token.list_keys()] == ["k"]
