"""Signing keys inside a PKCS#11 token (an HSM, or SoftHSM2 in development).

Keys are generated inside the token (``CKA_TOKEN``, ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``)
and never leave it; :class:`Pkcs11Signer` implements :class:`~pavilion.keystore.signer.Signer`
on top of them::

    config = Pkcs11Config(module_path=..., token_label="pavilion", user_pin=pin_from_env)
    async with Pkcs11Token(config) as token:
        signer = await token.aget_signer("issuer-2025")
        signature = await signer.sign(b"header.payload")   # raw r||s for ES256

Every call into the module runs on one worker thread per module path
(:mod:`pavilion.keystore.pkcs11_worker`); this module only builds JWKs, thumbprints and typed
answers from the plain records the worker returns. ES256 signs are SHA-256 on the host and
``CKM_ECDSA`` (raw ``r || s``) in the token; EdDSA signs are ``CKM_EDDSA`` over the message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pavilion.errors import ConfigurationError
from pavilion.jose import b64url, jwk_thumbprint
from pavilion.keystore.pkcs11_worker import (
    KeyAlreadyExists,
    KeyNotFound,
    KeyRecord,
    ModuleOps,
    Pkcs11DecryptFailed,
    Pkcs11Error,
    Pkcs11LoginFailed,
    Pkcs11ModuleError,
    Pkcs11OperationFailed,
    Pkcs11Unavailable,
    Pkcs11Worker,
    SecretKeyRecord,
    TokenNotFound,
    UnsupportedKey,
    acquire_worker,
    release_worker,
)
from pavilion.keystore.signer import Algorithm

__all__ = [
    "DEFAULT_ENV_PREFIX",
    "KeyAlreadyExists",
    "KeyInfo",
    "KeyNotFound",
    "Pkcs11Config",
    "Pkcs11DecryptFailed",
    "Pkcs11Error",
    "Pkcs11LoginFailed",
    "Pkcs11ModuleError",
    "Pkcs11OperationFailed",
    "Pkcs11Signer",
    "Pkcs11Token",
    "Pkcs11Unavailable",
    "SecretKeyRecord",
    "TokenNotFound",
    "UnsupportedKey",
]

T = TypeVar("T")

#: Environment variables read by :meth:`Pkcs11Config.from_env` (prefix + MODULE, TOKEN_LABEL,
#: PIN or PIN_FILE, SLOT, TIMEOUT_S).
DEFAULT_ENV_PREFIX: Final = "PAVILION_HSM_"

_POINT_SIZE: Final[dict[str, int]] = {"ES256": 65, "EdDSA": 32}


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Where the token is and how to log in. The PIN never appears in ``repr``."""

    module_path: str
    token_label: str
    user_pin: str = field(repr=False)
    slot: int | None = None
    #: How long a caller waits for the token before giving up with :class:`Pkcs11Unavailable`.
    operation_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.token_label:
            raise ConfigurationError("the PKCS#11 token label must not be empty")
        if self.operation_timeout_s <= 0:
            raise ConfigurationError("the PKCS#11 operation timeout must be positive")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = DEFAULT_ENV_PREFIX
    ) -> Pkcs11Config:
        """Read ``<prefix>`` + MODULE, TOKEN_LABEL, PIN or PIN_FILE, SLOT and TIMEOUT_S.

        The PIN comes from the environment or from a file (a mounted secret; one trailing
        newline is ignored), never from the command line.
        """
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(prefix + name, "")
            if not value:
                raise ConfigurationError(f"{prefix}{name} is not set")
            return value

        pin = env.get(prefix + "PIN", "")
        pin_file = env.get(prefix + "PIN_FILE", "")
        if pin and pin_file:
            raise ConfigurationError(f"set {prefix}PIN or {prefix}PIN_FILE, not both")
        if pin_file:
            try:
                pin = Path(pin_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"{prefix}PIN_FILE: cannot read '{pin_file}': {exc.strerror}"
                ) from exc
        if not pin:
            raise ConfigurationError(f"{prefix}PIN or {prefix}PIN_FILE is not set")
        try:
            slot = int(env[prefix + "SLOT"]) if env.get(prefix + "SLOT") else None
            timeout = float(env.get(prefix + "TIMEOUT_S") or 30.0)
        except ValueError as exc:
            raise ConfigurationError(
                f"{prefix}SLOT must be an integer and {prefix}TIMEOUT_S a number of seconds"
            ) from exc
        return cls(
            module_path=required("MODULE"),
            token_label=required("TOKEN_LABEL"),
            user_pin=pin,
            slot=slot,
            operation_timeout_s=timeout,
        )


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A signing key pair on the token, and the protection flags of its private half."""

    label: str
    #: RFC 7638 thumbprint of the public JWK (the ``kid``).
    key_id: str
    algorithm: Algorithm
    #: CKA_ID, hex.
    cka_id: str
    on_token: bool
    private: bool
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    #: Generated inside the token (CKA_LOCAL).
    local: bool


def _public_point(record: KeyRecord) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point; some tokens send the bare point."""
    raw, size = record.ec_point, _POINT_SIZE[record.algorithm]
    if len(raw) == size + 2 and raw[0] == 0x04 and raw[1] == size:
        return raw[2:]
    if len(raw) == size:
        return raw
    raise Pkcs11OperationFailed(
        f"key '{record.label}': unexpected CKA_EC_POINT encoding ({len(raw)} bytes)"
    )


