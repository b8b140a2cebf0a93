"""Typed errors with clear messages, and no caller left hanging."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pkcs11
import pytest
from hsm_support import SoftHsm, verify_with_cryptography

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.pkcs11 import (
    KeyAlreadyExists,
    KeyNotFound,
    Pkcs11Config,
    Pkcs11Error,
    Pkcs11LoginFailed,
    Pkcs11ModuleError,
    Pkcs11OperationFailed,
    Pkcs11Token,
    Pkcs11Unavailable,
    TokenNotFound,
)
from pavilion.keystore.pkcs11.errors import describe
from pavilion.keystore.pkcs11.ops import ModuleOps
from pavilion.keystore.pkcs11.records import KeyRecord
from pavilion.keystore.pkcs11.worker import active_workers
from waiting import until

pytestmark = pytest.mark.softhsm


def test_errors_are_crypto_errors() -> None:
    for cls in (
        Pkcs11Error,
        Pkcs11ModuleError,
        TokenNotFound,
        Pkcs11LoginFailed,
        KeyNotFound,
        KeyAlreadyExists,
        Pkcs11Unavailable,
        Pkcs11OperationFailed,
    ):
        assert issubclass(cls, CryptoError)


def test_wrong_pin(softhsm: SoftHsm) -> None:
    token = Pkcs11Token(softhsm.config(user_pin="not-the-pin"))
    with pytest.raises(Pkcs11LoginFailed) as caught:
        token.start()
    assert str(caught.value) == "PKCS#11 login failed for token 'pavilion-test': wrong PIN"
    assert isinstance(caught.value.__cause__, pkcs11.PinIncorrect)
    assert "not-the-pin" not in repr(token.config)
    assert not active_workers()  # the failed open gave the worker back
    # the same token with the right PIN still works afterwards
    with Pkcs11Token(softhsm.config()) as good:
        good.generate_key("k", "ES256")
    token.close()


async def test_wrong_pin_async(softhsm: SoftHsm) -> None:
    with pytest.raises(Pkcs11LoginFailed, match="wrong PIN"):
        async with Pkcs11Token(softhsm.config(user_pin="0000")):
            pass  # pragma: no cover


def test_unknown_token_label_lists_the_available_ones(softhsm: SoftHsm) -> None:
    softhsm.init_token("other-token")
    with pytest.raises(TokenNotFound) as caught, Pkcs11Token(softhsm.config(token_label="nope")):
        pass  # pragma: no cover
    message = str(caught.value)
    assert message.startswith(
        f"PKCS#11 token 'nope' not found in module '{softhsm.module_path}'; available tokens: "
    )
    assert re.search(r"'other-token' \(slot \d+\), 'pavilion-test' \(slot \d+\)$", message)


def test_two_tokens_with_one_label_need_a_slot(softhsm: SoftHsm) -> None:
    softhsm.init_token(softhsm.label)
    with pytest.raises(TokenNotFound, match="2 PKCS#11 tokens are labelled 'pavilion-test'"):
        Pkcs11Token(softhsm.config()).start()
    lib = pkcs11.lib(softhsm.module_path)
    lib.reinitialize()
    slots = [s.slot_id for s in lib.get_slots(token_present=True) if s.get_token().label]
    lib.finalize()
    assert len(slots) == 2
    with Pkcs11Token(softhsm.config(slot=slots[1])) as token:
        signer = token.generate_key("in-slot", "EdDSA")
        verify_with_cryptography(signer.public_jwk(), b"m", signer.sign_blocking(b"m"))
    with Pkcs11Token(softhsm.config(slot=slots[0])) as token:
        assert token.list_keys() == []
    with pytest.raises(TokenNotFound, match=r"token 'pavilion-test' in slot 1 not found"):
        Pkcs11Token(softhsm.config(slot=1)).start()


def test_missing_module_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-pkcs11.so"
    token = Pkcs11Token(Pkcs11Config(str(missing), "t", "1234"))
    with pytest.raises(Pkcs11ModuleError) as caught:
        token.get_signer("anything")
    assert str(caught.value).startswith(f"PKCS#11 module not found at '{missing}'")
    assert not active_workers()


def test_module_that_is_not_a_pkcs11_library(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not a shared library")
    with pytest.raises(Pkcs11ModuleError) as caught:
        Pkcs11Token(Pkcs11Config(str(bogus), "t", "1234")).start()
    assert str(caught.value).startswith(f"PKCS#11 module at '{bogus}' could not be loaded: ")
    assert isinstance(caught.value.__cause__, pkcs11.PKCS11Error)


async def test_unknown_key_label(softhsm: SoftHsm) -> None:
    async with Pkcs11Token(softhsm.config()) as token:
        with pytest.raises(KeyNotFound) as caught:
            await token.aget_signer("missing")
        assert str(caught.value) == "no key labelled 'missing' on PKCS#11 token 'pavilion-test'"
        with pytest.raises(KeyNotFound, match="no key labelled 'missing'"):
            token.get_signer("missing")
        with pytest.raises(KeyNotFound, match="no key labelled 'missing'"):
            token.destroy_key("missing")
        with pytest.raises(KeyNotFound):
            token.key_info("missing")


async def test_duplicate_label_and_destroyed_key(softhsm: SoftHsm) -> None:
    async with Pkcs11Token(softhsm.config()) as token:
        signer = await token.agenerate_key("dup", "ES256")
        with pytest.raises(KeyAlreadyExists, match="a key labelled 'dup' already exists"):
            await token.agenerate_key("dup", "EdDSA")
        await token.adestroy_key("dup")
        # A signing key gone from the token: the token cannot sign (503 at the API), not a 500.
        with pytest.raises(Pkcs11Unavailable, match="is gone from PKCS#11 token 'pavilion-test'"):
            await signer.sign(b"m")


def test_same_token_opened_twice_shares_one_login(softhsm: SoftHsm) -> None:
    first = Pkcs11Token(softhsm.config())
    second = Pkcs11Token(softhsm.config())
    with first, second:
        signer = first.generate_key("shared", "ES256")
        assert second.get_signer("shared").key_id == signer.key_id
        with pytest.raises(Pkcs11LoginFailed, match="wrong PIN"):
            Pkcs11Token(softhsm.config(user_pin="bad")).start()
        first.close()
        # the second holder keeps its session; the first one's signer is now refused
        verify_with_cryptography(
            signer.public_jwk(), b"m", second.get_signer("shared").sign_blocking(b"m")
        )
        with pytest.raises(Pkcs11Unavailable, match="token 'pavilion-test' is closed"):
            signer.sign_blocking(b"m")


def test_login_made_elsewhere_in_the_process_is_reused(softhsm: SoftHsm) -> None:
    """UserAlreadyLoggedIn: PKCS#11 login state belongs to the process, not the session."""
    lib = pkcs11.lib(softhsm.module_path)
    lib.reinitialize()
    outside = lib.get_token(token_label=softhsm.label).open(user_pin=softhsm.pin)
    try:
        with Pkcs11Token(softhsm.config()) as token:
            signer = token.generate_key("k", "EdDSA")
            verify_with_cryptography(signer.public_jwk(), b"m", signer.sign_blocking(b"m"))
    finally:
        del outside  # finalised with the module when the token closed


