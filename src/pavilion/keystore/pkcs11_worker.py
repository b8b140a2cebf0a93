"""The one thread that talks to a PKCS#11 module.

python-pkcs11 initialises the module without OS locking (``C_Initialize(NULL)``), and SoftHSM2
then crashes (SIGSEGV) when two threads call into it at once, even on separate sessions. So
every call into a module (load, open session, login, find, generate, sign, close, finalize)
runs on ONE thread per module path, fed by a queue:

* :class:`Pkcs11Worker` is the thread and its queue. ``submit`` returns a
  :class:`concurrent.futures.Future` (for threads and CLI code); ``submit_async`` returns an
  :class:`asyncio.Future` of the caller's loop. The worker drains the queue and hands async
  results back in batches (one ``call_soon_threadsafe`` per loop per batch), which keeps the
  hand-off cheap when many coroutines sign at once.
* :class:`ModuleOps` is the state owned by that thread (the library, the open sessions, the
  key handles) and the operations the worker runs. Operations take and return plain,
  picklable values (``str``, ``bytes``, :class:`KeyRecord`), so a pool of worker *processes*,
  each with its own ``ModuleOps``, can replace the thread later without changing callers.
* Workers are shared per module path and reference counted (:func:`acquire_worker`,
  :func:`release_worker`); tokens of one module share the worker, and one token opened twice in
  a process shares one logged-in session (PKCS#11 login state is per process and token). The
  last release closes the sessions and finalises the library, so the next user re-initialises
  it (SoftHSM only rescans its token directory in ``C_Initialize``).

This is the only module of the connector that imports :mod:`pkcs11`; its loosely typed objects
stay here. Every :class:`pkcs11.PKCS11Error` is translated once, here, into the typed errors
below.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, ParamSpec, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.mechanisms import GCMParams

from pavilion.errors import CryptoError

P = ParamSpec("P")
T = TypeVar("T")

KeyAlgorithm = Literal["ES256", "EdDSA"]

# DER-encoded EC_PARAMS: the named-curve OIDs (and the PKCS#11 3.0 printable-string form for
# Ed25519 that some tokens report).
P256_PARAMS: Final = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7
ED25519_PARAMS: Final = bytes.fromhex("06032b6570")  # 1.3.101.112
_ED25519_PARAMS_PRINTABLE: Final = b"\x13\x0cedwards25519"

#: Attempts and pause when looking a token up: two processes opening a SoftHSM token at the
#: same instant sometimes see no token at all for a moment.
TOKEN_LOOKUP_ATTEMPTS = 4
TOKEN_LOOKUP_PAUSE_S = 0.05

#: Async results are handed back to their loop at least every this many operations.
_FLUSH_EVERY: Final = 32


# --------------------------------------------------------------------------------------------
# Errors (re-exported by pavilion.keystore.pkcs11)
# --------------------------------------------------------------------------------------------


class Pkcs11Error(CryptoError):
    """Any failure of the PKCS#11 key backend."""

    code = "pkcs11"
    title = "HSM operation failed"


class Pkcs11ModuleError(Pkcs11Error):
    """The PKCS#11 module (shared library) is missing or cannot be loaded."""

    code = "pkcs11-module"


class TokenNotFound(Pkcs11Error):
    """No token with the configured label (and slot) in the module."""

    code = "pkcs11-token-not-found"


class Pkcs11LoginFailed(Pkcs11Error):
    """The user PIN was refused (wrong, locked or expired)."""

    code = "pkcs11-login-failed"


class KeyNotFound(Pkcs11Error):
    """No key pair with that label on the token."""

    code = "pkcs11-key-not-found"


class KeyAlreadyExists(Pkcs11Error):
    """A key with that label already exists on the token."""

    code = "pkcs11-key-exists"


class UnsupportedKey(Pkcs11Error):
    """The key exists but is not an ES256 (P-256) or EdDSA (Ed25519) signing key."""

    code = "pkcs11-unsupported-key"


class Pkcs11Unavailable(Pkcs11Error):
    """The token is closed, its worker died, or an operation timed out."""

    code = "pkcs11-unavailable"


class Pkcs11OperationFailed(Pkcs11Error):
    """Any other error the module returned."""

    code = "pkcs11-operation-failed"


