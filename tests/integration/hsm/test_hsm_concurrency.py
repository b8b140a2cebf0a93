"""Many callers at once through one token: SoftHSM2 crashes (SIGSEGV) on concurrent calls
into the module, so this passes only because every call goes through the one worker."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hsm_support import SoftHsm, verify_with_cryptography

from pavilion.keystore.pkcs11 import Pkcs11Signer, Pkcs11Token

pytestmark = pytest.mark.softhsm

TASKS = 8
THREADS = 4
PER_CALLER = 30  # x 12 callers x 2 keys = 720 signatures


async def test_tasks_and_threads_sign_at_once(softhsm: SoftHsm) -> None:
    token = Pkcs11Token(softhsm.config())
    await token.astart()
    try:
        signers = [token.generate_key("es", "ES256"), await token.agenerate_key("ed", "EdDSA")]
        results: list[tuple[Pkcs11Signer, bytes, bytes]] = []
        lock = threading.Lock()
        start = threading.Barrier(THREADS + 1)
        errors: list[BaseException] = []

        async def task(n: int) -> None:
            for i in range(PER_CALLER):
                for signer in signers:
                    message = f"task {n} message {i}".encode()
                    signature = await signer.sign(message)
                    with lock:
                        results.append((signer, message, signature))

        def thread(n: int) -> None:
            try:
                start.wait()
                for i in range(PER_CALLER):
                    for signer in signers:
                        message = f"thread {n} message {i}".encode()
                        if n % 2:  # a blocking caller ...
                            signature = signer.sign_blocking(message)
                        else:  # ... and a thread with its own event loop
                            signature = asyncio.run(signer.sign(message))
                        with lock:
                            results.append((signer, message, signature))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=thread, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        start.wait()
        await asyncio.gather(*(task(n) for n in range(TASKS)))
        for t in threads:
            await asyncio.to_thread(t.join, 60)
        assert not errors
        assert len(results) == (TASKS + THREADS) * PER_CALLER * len(signers)
        for signer, message, signature in results:
            verify_with_cryptography(signer.public_jwk(), message, signature)
        assert len({sig for _, _, sig in results}) == len(results)
    finally:
        await token.aclose()


async def test_two_tokens_of_one_module_share_the_worker(softhsm: SoftHsm) -> None:
    """Two tokens in the same SoftHSM2 module, signing concurrently, still one worker."""
    softhsm.init_token("second")
    async with (
        Pkcs11Token(softhsm.config()) as first,
        Pkcs11Token(softhsm.config(token_label="second")) as second,
    ):
        a = await first.agenerate_key("a", "ES256")
        b = await second.agenerate_key("b", "EdDSA")
        signatures = await asyncio.gather(*(s.sign(b"m") for s in [a, b] * 50))
        for signer, signature in zip([a, b] * 50, signatures, strict=True):
            verify_with_cryptography(signer.public_jwk(), b"m", signature)
        assert [k.label for k in first.list_keys()] == ["a"]
        assert [k.label for k in second.list_keys()] == ["b"]