async def test_closed_and_unstarted_tokens_refuse_work(softhsm: SoftHsm) -> None:
    token = Pkcs11Token(softhsm.config())
    assert "not started" in repr(token)
    with pytest.raises(Pkcs11Unavailable, match="is not started"):
        token._session()
    await token.astart()
    await token.astart()  # idempotent
    token.start()
    assert "open" in repr(token)
    assert token.label == "pavilion-test"
    assert token.config.token_label == "pavilion-test"
    signer = await token.agenerate_key("k", "ES256")
    assert "ES256" in repr(signer)
    await token.aclose()
    await token.aclose()  # idempotent
    token.close()
    assert token.closed
    assert "closed" in repr(token)
    with pytest.raises(Pkcs11Unavailable, match="PKCS#11 token 'pavilion-test' is closed"):
        await signer.sign(b"m")
    with pytest.raises(Pkcs11Unavailable, match="is closed"):
        token.list_keys()
    with pytest.raises(Pkcs11Unavailable, match="is closed"):
        await token.alist_keys()


def test_close_before_start_and_close_while_opening(softhsm: SoftHsm) -> None:
    Pkcs11Token(softhsm.config()).close()
    token = Pkcs11Token(softhsm.config())
    token._begin_open()  # the open is queued ...
    token.close()  # ... and closed before anyone waited for it
    assert not active_workers()


