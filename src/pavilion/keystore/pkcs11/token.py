"""One PKCS#11 token, logged in once, with one long-lived session on its module's worker.

:class:`Pkcs11Token` opens the token on the module's worker thread
(:mod:`~pavilion.keystore.pkcs11.worker`), hands out
:class:`~pavilion.keystore.pkcs11.signer.Pkcs11Signer` objects for its key pairs, and runs the
keystore's other token operations (labels as key state, AES key-encryption keys, AES-GCM
wrapping). Every call waits at most the configured timeout, blocking (``generate_key``) or
awaited (``agenerate_key``).

A token that fails to sign (its device, session or keys gone) is marked failed in its
:class:`~pavilion.keystore.pkcs11.recovery.Recovery`; signers then fail fast (or fail over to
their standby) and, with backoff, one caller at a time recovers the token (the module is
initialised again and the sessions logged in again) before it signs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

from pavilion.keystore.pkcs11.config import Pkcs11Config
from pavilion.keystore.pkcs11.errors import Pkcs11Error, Pkcs11Unavailable, describe
from pavilion.keystore.pkcs11.metrics import TOKEN_UP
from pavilion.keystore.pkcs11.ops import ModuleOps
from pavilion.keystore.pkcs11.records import SecretKeyRecord
from pavilion.keystore.pkcs11.recovery import Recovery
from pavilion.keystore.pkcs11.signer import KeyInfo, Pkcs11Signer, key_info, public_jwk
from pavilion.keystore.pkcs11.worker import Pkcs11Worker, acquire_worker, release_worker
from pavilion.keystore.signer import Algorithm
from pavilion.observability.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)


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
        #: Failed or not, and when to try again (signers read ``recovery.failed``).
        self.recovery = Recovery(config.recovery_initial_s, config.recovery_max_s)

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

    # -- failure and recovery -----------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        """The token could not sign: fail fast until the next recovery attempt is due."""
        first = not self.recovery.failed
        self.recovery.failure(describe(exc))
        if first:
            TOKEN_UP.labels(self.label).set(0)
            log.warning("hsm token failed", token=self.label, error=type(exc).__name__)

    def _recovered(self) -> None:
        failures = self.recovery.failures
        self.recovery.success()
        TOKEN_UP.labels(self.label).set(1)
        log.warning("hsm token recovered", token=self.label, failed_attempts=failures)

    def unavailable(self) -> Pkcs11Unavailable:
        """The error a failed token answers until its next recovery attempt."""
        wait = self.recovery.retry_after_s()
        return Pkcs11Unavailable(
            f"PKCS#11 token '{self.label}' cannot sign ({self.recovery.last_error}); the next "
            f"recovery attempt is in about {wait} s",
            retry_after_s=wait,
        )

    @property
    def started(self) -> bool:
        return self._ref is not None

    @contextlib.contextmanager
    def _failing_to_open(self) -> Iterator[None]:
        """A token that fails to open is unavailable (503), whatever PKCS#11 said."""
        try:
            yield
        except Pkcs11Unavailable:
            raise
        except Pkcs11Error as exc:
            raise Pkcs11Unavailable(
                f"PKCS#11 token '{self.label}' did not open: {exc.detail}"
            ) from exc

    def _unopened(self) -> bool:
        return self._ref is None and not self._closed

    def recover_blocking(self) -> None:
        """Initialise the module again and log in again (:meth:`ModuleOps.recover`); a token
        never started (a standby, opened on first use) is started instead. Blocks."""
        if self._unopened():
            with self._failing_to_open():
                self.start()
            return
        worker, ref = self._session()
        self._wait(worker.submit(worker.ops.recover, ref))

    async def arecover(self) -> None:
        if self._unopened():
            with self._failing_to_open():
                await self.astart()
            return
        worker, ref = self._session()
        await self._await(worker.submit_async(worker.ops.recover, ref))

    def run(self, op: Callable[..., T], *args: Any) -> T:
        """Run ``op(ops, ref, *args)`` on the worker (an operation of another module, such as
        :mod:`~pavilion.keystore.pkcs11.wrapping`); blocks."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(op, worker.ops, ref, *args))

    # -- keys ---------------------------------------------------------------------------------

    def generate_key(
        self, label: str, algorithm: Algorithm, *, extractable: bool = False
    ) -> Pkcs11Signer:
        """Generate a sensitive ES256 or EdDSA key pair inside the token; non-extractable
        unless ``extractable`` (then it leaves the token only wrapped, to a standby)."""
        self.start()
        worker, ref = self._session()
        return Pkcs11Signer(
            self,
            self._wait(worker.submit(worker.ops.generate, ref, label, algorithm, extractable)),
        )

    async def agenerate_key(
        self, label: str, algorithm: Algorithm, *, extractable: bool = False
    ) -> Pkcs11Signer:
        await self.astart()
        worker, ref = self._session()
        record = await self._await(
            worker.submit_async(worker.ops.generate, ref, label, algorithm, extractable)
        )
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
        return [key_info(r, public_jwk(r)["kid"]) for r in records]

    async def alist_keys(self) -> list[KeyInfo]:
        await self.astart()
        worker, ref = self._session()
        records = await self._await(worker.submit_async(worker.ops.list_keys, ref))
        return [key_info(r, public_jwk(r)["kid"]) for r in records]

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

    def generate_secret_key(self, label: str, *, extractable: bool = False) -> SecretKeyRecord:
        """Generate a sensitive AES-256 encrypt/decrypt key inside the token."""
        self.start()
        worker, ref = self._session()
        return self._wait(worker.submit(worker.ops.generate_secret, ref, label, extractable))

    async def agenerate_secret_key(
        self, label: str, *, extractable: bool = False
    ) -> SecretKeyRecord:
        await self.astart()
        worker, ref = self._session()
        return await self._await(
            worker.submit_async(worker.ops.generate_secret, ref, label, extractable)
        )

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
