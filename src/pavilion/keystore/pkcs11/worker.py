"""The one thread that talks to a PKCS#11 module, and the registry of one worker per module.

python-pkcs11 initialises the module without OS locking (``C_Initialize(NULL)``), and SoftHSM2
then crashes (SIGSEGV) when two threads call into it at once, even on separate sessions. So
every call into a module (load, open session, login, find, generate, sign, close, finalize)
runs on ONE thread per module path, fed by a queue:

* :class:`Pkcs11Worker` is the thread and its queue. ``submit`` returns a
  :class:`concurrent.futures.Future` (for threads and CLI code); ``submit_async`` returns an
  :class:`asyncio.Future` of the caller's loop. The worker drains the queue and hands async
  results back in batches (one ``call_soon_threadsafe`` per loop per batch), which keeps the
  hand-off cheap when many coroutines sign at once.
* The thread owns one :class:`~pavilion.keystore.pkcs11.ops.ModuleOps` (the library, the
  open sessions, the key handles) and runs its operations.
* Workers are shared per module path and reference counted (:func:`acquire_worker`,
  :func:`release_worker`); tokens of one module share the worker. The last release closes the
  sessions and finalises the library, so the next user re-initialises it (SoftHSM only
  rescans its token directory in ``C_Initialize``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, ParamSpec, TypeVar

import pkcs11

from pavilion.keystore.pkcs11.errors import Pkcs11OperationFailed, Pkcs11Unavailable, describe
from pavilion.keystore.pkcs11.ops import ModuleOps

P = ParamSpec("P")
T = TypeVar("T")

#: Async results are handed back to their loop at least every this many operations.
_FLUSH_EVERY: Final = 32


_AnyFuture = asyncio.Future[Any] | concurrent.futures.Future[Any]
_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
    _AnyFuture,
    asyncio.AbstractEventLoop | None,
]
_Delivery = list[tuple[asyncio.Future[Any], bool, Any]]


def _wrap(op: Callable[..., Any], exc: BaseException) -> Pkcs11OperationFailed:
    wrapped = Pkcs11OperationFailed(
        f"PKCS#11 operation '{getattr(op, '__name__', op)}' failed: {describe(exc)}"
    )
    wrapped.__cause__ = exc
    return wrapped


def _deliver(items: _Delivery) -> None:
    """Runs on the caller's loop: resolve the futures the worker finished."""
    for future, ok, value in items:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class Pkcs11Worker:
    """One thread owning one PKCS#11 module; everything that touches the module runs here."""

    def __init__(self, module_path: str, predecessor: threading.Thread | None = None) -> None:
        self.module_path = module_path
        self.ops = ModuleOps(module_path)
        self.users = 0
        self._predecessor = predecessor
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"pkcs11-worker:{os.path.basename(module_path)}", daemon=True
        )

    # -- submission ---------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self._failure is None and not self._stopping and self._thread.is_alive()

    def _unavailable(self) -> Pkcs11Unavailable:
        if self._failure is not None:
            return Pkcs11Unavailable(
                f"the PKCS#11 worker for module '{self.module_path}' died "
                f"({describe(self._failure)}); close the token and open it again"
            )
        if self._stopping:
            return Pkcs11Unavailable(
                f"the PKCS#11 worker for module '{self.module_path}' is shut down"
            )
        return Pkcs11Unavailable(
            f"the PKCS#11 worker thread for module '{self.module_path}' is not running"
        )

    def _put(self, job: _Job) -> None:
        with self._lock:
            if self._failure is not None or self._stopping or not self._thread.is_alive():
                raise self._unavailable()
            self._queue.put(job)

    def submit(
        self, op: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Run ``op`` on the worker; for threads and blocking callers."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put((op, args, kwargs, future, None))
        return future

    def submit_async(
        self, op: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Run ``op`` on the worker; the result arrives on the running loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put((op, args, kwargs, future, loop))
        return future

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> concurrent.futures.Future[None]:
        """Close every session, finalise the library and end the thread (after queued work)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if self._failure is not None or self._stopping or not self._thread.is_alive():
                future.set_result(None)
                return future
            self._stopping = True
            self._queue.put((self.ops.shutdown, (), {}, future, None))
        return future

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        pending: dict[asyncio.AbstractEventLoop, _Delivery] = {}
        job: _Job | None = None
        try:
            if self._predecessor is not None:
                self._predecessor.join()  # it may still be finalising the same library
            get = self._queue.get
            shutdown = self.ops.shutdown
            while True:
                job = get()
                op, args, kwargs, future, loop = job
                if loop is None and not future.set_running_or_notify_cancel():  # type: ignore[union-attr]
                    job = None
                    continue
                try:
                    value, ok = op(*args, **kwargs), True
                except pkcs11.PKCS11Error as exc:  # a path that did not translate it itself
                    value, ok = _wrap(op, exc), False
                except Exception as exc:
                    value, ok = exc, False
                if loop is None:
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                else:
                    pending.setdefault(loop, []).append((future, ok, value))  # type: ignore[arg-type]
                job = None
                if op == shutdown:
                    self._flush(pending)
                    return
                if pending and (
                    self._queue.empty() or sum(map(len, pending.values())) >= _FLUSH_EVERY
                ):
                    self._flush(pending)
        except BaseException as exc:
            self._die(exc, job, pending)

    @staticmethod
    def _flush(pending: dict[asyncio.AbstractEventLoop, _Delivery]) -> None:
        for loop, items in pending.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop is already closed
                loop.call_soon_threadsafe(_deliver, items)
        pending.clear()

    def _die(
        self,
        exc: BaseException,
        job: _Job | None,
        pending: dict[asyncio.AbstractEventLoop, _Delivery],
    ) -> None:
        """Fail everything queued or in flight so that no caller waits forever."""
        with self._lock:
            self._failure = exc
            doomed: list[_Job] = [job] if job is not None else []
            while not self._queue.empty():
                doomed.append(self._queue.get_nowait())
        _forget_worker(self)
        for _op, _args, _kwargs, future, loop in doomed:
            if loop is None:
                if not future.done():
                    future.set_exception(self._unavailable())
            else:
                pending.setdefault(loop, []).append((future, False, self._unavailable()))  # type: ignore[arg-type]
        self._flush(pending)
        with contextlib.suppress(Exception):
            self.ops.shutdown()


# One worker per module path.

_registry_lock = threading.Lock()
_workers: dict[str, Pkcs11Worker] = {}
_last_threads: dict[str, threading.Thread] = {}


def _module_key(module_path: str) -> str:
    return os.path.realpath(module_path)


def acquire_worker(module_path: str) -> Pkcs11Worker:
    """The running worker of this module (started if needed), with one more user."""
    key = _module_key(module_path)
    with _registry_lock:
        worker = _workers.get(key)
        if worker is None or not worker.usable:
            worker = Pkcs11Worker(module_path, predecessor=_last_threads.get(key))
            worker.start()
            _workers[key] = worker
            _last_threads[key] = worker._thread
        worker.users += 1
        return worker


def release_worker(worker: Pkcs11Worker) -> concurrent.futures.Future[None] | None:
    """Drop one user; the last one stops the worker. Returns the stop future, if stopping."""
    with _registry_lock:
        worker.users -= 1
        if worker.users > 0:
            return None
        key = _module_key(worker.module_path)
        if _workers.get(key) is worker:
            del _workers[key]
    return worker.stop()


def _forget_worker(worker: Pkcs11Worker) -> None:
    with _registry_lock:
        key = _module_key(worker.module_path)
        if _workers.get(key) is worker:
            del _workers[key]


def active_workers() -> list[Pkcs11Worker]:
    """The running workers (for diagnostics and tests)."""
    with _registry_lock:
        return list(_workers.values())