def _public_jwk(record: KeyRecord) -> dict[str, str]:
    """The public JWK with ``kid`` (RFC 7638 thumbprint) and ``alg``."""
    point = _public_point(record)
    jwk: dict[str, str]
    try:
        if record.algorithm == "ES256":
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # on the curve
            jwk = {"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}
        else:
            ed25519.Ed25519PublicKey.from_public_bytes(point)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(point)}
    except ValueError as exc:
        raise Pkcs11OperationFailed(
            f"key '{record.label}': the token returned an invalid public key"
        ) from exc
    jwk["kid"] = jwk_thumbprint(jwk)
    jwk["alg"] = record.algorithm
    return jwk


def _key_info(record: KeyRecord, kid: str) -> KeyInfo:
    return KeyInfo(
        label=record.label,
        key_id=kid,
        algorithm=record.algorithm,
        cka_id=record.cka_id.hex(),
        on_token=record.token,
        private=record.private,
        sensitive=record.sensitive,
        extractable=record.extractable,
        always_sensitive=record.always_sensitive,
        never_extractable=record.never_extractable,
        local=record.local,
    )


class _LoopDeadlines:
    """Fails awaited worker futures that outlive the timeout, for one event loop.

    One periodic timer per loop instead of a timer per call: a deadline check costs a dict
    insert and delete on the signing path (``asyncio.timeout`` costs about ten times more).
    Only the loop's own thread touches an instance.
    """

    __slots__ = ("_make_error", "_pending", "_period", "_timer")

    def __init__(self, period: float, make_error: Callable[[], Exception]) -> None:
        self._period = period
        self._make_error = make_error
        self._pending: dict[asyncio.Future[object], float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[object], deadline: float) -> None:
        self._pending[future] = deadline
        if self._timer is None:
            self._timer = future.get_loop().call_later(self._period, self._sweep)

    def forget(self, future: asyncio.Future[object]) -> None:
        self._pending.pop(future, None)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for future, deadline in list(self._pending.items()):
            if deadline <= now:
                del self._pending[future]
                if not future.done():
                    future.set_exception(self._make_error())
        self._timer = loop.call_later(self._period, self._sweep) if self._pending else None


def _close_opened(ops: ModuleOps, opening: concurrent.futures.Future[int]) -> None:
    """Runs on the worker after the open (FIFO), so ``opening`` is settled by then."""
    if opening.done() and not opening.cancelled() and opening.exception() is None:
        ops.close_token(opening.result())