def describe(exc: BaseException) -> str:
    """``PinIncorrect`` or ``DeviceError: detail``: python-pkcs11 errors are often message-less."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Plain records crossing the worker boundary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key pair as read from the token: plain values only (picklable)."""

    label: str
    cka_id: bytes
    algorithm: KeyAlgorithm
    #: CKA_EC_POINT of the public key as the token returned it (usually DER-wrapped).
    ec_point: bytes
    token: bool
    private: bool
    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    local: bool
    can_sign: bool


@dataclass(frozen=True, slots=True)
class SecretKeyRecord:
    """An AES key-encryption key as read from the token: plain values only (picklable)."""

    label: str
    cka_id: bytes
    #: CKA_VALUE_LEN in bytes (32 for AES-256).
    length: int
    token: bool
    sensitive: bool
    extractable: bool
    never_extractable: bool
    local: bool


class Pkcs11DecryptFailed(Pkcs11Error):
    """AES-GCM decryption failed: the blob was tampered with, or the context is wrong."""

    code = "pkcs11-decrypt-failed"


_SECRET_FLAGS: Final = (
    Attribute.KEY_TYPE,
    Attribute.VALUE_LEN,
    Attribute.TOKEN,
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
)

#: Tag length of the AES-GCM key wrapping (bits).
GCM_TAG_BITS: Final = 128

_PRIVATE_FLAGS: Final = (
    Attribute.TOKEN,
    Attribute.PRIVATE,
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.ALWAYS_SENSITIVE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
    Attribute.SIGN,
    Attribute.EC_PARAMS,
)

_GENERATION: Final[dict[str, tuple[KeyType, Mechanism, bytes]]] = {
    "ES256": (KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, P256_PARAMS),
    "EdDSA": (KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, ED25519_PARAMS),
}

_SIGNING: Final[dict[str, Mechanism]] = {"ES256": Mechanism.ECDSA, "EdDSA": Mechanism.EDDSA}

_WRONG_PIN: Final = (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange)
_SESSION_LOST: Final = (
    pkcs11.SessionHandleInvalid,
    pkcs11.SessionClosed,
    pkcs11.UserNotLoggedIn,
    pkcs11.DeviceRemoved,
    pkcs11.TokenNotPresent,
)


def _algorithm_of(key_type: Any, ec_params: Any) -> KeyAlgorithm | None:
    if key_type == KeyType.EC and ec_params == P256_PARAMS:
        return "ES256"
    if key_type == KeyType.EC_EDWARDS and ec_params in (
        ED25519_PARAMS,
        _ED25519_PARAMS_PRINTABLE,
    ):
        return "EdDSA"
    return None


@dataclass(slots=True)
class _OpenToken:
    label: str
    slot: int | None
    pin: str
    session: Any
    users: int = 1