def test_worker_death_fails_callers_fast(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom(BaseException):
        pass

    entered, release = threading.Event(), threading.Event()
    real_sign = ModuleOps.sign

    def dying_sign(self: ModuleOps, ref: int, cka_id: bytes, algorithm: str, data: bytes) -> bytes:
        if data == b"die":
            entered.set()
            release.wait(10)
            raise Boom("simulated crash of the worker thread")
        return real_sign(self, ref, cka_id, algorithm, data)

    monkeypatch.setattr(ModuleOps, "sign", dying_sign)
    token = Pkcs11Token(softhsm.config())
    signer = token.generate_key("k", "EdDSA")
    in_flight = token._session()[0].submit(
        token._session()[0].ops.sign, token._session()[1], signer._cka_id, "EdDSA", b"die"
    )
    assert entered.wait(10)

    async def queued() -> bytes:
        return await signer.sign(b"queued behind the crash")

    jobs = token._session()[0]._queue  # what waits behind the crashing sign

    async def scenario() -> None:
        waiting = asyncio.ensure_future(queued())
        await until(lambda: jobs.qsize() == 1, what="the first sign to queue")
        cancelled = asyncio.ensure_future(queued())
        await until(lambda: jobs.qsize() == 2, what="the second sign to queue")
        cancelled.cancel()
        blocked = asyncio.ensure_future(asyncio.to_thread(signer.sign_blocking, b"blocked"))
        await until(lambda: jobs.qsize() == 3, what="the blocking sign to queue")
        release.set()
        with pytest.raises(Pkcs11Unavailable, match=r"worker .* died"):
            await waiting
        with pytest.raises(Pkcs11Unavailable, match=r"worker .* died"):
            await blocked

    asyncio.run(scenario())
    with pytest.raises(Pkcs11Unavailable, match="died"):
        in_flight.result(10)
    started = time.monotonic()
    with pytest.raises(Pkcs11Unavailable, match=r"died \(Boom: simulated crash"):
        signer.sign_blocking(b"after")
    assert time.monotonic() - started < 1
    assert not active_workers()
    token.close()
    # a fresh token gets a fresh worker
    monkeypatch.setattr(ModuleOps, "sign", real_sign)
    with Pkcs11Token(softhsm.config()) as again:
        fresh = again.get_signer("k")
        verify_with_cryptography(fresh.public_jwk(), b"ok", fresh.sign_blocking(b"ok"))


async def test_slow_token_times_out(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    real_list = ModuleOps.list_keys
    slow_calls_done: list[int] = []

    def slow_list(self: ModuleOps, ref: int) -> list[KeyRecord]:
        time.sleep(0.3)
        try:
            return real_list(self, ref)
        finally:
            slow_calls_done.append(ref)

    monkeypatch.setattr(ModuleOps, "list_keys", slow_list)
    token = Pkcs11Token(softhsm.config(operation_timeout_s=0.1))
    await token.astart()
    with pytest.raises(Pkcs11Unavailable, match=r"did not answer within 0\.1 s"):
        await token.alist_keys()
    worker, ref = token._session()
    abandoned = worker.submit(worker.ops.list_keys, ref)  # queued behind the slow call
    assert abandoned.cancel()  # the worker skips it
    with pytest.raises(Pkcs11Unavailable, match=r"did not answer within 0\.1 s"):
        token.list_keys()
    monkeypatch.setattr(ModuleOps, "list_keys", real_list)
    await until(lambda: len(slow_calls_done) == 2, what="both slow calls to end")
    assert await token.alist_keys() == []
    await token.aclose()


def test_slow_open_times_out_and_can_be_awaited_again(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = ModuleOps.open_token
    opened: list[int] = []

    def slow_open(self: ModuleOps, label: str, pin: str, slot: int | None) -> int:
        time.sleep(0.3)
        opened.append(real_open(self, label, pin, slot))
        return opened[-1]

    monkeypatch.setattr(ModuleOps, "open_token", slow_open)
    token = Pkcs11Token(softhsm.config(operation_timeout_s=0.1))
    with pytest.raises(Pkcs11Unavailable, match="did not answer"):
        token.start()

    async def astart_twice() -> None:
        with pytest.raises(Pkcs11Unavailable, match="did not answer"):
            await token.astart()
        await until(lambda: bool(opened), what="the slow open to end")
        await token.astart()

    asyncio.run(astart_twice())
    assert token.list_keys() == []
    token.close()


def test_unexpected_pkcs11_errors_are_wrapped_once(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ModuleOps, ref: int) -> list[KeyRecord]:
        raise pkcs11.DeviceError("the device caught fire")

    monkeypatch.setattr(ModuleOps, "list_keys", broken)
    with Pkcs11Token(softhsm.config()) as token:
        with pytest.raises(Pkcs11OperationFailed) as caught:
            token.list_keys()
        assert str(caught.value) == (
            "PKCS#11 operation 'broken' failed: DeviceError: the device caught fire"
        )
        assert isinstance(caught.value.__cause__, pkcs11.DeviceError)

        signer = token.generate_key("k", "ES256")
        worker, ref = token._session()
        with pytest.raises(Pkcs11OperationFailed, match="EdDSA signing failed with key") as sig:
            # CKM_EDDSA with a P-256 key: the module refuses the mechanism
            worker.submit(worker.ops.sign, ref, signer._cka_id, "EdDSA", b"m").result(10)
        assert isinstance(sig.value.__cause__, pkcs11.PKCS11Error)
        # the failure dropped the cached handle: the next sign looks the key up again
        verify_with_cryptography(signer.public_jwk(), b"m", signer.sign_blocking(b"m"))
        with pytest.raises(Pkcs11Unavailable, match="session is closed"):
            worker.submit(worker.ops.find, 999, "k").result(10)
        worker.submit(worker.ops.close_token, 999).result(10)  # unknown: nothing to do


def test_config_validation_and_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="label must not be empty"):
        Pkcs11Config("/m.so", "", "1")
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        Pkcs11Config("/m.so", "t", "1", operation_timeout_s=0)

    env = {
        "PAVILION_HSM_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
        "PAVILION_HSM_TOKEN_LABEL": "pavilion",
        "PAVILION_HSM_PIN": "1234",
    }
    config = Pkcs11Config.from_env(env)
    assert config == Pkcs11Config("/usr/lib/softhsm/libsofthsm2.so", "pavilion", "1234")
    assert "1234" not in repr(config)

    pin_file = tmp_path / "pin"
    pin_file.write_text("s3cret\n", encoding="utf-8")
    from_file = Pkcs11Config.from_env(
        {
            "X_MODULE": "/m.so",
            "X_TOKEN_LABEL": "t",
            "X_PIN_FILE": str(pin_file),
            "X_SLOT": "7",
            "X_TIMEOUT_S": "2.5",
        },
        prefix="X_",
    )
    assert (from_file.user_pin, from_file.slot, from_file.operation_timeout_s) == (
        "s3cret",
        7,
        2.5,
    )

    def fails(environ: dict[str, str], message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            Pkcs11Config.from_env(environ)

    fails({**env, "PAVILION_HSM_PIN_FILE": str(pin_file)}, "not both")
    fails({**env, "PAVILION_HSM_PIN": ""}, "PAVILION_HSM_PIN or PAVILION_HSM_PIN_FILE is not set")
    fails({**env, "PAVILION_HSM_MODULE": ""}, "PAVILION_HSM_MODULE is not set")
    fails({**env, "PAVILION_HSM_SLOT": "first"}, "SLOT must be an integer")
    fails(
        {**env, "PAVILION_HSM_PIN": "", "PAVILION_HSM_PIN_FILE": str(tmp_path / "none")},
        "PAVILION_HSM_PIN_FILE: cannot read",
    )
    monkey_env = {**env}
    assert Pkcs11Config.from_env(monkey_env).token_label == "pavilion"


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVILION_HSM_MODULE", "/m.so")
    monkeypatch.setenv("PAVILION_HSM_TOKEN_LABEL", "t")
    monkeypatch.setenv("PAVILION_HSM_PIN", "p")
    assert Pkcs11Config.from_env().module_path == "/m.so"


@pytest.mark.parametrize(
    ("algorithm", "point", "message"),
    [
        ("ES256", b"\x04" * 66, "unexpected CKA_EC_POINT encoding"),
        ("ES256", b"\x04" + b"\x01" * 64, "invalid public key"),  # not on the curve
        ("EdDSA", b"\x04\x21" + b"\x00" * 33, "unexpected CKA_EC_POINT encoding"),
    ],
)
def test_bad_public_points_are_refused(algorithm: str, point: bytes, message: str) -> None:
    from pavilion.keystore.pkcs11.signer import public_jwk

    record = KeyRecord(
        label="k",
        cka_id=b"\x01",
        algorithm=algorithm,  # type: ignore[arg-type]
        ec_point=point,
        token=True,
        private=True,
        sensitive=True,
        extractable=False,
        always_sensitive=True,
        never_extractable=True,
        local=True,
        can_sign=True,
    )
    with pytest.raises(Pkcs11OperationFailed, match=message):
        public_jwk(record)


def test_bare_ec_points_are_accepted() -> None:
    """Some tokens return CKA_EC_POINT without the DER OCTET STRING around it."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from pavilion.keystore.pkcs11.signer import public_jwk

    es_point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    ed_point = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    for algorithm, point in (("ES256", es_point), ("EdDSA", ed_point)):
        common = {
            "label": "k",
            "cka_id": b"\x01",
            "token": True,
            "private": True,
            "sensitive": True,
            "extractable": False,
            "always_sensitive": True,
            "never_extractable": True,
            "local": True,
            "can_sign": True,
        }
        bare = public_jwk(KeyRecord(algorithm=algorithm, ec_point=point, **common))  # type: ignore[arg-type]
        size = len(point)
        wrapped = public_jwk(
            KeyRecord(algorithm=algorithm, ec_point=bytes([4, size]) + point, **common)  # type: ignore[arg-type]
        )
        assert bare == wrapped


def test_worker_registry_is_per_module(softhsm: SoftHsm) -> None:
    with Pkcs11Token(softhsm.config()) as a, Pkcs11Token(softhsm.config()) as b:
        assert a._session()[0] is b._session()[0]
        assert len(active_workers()) == 1
        worker = active_workers()[0]
        assert worker.usable
    worker.join(5)
    assert not worker.usable
    with pytest.raises(Pkcs11Unavailable, match="is shut down"):
        worker.submit(time.sleep, 0)
    assert describe(ValueError()) == "ValueError"


# python-pkcs11's SearchIter reports C_FindObjectsFinal on the dead session from its __del__
# (on the worker thread, after the search failed): noise, not a failure of the connector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_lost_session_is_reopened_once(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session that dies under the worker (HSM restart, network drop) is replaced once."""
    with Pkcs11Token(softhsm.config()) as token:
        signer = token.generate_key("k", "ES256")
        worker, ref = token._session()

        def lose_session(forget_keys: bool) -> None:
            worker.ops._tokens[ref].session.close()  # logs out and closes, behind our back
            if forget_keys:
                worker.ops._keys.clear()

        worker.submit(lose_session, False).result(10)  # cached key handle on a dead session
        verify_with_cryptography(signer.public_jwk(), b"a", signer.sign_blocking(b"a"))
        worker.submit(lose_session, True).result(10)  # key lookup on a dead session
        verify_with_cryptography(signer.public_jwk(), b"b", signer.sign_blocking(b"b"))
        assert [k.label for k in token.list_keys()] == ["k"]

        monkeypatch.setattr(ModuleOps, "_reopen", lambda self, ref: None)  # cannot recover
        worker.submit(lose_session, False).result(10)
        with pytest.raises(Pkcs11Unavailable, match=r"cannot sign .*SessionHandleInvalid"):
            signer.sign_blocking(b"c")