class Pkcs11Token:
    """One PKCS#11 token, logged in once, with one long-lived session on the module's worker.

    Start it explicitly (:meth:`start` / :meth:`astart`), as a (async) context manager, or let
    the first call start it. ``generate_key``, ``get_signer``, ``list_keys``, ``key_info`` and
    ``destroy_key`` block the caller; the ``a``-prefixed twins await instead.
    """

    def __init__(self, config: Pkcs11Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._worker: Pkcs11Worker | None = None
        self._opening: concurrent.futures.Future[int] | None = None
        self._ref: int | None = None
        self._closed = False
        self._deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDeadlines] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._ref is not None else "not started"
        return f"<Pkcs11Token '{self._config.token_label}' {state}>"

    @property
    def config(self) -> Pkcs11Config:
        return self._config

    @property
    def label(self) -> str:
        return self._config.token_label

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ready(self) -> bool:
        """Started, not closed, and its worker thread alive (no round trip to the token)."""
        worker = self._worker
        return not self._closed and self._ref is not None and worker is not None and worker.usable

    # -- lifecycle ----------------------------------------------------------------------------

    def _begin_open(self) -> concurrent.futures.Future[int]:
        with self._lock:
            if self._closed:
                raise Pkcs11Unavailable(f"PKCS#11 token '{self.label}' is closed")
            if self._opening is None:
                cfg = self._config
                worker = acquire_worker(cfg.module_path)
                self._worker = worker
                self._opening = worker.submit(
                    worker.ops.open_token, cfg.token_label, cfg.user_pin, cfg.slot
                )
            return self._opening

    def _opened(self, opening: concurrent.futures.Future[int], ref: int) -> None:
        with self._lock:
            if self._opening is opening and not self._closed:
                self._ref = ref

    def _abandon(self, opening: concurrent.futures.Future[int]) -> concurrent.futures.Future[None]:
        """The open failed: give the worker back so a later ``start`` begins afresh."""
        stop: concurrent.futures.Future[None] | None = None
        with self._lock:
            if self._opening is opening and self._worker is not None:
                worker, self._worker, self._opening = self._worker, None, None
                stop = release_worker(worker)
        if stop is None:
            stop = concurrent.futures.Future()
            stop.set_result(None)
        return stop

    def start(self) -> None:
        """Load the module, find the token and log in (once); blocks until done."""
        if self._ref is not None and not self._closed:
            return
        opening = self._begin_open()
        try:
            ref = opening.result(self._config.operation_timeout_s)
        except concurrent.futures.TimeoutError as exc:  # still opening: a retry waits again
            raise self._timed_out() from exc
        except BaseException:
            self._settle(self._abandon(opening))
            raise
        self._opened(opening, ref)

    async def astart(self) -> None:
        """:meth:`start` without blocking the event loop."""
        if self._ref is not None and not self._closed:
            return
        opening = self._begin_open()
        try:
            async with asyncio.timeout(self._config.operation_timeout_s):
                ref = await asyncio.shield(asyncio.wrap_future(opening))
        except TimeoutError as exc:  # still opening: a retry waits again
            raise self._timed_out() from exc
        except BaseException:
            await self._asettle(self._abandon(opening))
            raise
        self._opened(opening, ref)

    def _begin_close(self) -> concurrent.futures.Future[None] | None:
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            worker, opening = self._worker, self._opening
            self._worker, self._opening, self._ref = None, None, None
        if worker is None or opening is None:
            return None
        with contextlib.suppress(Pkcs11Unavailable):
            worker.submit(_close_opened, worker.ops, opening)
        return release_worker(worker)

    def close(self) -> None:
        """Log out and close the session; the last token of a module also finalises it."""
        stop = self._begin_close()
        if stop is not None:
            self._settle(stop)

    async def aclose(self) -> None:
        stop = self._begin_close()
        if stop is not None:
            await self._asettle(stop)

    def _settle(self, stop: concurrent.futures.Future[None]) -> None:
        with contextlib.suppress(concurrent.futures.TimeoutError):
            stop.result(self._config.operation_timeout_s)

    async def _asettle(self, stop: concurrent.futures.Future[None]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.operation_timeout_s):
                await asyncio.shield(asyncio.wrap_future(stop))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- plumbing -----------------------------------------------------------------------------

    def _session(self) -> tuple[Pkcs11Worker, int]:
        worker, ref = self._worker, self._ref
        if self._closed or worker is None or ref is None:
            state = "closed" if self._closed else "not started"
            raise Pkcs11Unavailable(f"PKCS#11 token '{self.label}' is {state}")
        return worker, ref

    def _timed_out(self) -> Pkcs11Unavailable:
        return Pkcs11Unavailable(
            f"PKCS#11 token '{self.label}' did not answer within "
            f"{self._config.operation_timeout_s:g} s"
        )

    def _wait(self, future: concurrent.futures.Future[T]) -> T:
        try:
            return future.result(self._config.operation_timeout_s)
        except concurrent.futures.TimeoutError as exc:
            raise self._timed_out() from exc

    async def _await(self, future: asyncio.Future[T]) -> T:
        loop = future.get_loop()
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            timeout = self._config.operation_timeout_s
            deadlines = _LoopDeadlines(min(1.0, timeout / 4), self._timed_out)
            with self._lock:
                self._deadlines[loop] = deadlines
        deadlines.watch(future, loop.time() + self._config.operation_timeout_s)  # type: ignore[arg-type]
        try:
            return await future
        finally:
            deadlines.forget(future)  # type: ignore[arg-type]

    # -- keys ---------------------------------------------------------------------------------

    def generate_key(self, label: str, algorithm: Algorithm) -> Pkcs11Signer:
        """Generate a non-extractable ES256 or EdDSA key pair inside the token."""
        self.start()
        worker, ref = self._session()
        return Pkcs11Signer(
            self, self._wait(worker.submit(worker.ops.generate, ref, label, algorithm))
        )

    async def agenerate_key(self, label: str, algorithm: Algorithm) -> Pkcs11Signer:
        await self.astart()
        worker, ref = self._session()
        record = await self._await(worker.submit_async(worker.ops.generate, ref, label, algorithm))
        return Pkcs11Signer(self, record)

    def get_signer(self, label: str) -> Pkcs11Signer:
        """The signer of an existing key pair; :class:`KeyNotFound` if there is none."""
        self.start()
        worker, ref = self._session()
        return Pkcs11Signer(self, self._wait(worker.submit(worker.ops.find, ref, label)))

    async def aget_signer(self, label: str) -> Pkcs11Signer:
        await self.astart()
        worker, ref = self._session()
        return Pkcs11Signer(
            self, await self._await(worker.submit_async(worker.ops.find, ref, label))
        )

    def key_info(self, label: str) -> KeyInfo:
        """The key's kid, algorithm and protection flags (read from the token)."""
        return self.get_signer(label).info

    async def akey_info(self, label: str) -> KeyInfo:
        return (await self.aget_signer(label)).info

    def list_keys(self) -> list[KeyInfo]:
        """Every ES256/EdDSA key pair on the token, by label (other objects are left out)."""
        self.start()
        worker, ref = self._session()
        records = self._wait(worker.submit(worker.ops.list_keys, ref))
        return [_key_info(r, _public_jwk(r)["kid"]) for r in records]

    async def alist_keys(self) -> list[KeyInfo]:
        await self.astart()
        worker, ref = self._session()
        records = await self._await(worker.submit_async(worker.ops.list_keys, ref))
        return [_key_info(r, _public_jwk(r)["kid"]) for r in records]

    def destroy_key(self, label: str) -> None:
        """Delete both halves of the key pair; :class:`KeyNotFound` if there is none."""
        self.start()
        worker, ref = self._session()
        self._wait(worker.submit(worker.ops.destroy, ref, label))

    async def adestroy_key(self, label: str) -> None:
        await self.astart()
        worker, ref = self._session()
        await self._await(worker.submit_async(worker.ops.destroy, ref, label))

    # -- keystore support (labels as state, AES key-encryption keys) -------------------------

    def list_signers(self) -> list[Pkcs11Signer]:
        """A signer for every ES256/EdDSA key pair on the token, by label."""
        self.start()
        worker, ref = self._session()
        return [Pkcs11Signer(self, r) for r in self._wait(worker.submit(worker.ops.list_keys, ref))]

    async def alist_signers(self) -> list[Pkcs11Signer]:
        await self.astart()
        worker, ref = self._session()
        records = await self._await(worker.submit_async(worker.ops.list_keys, ref))
        return [Pkcs11Signer(self, r) for r in records]

    def list_secret_keys(self) -> list[SecretKeyRecord]:
        """Every AES secret key on the token."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(worker.ops.list_secret_keys, ref))

    async def alist_secret_keys(self) -> list[SecretKeyRecord]:
        await self.astart()
        worker, ref = self._session()
        return await self._await(worker.submit_async(worker.ops.list_secret_keys, ref))

    def generate_secret_key(self, label: str) -> SecretKeyRecord:
        """Generate a non-extractable AES-256 encrypt/decrypt key inside the token."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(worker.ops.generate_secret, ref, label))

    async def agenerate_secret_key(self, label: str) -> SecretKeyRecord:
        await self.astart()
        worker, ref = self._session()
        return await self._await(worker.submit_async(worker.ops.generate_secret, ref, label))

    def relabel(self, cka_id: bytes, label: str) -> None:
        """Set the label of every object with this CKA_ID."""
        self.start()
        worker, ref = self._session()
        self._wait(worker.submit(worker.ops.relabel, ref, cka_id, label))

    async def arelabel(self, cka_id: bytes, label: str) -> None:
        await self.astart()
        worker, ref = self._session()
        await self._await(worker.submit_async(worker.ops.relabel, ref, cka_id, label))

    def encrypt_gcm(self, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """AES-GCM inside the token under the secret key ``cka_id``: ciphertext || tag."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(worker.ops.encrypt_gcm, ref, cka_id, iv, aad, data))

    def decrypt_gcm(self, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """:class:`Pkcs11DecryptFailed` when the tag does not verify (tampered, wrong aad)."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(worker.ops.decrypt_gcm, ref, cka_id, iv, aad, data))


class Pkcs11Signer:
    """A key pair inside a PKCS#11 token, as a :class:`~pavilion.keystore.signer.Signer`."""

    __slots__ = ("_algorithm", "_cka_id", "_es256", "_info", "_jwk", "_kid", "_label", "_token")

    def __init__(self, token: Pkcs11Token, record: KeyRecord) -> None:
        self._token = token
        self._jwk = _public_jwk(record)
        self._kid = self._jwk["kid"]
        self._label = record.label
        self._algorithm: Algorithm = record.algorithm
        self._es256 = record.algorithm == "ES256"
        self._cka_id = record.cka_id
        self._info = _key_info(record, self._kid)

    def __repr__(self) -> str:
        return f"<Pkcs11Signer '{self._label}' {self._algorithm} kid={self._kid}>"

    @property
    def key_id(self) -> str:
        """RFC 7638 thumbprint of the public JWK."""
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def label(self) -> str:
        return self._label

    @property
    def info(self) -> KeyInfo:
        """The key's flags as read when this signer was made."""
        return self._info

    @property
    def cka_id(self) -> bytes:
        return self._cka_id

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    def _input(self, message: bytes) -> bytes:
        return hashlib.sha256(message).digest() if self._es256 else bytes(message)

    async def sign(self, message: bytes) -> bytes:
        """Raw JOSE signature: ``r || s`` for ES256, the 64-byte Ed25519 signature for EdDSA."""
        data = self._input(message)
        worker, ref = self._token._session()
        future = worker.submit_async(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        return await self._token._await(future)

    def sign_blocking(self, message: bytes) -> bytes:
        """:meth:`sign` for threads and CLI code (never call it on an event loop)."""
        data = self._input(message)
        worker, ref = self._token._session()
        future = worker.submit(worker.ops.sign, ref, self._cka_id, self._algorithm, data)
        return self._token._wait(future)