class ModuleOps:
    """State and operations of one PKCS#11 module. Only the worker thread calls these."""

    def __init__(self, module_path: str) -> None:
        self.module_path = module_path
        self._lib: Any = None
        self._tokens: dict[int, _OpenToken] = {}
        self._keys: dict[tuple[int, bytes], Any] = {}
        self._refs = itertools.count(1)

    # -- library ------------------------------------------------------------------------------

    def _library(self) -> Any:
        if self._lib is None:
            path = self.module_path
            if not os.path.isfile(path):
                raise Pkcs11ModuleError(
                    f"PKCS#11 module not found at '{path}': set the module path to the HSM "
                    "vendor's library (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
                )
            try:
                self._lib = pkcs11.lib(path)
            except pkcs11.PKCS11Error as exc:
                raise Pkcs11ModuleError(
                    f"PKCS#11 module at '{path}' could not be loaded: {describe(exc)}"
                ) from exc
        return self._lib

    def _present_tokens(self) -> list[tuple[int, Any]]:
        found = []
        for slot in self._library().get_slots(token_present=True):
            try:
                found.append((slot.slot_id, slot.get_token()))
            except (pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised):
                continue
        return found

    def _find_token(self, label: str, slot: int | None) -> Any:
        for attempt in range(TOKEN_LOOKUP_ATTEMPTS):
            present = self._present_tokens()
            matches = [tok for sid, tok in present if tok.label == label and slot in (None, sid)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise TokenNotFound(
                    f"{len(matches)} PKCS#11 tokens are labelled '{label}' in module "
                    f"'{self.module_path}': set the slot to choose one"
                )
            if attempt + 1 < TOKEN_LOOKUP_ATTEMPTS:
                time.sleep(TOKEN_LOOKUP_PAUSE_S)
                if not self._tokens:  # nothing open here: safe to rescan the token list
                    self._lib.reinitialize()
        available = ", ".join(
            sorted(f"'{tok.label}' (slot {sid})" for sid, tok in present if tok.label)
        )
        where = f"'{label}'" if slot is None else f"'{label}' in slot {slot}"
        raise TokenNotFound(
            f"PKCS#11 token {where} not found in module '{self.module_path}'; "
            f"available tokens: {available or 'none'}"
        )

    # -- sessions -----------------------------------------------------------------------------

    def open_token(self, label: str, pin: str, slot: int | None) -> int:
        """Open (or share) the logged-in read/write session of a token; return its reference."""
        for ref, entry in self._tokens.items():
            if entry.label == label and entry.slot == slot:
                if not hmac.compare_digest(entry.pin.encode(), pin.encode()):
                    raise Pkcs11LoginFailed(f"PKCS#11 login failed for token '{label}': wrong PIN")
                entry.users += 1
                return ref
        session = self._login(label, pin, slot)
        ref = next(self._refs)
        self._tokens[ref] = _OpenToken(label=label, slot=slot, pin=pin, session=session)
        return ref

    def _login(self, label: str, pin: str, slot: int | None) -> Any:
        """A new read/write session on the token, logged in as the user."""
        token = self._find_token(label, slot)
        try:
            return token.open(rw=True, user_pin=pin)
        except _WRONG_PIN as exc:
            raise Pkcs11LoginFailed(f"PKCS#11 login failed for token '{label}': wrong PIN") from exc
        except pkcs11.PinLocked as exc:
            raise Pkcs11LoginFailed(
                f"PKCS#11 login failed for token '{label}': the user PIN is locked"
            ) from exc
        except pkcs11.UserAlreadyLoggedIn:
            # Login state belongs to the process: someone else in it already logged in.
            return token.open(rw=True)
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not open a session on PKCS#11 token '{label}': {describe(exc)}"
            ) from exc

    def _forget_keys(self, ref: int) -> None:
        self._keys = {key: handle for key, handle in self._keys.items() if key[0] != ref}

    def _reopen(self, ref: int) -> None:
        """The session died under us (HSM restart, network drop): open a new one, log in."""
        entry = self._entry(ref)
        with contextlib.suppress(pkcs11.PKCS11Error):
            entry.session.close()
        self._forget_keys(ref)
        entry.session = self._login(entry.label, entry.pin, entry.slot)

    def close_token(self, ref: int) -> None:
        entry = self._tokens.get(ref)
        if entry is None:
            return
        entry.users -= 1
        if entry.users:
            return
        del self._tokens[ref]
        self._forget_keys(ref)
        with contextlib.suppress(pkcs11.PKCS11Error):
            entry.session.close()

    def shutdown(self) -> None:
        """Close every session and finalise the library (the worker's last operation)."""
        for ref in list(self._tokens):
            self._tokens[ref].users = 1
            self.close_token(ref)
        if self._lib is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()
            self._lib = None

    def _entry(self, ref: int) -> _OpenToken:
        entry = self._tokens.get(ref)
        if entry is None:
            raise Pkcs11Unavailable("the PKCS#11 token session is closed")
        return entry

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def _private_keys(session: Any, match: dict[Attribute, Any]) -> list[Any]:
        return list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, **match}))

    def _record(self, entry: _OpenToken, private_key: Any) -> KeyRecord:
        label = private_key.label
        key_type = private_key[Attribute.KEY_TYPE]
        flags = (
            private_key.get_attributes(_PRIVATE_FLAGS)
            if key_type in (KeyType.EC, KeyType.EC_EDWARDS)
            else {}
        )
        algorithm = _algorithm_of(key_type, flags.get(Attribute.EC_PARAMS))
        if algorithm is None:
            raise UnsupportedKey(
                f"key '{label}' on PKCS#11 token '{entry.label}' is not an ES256 (P-256) or "
                "EdDSA (Ed25519) signing key"
            )
        cka_id = bytes(private_key.id)
        publics = list(
            entry.session.get_objects(
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: cka_id}
            )
        )
        if not publics:
            raise KeyNotFound(
                f"key '{label}' on PKCS#11 token '{entry.label}' has no public key object "
                f"(CKA_ID {cka_id.hex()})"
            )
        return KeyRecord(
            label=label,
            cka_id=cka_id,
            algorithm=algorithm,
            ec_point=bytes(publics[0][Attribute.EC_POINT]),
            token=bool(flags[Attribute.TOKEN]),
            private=bool(flags[Attribute.PRIVATE]),
            sensitive=bool(flags[Attribute.SENSITIVE]),
            extractable=bool(flags[Attribute.EXTRACTABLE]),
            always_sensitive=bool(flags[Attribute.ALWAYS_SENSITIVE]),
            never_extractable=bool(flags[Attribute.NEVER_EXTRACTABLE]),
            local=bool(flags[Attribute.LOCAL]),
            can_sign=bool(flags[Attribute.SIGN]),
        )

    def generate(self, ref: int, label: str, algorithm: str) -> KeyRecord:
        """Generate a non-extractable key pair inside the token."""
        entry = self._entry(ref)
        if algorithm not in _GENERATION:
            raise UnsupportedKey(f"cannot generate a '{algorithm}' key: use ES256 or EdDSA")
        if self._private_keys(entry.session, {Attribute.LABEL: label}):
            raise KeyAlreadyExists(
                f"a key labelled '{label}' already exists on PKCS#11 token '{entry.label}'"
            )
        key_type, mechanism, params = _GENERATION[algorithm]
        cka_id = os.urandom(16)
        try:
            _public, private_key = entry.session.generate_keypair(
                key_type,
                mechanism=mechanism,
                id=cka_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: params,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.VERIFY: True,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DERIVE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not generate {algorithm} key '{label}' on PKCS#11 token "
                f"'{entry.label}': {describe(exc)}"
            ) from exc
        self._keys[ref, cka_id] = private_key
        return self._record(entry, private_key)

    def find(self, ref: int, label: str) -> KeyRecord:
        entry = self._entry(ref)
        found = self._private_keys(entry.session, {Attribute.LABEL: label})
        if not found:
            raise KeyNotFound(f"no key labelled '{label}' on PKCS#11 token '{entry.label}'")
        if len(found) > 1:
            raise Pkcs11OperationFailed(
                f"{len(found)} private keys are labelled '{label}' on PKCS#11 token "
                f"'{entry.label}': labels must be unique"
            )
        record = self._record(entry, found[0])
        self._keys[ref, record.cka_id] = found[0]
        return record

    def list_keys(self, ref: int) -> list[KeyRecord]:
        """Every ES256/EdDSA key pair on the token (other keys are left out)."""
        entry = self._entry(ref)
        records = []
        for private_key in self._private_keys(entry.session, {}):
            with contextlib.suppress(UnsupportedKey, KeyNotFound):
                records.append(self._record(entry, private_key))
        return sorted(records, key=lambda r: r.label)

    def destroy(self, ref: int, label: str) -> None:
        entry = self._entry(ref)
        objects = [
            obj
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for obj in entry.session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: label})
        ]
        if not objects:
            raise KeyNotFound(f"no key labelled '{label}' on PKCS#11 token '{entry.label}'")
        for obj in objects:
            self._keys.pop((ref, bytes(obj.id)), None)
            obj.destroy()

    def relabel(self, ref: int, cka_id: bytes, label: str) -> None:
        """Set CKA_LABEL on every object with this CKA_ID (both halves of a pair, or a secret
        key). Labels carry key state for :mod:`pavilion.keystore.hsm`."""
        entry = self._entry(ref)
        objects = list(entry.session.get_objects({Attribute.ID: cka_id}))
        if not objects:
            raise KeyNotFound(
                f"no object with CKA_ID {cka_id.hex()} on PKCS#11 token '{entry.label}'"
            )
        try:
            for obj in objects:
                obj[Attribute.LABEL] = label
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not relabel key {cka_id.hex()} on PKCS#11 token '{entry.label}': "
                f"{describe(exc)}"
            ) from exc

    def _secret_record(self, key: Any) -> SecretKeyRecord:
        flags = key.get_attributes(_SECRET_FLAGS)
        return SecretKeyRecord(
            label=key.label,
            cka_id=bytes(key.id),
            length=int(flags[Attribute.VALUE_LEN]),
            token=bool(flags[Attribute.TOKEN]),
            sensitive=bool(flags[Attribute.SENSITIVE]),
            extractable=bool(flags[Attribute.EXTRACTABLE]),
            never_extractable=bool(flags[Attribute.NEVER_EXTRACTABLE]),
            local=bool(flags[Attribute.LOCAL]),
        )

    def generate_secret(self, ref: int, label: str) -> SecretKeyRecord:
        """Generate a non-extractable AES-256 key (encrypt/decrypt only) inside the token."""
        entry = self._entry(ref)
        cka_id = os.urandom(16)
        try:
            key = entry.session.generate_key(
                KeyType.AES,
                256,
                id=cka_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11OperationFailed(
                f"could not generate AES key '{label}' on PKCS#11 token '{entry.label}': "
                f"{describe(exc)}"
            ) from exc
        self._keys[ref, cka_id] = key
        return self._secret_record(key)

    def list_secret_keys(self, ref: int) -> list[SecretKeyRecord]:
        """Every AES secret key on the token."""
        entry = self._entry(ref)
        found = entry.session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        )
        return sorted((self._secret_record(k) for k in found), key=lambda r: r.label)

    def _secret_key(self, ref: int, cka_id: bytes) -> Any:
        key = self._keys.get((ref, cka_id))
        if key is None:
            entry = self._entry(ref)
            found = list(
                entry.session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: cka_id}
                )
            )
            if not found:
                raise KeyNotFound(
                    f"the AES key with CKA_ID {cka_id.hex()} is gone from PKCS#11 token "
                    f"'{entry.label}'"
                )
            key = self._keys[ref, cka_id] = found[0]
        return key

    def encrypt_gcm(self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """CKM_AES_GCM with a caller-chosen 96-bit IV; returns ciphertext || 128-bit tag."""
        return self._gcm(ref, cka_id, iv, aad, data, decrypt=False)

    def decrypt_gcm(self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes) -> bytes:
        """The inverse of :meth:`encrypt_gcm`; :class:`Pkcs11DecryptFailed` on a bad tag."""
        return self._gcm(ref, cka_id, iv, aad, data, decrypt=True)

    def _gcm(
        self, ref: int, cka_id: bytes, iv: bytes, aad: bytes, data: bytes, *, decrypt: bool
    ) -> bytes:
        params = GCMParams(iv, aad, GCM_TAG_BITS)
        retried = False
        while True:
            try:
                key = self._secret_key(ref, cka_id)
                run = key.decrypt if decrypt else key.encrypt
                return bytes(run(data, mechanism=Mechanism.AES_GCM, mechanism_param=params))
            except pkcs11.PKCS11Error as exc:
                self._keys.pop((ref, cka_id), None)
                if not retried and isinstance(exc, _SESSION_LOST):
                    retried = True
                    self._reopen(ref)
                    continue
                if decrypt and isinstance(
                    exc,
                    pkcs11.EncryptedDataInvalid
                    | pkcs11.EncryptedDataLenRange
                    | pkcs11.GeneralError,
                ):
                    raise Pkcs11DecryptFailed(
                        "wrapped data key does not open: tampered or wrong context"
                    ) from exc
                raise Pkcs11OperationFailed(
                    f"PKCS#11 AES-GCM {'decryption' if decrypt else 'encryption'} failed with "
                    f"key {cka_id.hex()} on token '{self._entry(ref).label}': {describe(exc)}"
                ) from exc

    def _signing_key(self, ref: int, cka_id: bytes) -> Any:
        key = self._keys.get((ref, cka_id))
        if key is None:
            entry = self._entry(ref)
            found = self._private_keys(entry.session, {Attribute.ID: cka_id})
            if not found:
                raise KeyNotFound(
                    f"the key with CKA_ID {cka_id.hex()} is gone from PKCS#11 token '{entry.label}'"
                )
            key = self._keys[ref, cka_id] = found[0]
        return key

    def sign(self, ref: int, cka_id: bytes, algorithm: str, data: bytes) -> bytes:
        """CKM_ECDSA over a host-computed digest (ES256) or CKM_EDDSA over the message.

        A lost session is reopened (and logged in) once before the error reaches the caller.
        """
        retried = False
        while True:
            try:
                key = self._signing_key(ref, cka_id)
                return bytes(key.sign(data, mechanism=_SIGNING[algorithm]))
            except pkcs11.PKCS11Error as exc:
                self._keys.pop((ref, cka_id), None)
                if not retried and isinstance(exc, _SESSION_LOST):
                    retried = True
                    self._reopen(ref)
                    continue
                raise Pkcs11OperationFailed(
                    f"PKCS#11 {algorithm} signing failed with key {cka_id.hex()} on token "
                    f"'{self._entry(ref).label}': {describe(exc)}"
                ) from exc


# --------------------------------------------------------------------------------------------
# The worker thread
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# One worker per module path
# --------------------------------------------------------------------------------------------

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
