"""The PKCS#11 operations the keystore added: AES keys, AES-GCM, relabelling, and their errors."""

from __future__ import annotations

import os
from typing import Any

import pkcs11
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys_support import Token
from pavilion.errors import CryptoError
from pavilion.keystore.hsm import HsmKeystore, _created_at, format_label
from pavilion.keystore.pkcs11 import (
    KeyNotFound,
    Pkcs11Config,
    Pkcs11DecryptFailed,
    Pkcs11OperationFailed,
    Pkcs11Token,
    Pkcs11Unavailable,
)
from pavilion.keystore.pkcs11.ops import ModuleOps

pytestmark = pytest.mark.softhsm


def config(token: Token) -> Pkcs11Config:
    return Pkcs11Config(module_path=token.module, token_label=token.label, user_pin=token.pin)


class _Proxy:
    """The worker's session with one method replaced (only ever touched on the worker)."""

    def __init__(self, session: Any, **overrides: Any) -> None:
        self._session = session
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._session, name)


def _swap_session(token: Pkcs11Token, **overrides: Any) -> Any:
    worker, ref = token._session()

    def swap() -> Any:
        entry = worker.ops._tokens[ref]
        original = entry.session
        entry.session = _Proxy(original, **overrides)
        return original

    return worker.submit(swap).result(10)


def _restore_session(token: Pkcs11Token, original: Any) -> None:
    worker, ref = token._session()

    def restore() -> None:
        worker.ops._tokens[ref].session = original

    worker.submit(restore).result(10)


def test_aes_keys_encrypt_inside_the_token_and_relabel(hsm_token: Token) -> None:
    with Pkcs11Token(config(hsm_token)) as token:
        record = token.generate_secret_key("kek-a")
        assert (record.label, record.length, record.sensitive, record.extractable) == (
            "kek-a",
            32,
            True,
            False,
        )
        iv = os.urandom(12)
        sealed = token.encrypt_gcm(record.cka_id, iv, b"aad", b"secret data key.")
        assert len(sealed) == 16 + 16
        assert token.decrypt_gcm(record.cka_id, iv, b"aad", sealed) == b"secret data key."
        with pytest.raises(Pkcs11DecryptFailed, match="tampered or wrong context"):
            token.decrypt_gcm(record.cka_id, iv, b"other", sealed)
        token.relabel(record.cka_id, "kek-b")
        assert [r.label for r in token.list_secret_keys()] == ["kek-b"]
        with pytest.raises(KeyNotFound, match="no object with CKA_ID"):
            token.relabel(b"\x00" * 16, "x")
        with pytest.raises(Pkcs11Unavailable, match="is gone"):  # 503: the token lost it
            token.encrypt_gcm(b"\x00" * 16, iv, b"", b"x")
        pair = token.generate_key("pair", "EdDSA")
        token.relabel(pair.cka_id, "pair-2")
        assert [s.label for s in token.list_signers()] == ["pair-2"]


def test_the_token_gcm_matches_an_independent_aes_gcm(hsm_token: Token) -> None:
    """The connector's keys never leave the token, so make a throw-away *extractable* AES key
    (test only), encrypt through the connector's path, and open it with pyca's AES-GCM: the IV,
    the additional data and the 128-bit tag are passed to the token as the standard says."""
    with Pkcs11Token(config(hsm_token)) as token:
        worker, ref = token._session()

        def extractable_key() -> tuple[bytes, bytes]:
            key = worker.ops._tokens[ref].session.generate_key(
                pkcs11.KeyType.AES,
                256,
                id=b"\x07" * 16,
                label="test-only",
                store=False,
                template={pkcs11.Attribute.SENSITIVE: False, pkcs11.Attribute.EXTRACTABLE: True},
            )
            return bytes(key.id), bytes(key[pkcs11.Attribute.VALUE])

        cka_id, value = worker.submit(extractable_key).result(10)
        for size in (0, 1, 32, 100):
            iv, plain = os.urandom(12), os.urandom(size)
            sealed = token.encrypt_gcm(cka_id, iv, b"tenant-a", plain)
            assert len(sealed) == size + 16
            assert AESGCM(value).decrypt(iv, sealed, b"tenant-a") == plain
            made_by_pyca = AESGCM(value).encrypt(iv, plain, b"tenant-a")
            assert token.decrypt_gcm(cka_id, iv, b"tenant-a", made_by_pyca) == plain


async def test_async_relabel_and_listing(hsm_token: Token) -> None:
    async with Pkcs11Token(config(hsm_token)) as token:
        record = await token.agenerate_secret_key("a")
        await token.arelabel(record.cka_id, "b")
        assert [r.label for r in await token.alist_secret_keys()] == ["b"]
        signer = await token.agenerate_key("s", "ES256")
        assert [s.key_id for s in await token.alist_signers()] == [signer.key_id]
        assert token.ready


# python-pkcs11's SearchIter reports C_FindObjectsFinal on the dead session from its __del__
# (on the worker thread, after the search failed): noise, not a failure of the connector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_token_failures_are_typed_and_a_lost_session_is_reopened_once(
    hsm_token: Token, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Pkcs11Token(config(hsm_token)) as token:
        record = token.generate_secret_key("kek")

        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise pkcs11.FunctionFailed()

        original = _swap_session(token, generate_key=refuse)
        try:
            with pytest.raises(Pkcs11OperationFailed, match="could not generate AES key"):
                token.generate_secret_key("other")
        finally:
            _restore_session(token, original)

        class ReadOnly:
            def __setitem__(self, key: Any, value: Any) -> None:
                raise pkcs11.AttributeReadOnly()

        original = _swap_session(token, get_objects=lambda *_a, **_k: [ReadOnly()])
        try:
            with pytest.raises(Pkcs11OperationFailed, match="could not relabel"):
                token.relabel(record.cka_id, "x")
        finally:
            _restore_session(token, original)

        worker, ref = token._session()

        def lose_session() -> None:
            worker.ops._tokens[ref].session.close()
            worker.ops._keys.clear()

        iv = os.urandom(12)
        worker.submit(lose_session).result(10)
        sealed = token.encrypt_gcm(record.cka_id, iv, b"", b"k" * 32)  # reopened, then works
        monkeypatch.setattr(ModuleOps, "_reopen", lambda self, ref: None)
        worker.submit(lose_session).result(10)
        # A session that stays lost is the token failing (503 at the API), not a bad request.
        with pytest.raises(Pkcs11Unavailable, match=r"cannot use AES key .*SessionHandleInvalid"):
            token.decrypt_gcm(record.cka_id, iv, b"", sealed)


async def test_the_keystore_ignores_what_is_not_its_own(hsm_token: Token) -> None:
    with Pkcs11Token(config(hsm_token)) as token:
        token.generate_secret_key("someone-elses-aes")
        # An EC pair that claims the key-encryption purpose is not a key-encryption key.
        token.generate_key(format_label("key-encryption", "active", "x"), "ES256")
    keystore = HsmKeystore.open(config(hsm_token))
    try:
        assert {m.purpose for m in keystore.list_keys()} == {
            "credential-signing",
            "audit-signing",
            "key-encryption",
        }
        assert len(keystore.list_keys()) == 3
        with pytest.raises(CryptoError, match="no active audit-signing ES256"):
            keystore.signer("audit-signing", "ES256")
    finally:
        await keystore.aclose()
    assert _created_at("no-stamp") == ""
    assert _created_at("es256-20260102T030405000006-ab") == "2026-01-02T03:04:05.000006+00:00"
