"""The software keystore: the embedded default, encrypted at rest.

Each private key is stored as PKCS#8 DER sealed with AES-256-GCM under a 32-byte master key
(the key's name and purpose are the associated data, so a sealed blob cannot be swapped for
another). The master key comes from ``PAVILION_KEYSTORE_MASTER_KEY`` or, in embedded mode, from
a ``master.key`` file created beside the keystore with mode 0600. Writes are atomic
(write, fsync, rename), so a crash never leaves a half-written keystore.

Key states (see :mod:`pavilion.keystore.base`) live in the same file, next to each sealed key.
Every change is a read-modify-write under an exclusive ``flock`` on ``keystore.lock``, re-reading
the file first, so the CLI and a running server never lose each other's keys; a running server
picks up another process's change in :meth:`SoftwareKeystore.arefresh` (the file's identity
changes with every atomic write).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.base import (
    DEFAULT_KEYS,
    KEY_STATES,
    LAZY_KEYS,
    AuditedSigner,
    Backend,
    KeyAlgorithm,
    KeyLifecycleError,
    KeyMeta,
    KeyState,
    KeyUsage,
    Purpose,
    SigningPurpose,
    check_activation,
    check_algorithm,
    check_creation,
    check_retirement,
    choose_active,
    default_algorithm,
    find_key,
    new_key_name,
)
from pavilion.keystore.signer import Algorithm, Signer
from pavilion.keystore.software_signer import SoftwareSigner
from pavilion.store.private_files import private_dir

__all__ = ["Purpose", "SoftwareKeystore", "StoredKey"]

_FORMAT_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class StoredKey:
    name: str
    purpose: Purpose
    algorithm: str
    state: KeyState
    created_at: str
    nonce: bytes
    sealed: bytes


_FileId = tuple[int, int, int]


class SoftwareKeystore:
    """Named keys in one sealed JSON file; the embedded stand-in for an HSM."""

    FILE = "keystore.json"
    LOCK_FILE = "keystore.lock"
    MASTER_KEY_FILE = "master.key"

    def __init__(self, directory: Path, master_key: bytes, usage: KeyUsage | None = None) -> None:
        if len(master_key) != 32:
            raise ConfigurationError("PAVILION_KEYSTORE_MASTER_KEY must be 32 bytes in base64")
        self._dir = directory
        self._aead = AESGCM(master_key)
        self._usage = usage or KeyUsage()
        self._keys: dict[str, StoredKey] = {}
        self._file_id: _FileId | None = None
        self._signers: dict[str, SoftwareSigner] = {}
        self._audited: dict[tuple[str, str], AuditedSigner] = {}
        self._active: dict[tuple[str, str], AuditedSigner] = {}
        self._kek_cache: dict[str, AESGCM] = {}
        self._load()

    @classmethod
    def open(
        cls, directory: Path, master_key_b64: str = "", *, usage: KeyUsage | None = None
    ) -> SoftwareKeystore:
        """Open (creating in embedded mode) the keystore and make sure the default keys exist."""
        private_dir(directory)
        master_key = _master_key(directory / cls.MASTER_KEY_FILE, master_key_b64)
        keystore = cls(directory, master_key, usage)
        keystore.ensure_defaults()
        return keystore

    @property
    def backend(self) -> Backend:
        return "software"

    @property
    def usage(self) -> KeyUsage:
        return self._usage

    # -- key management -------------------------------------------------------------------

    def ensure_defaults(self) -> None:
        """Create (and activate) the default keys the keystore does not hold yet."""
        missing = [
            (purpose, algorithm)
            for purpose, algorithm in DEFAULT_KEYS
            if not any(
                k.purpose == purpose and k.algorithm == algorithm and k.state == "active"
                for k in self._keys.values()
            )
        ]
        for purpose, algorithm in missing:
            self._ensure_active(purpose, algorithm)

    def _ensure_active(self, purpose: Purpose, algorithm: KeyAlgorithm) -> None:
        def change() -> KeyMeta | None:
            if any(
                k.purpose == purpose and k.algorithm == algorithm and k.state == "active"
                for k in self._keys.values()
            ):
                return None  # another process made it while we waited for the lock
            key = self._new_key(purpose, algorithm, "active")
            return self._meta(key)

        created = self._mutate(change)
        if created is not None:
            self._usage.event("created-default", created)

    def create_key(self, purpose: Purpose, algorithm: str, *, activate: bool = False) -> str:
        """Create a key (``pending``, or ``active`` with ``activate``); returns its name."""
        checked_purpose, checked_algorithm = check_algorithm(purpose, algorithm)
        check_creation(checked_purpose)

        def change() -> StoredKey:
            key = self._new_key(checked_purpose, checked_algorithm, "pending")
            if activate:
                key = self._set_active(key)
            return key

        return self._mutate(change).name

    def _new_key(self, purpose: Purpose, algorithm: KeyAlgorithm, state: KeyState) -> StoredKey:
        material: bytes
        if algorithm == "ES256":
            material = _pkcs8(ec.generate_private_key(ec.SECP256R1()))
        elif algorithm == "EdDSA":
            material = _pkcs8(ed25519.Ed25519PrivateKey.generate())
        else:
            material = AESGCM.generate_key(bit_length=256)
        now = datetime.now(UTC)
        name = f"{purpose}-{new_key_name(algorithm, secrets.token_hex(4), now)}"
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, material, _aad(name, purpose))
        key = StoredKey(name, purpose, algorithm, state, now.isoformat(), nonce, sealed)
        self._keys[name] = key
        return key

    def _set_active(self, key: StoredKey) -> StoredKey:
        """Make ``key`` the one active key of its purpose and algorithm (inside a mutation)."""
        for other in list(self._keys.values()):
            if (
                other.name != key.name
                and other.purpose == key.purpose
                and other.algorithm == key.algorithm
                and other.state == "active"
            ):
                self._keys[other.name] = replace(other, state="inactive")
        activated = replace(key, state="active")
        self._keys[key.name] = activated
        return activated

    async def acreate(
        self, purpose: Purpose, algorithm: KeyAlgorithm, *, activate: bool = False
    ) -> KeyMeta:
        name = self.create_key(purpose, algorithm, activate=activate)
        return self._meta(self._keys[name])

    async def aactivate(self, key_id: str) -> KeyMeta:
        def change() -> StoredKey:
            key = self._stored(key_id)
            check_activation(self._meta(key))
            return self._set_active(key)

        return self._meta(self._mutate(change))

    async def aretire(self, key_id: str) -> KeyMeta:
        def change() -> StoredKey:
            key = self._stored(key_id)
            meta = self._meta(key)
            check_retirement(meta)
            if key.state == "retired":
                return key
            retired = replace(key, state="retired")
            self._keys[key.name] = retired
            return retired

        return self._meta(self._mutate(change))

    async def arefresh(self) -> None:
        """Reload the file if another process replaced it since we read it."""
        if _file_id(self._path()) != self._file_id:
            self._load()
            self._invalidate()

    async def aclose(self) -> None:
        return None

    def _stored(self, key_id: str) -> StoredKey:
        meta = find_key(self.list_keys(), key_id)
        return self._keys[meta.name]

    def _unseal(self, key: StoredKey) -> bytes:
        try:
            return self._aead.decrypt(key.nonce, key.sealed, _aad(key.name, key.purpose))
        except InvalidTag as exc:
            raise CryptoError(
                f"keystore key {key.name!r} cannot be opened: wrong master key or tampered file"
            ) from exc

    # -- the Keystore interface --------------------------------------------------------------

    def list_keys(self) -> list[KeyMeta]:
        return [self._meta(k) for k in sorted(self._keys.values(), key=lambda k: k.created_at)]

    def _meta(self, key: StoredKey) -> KeyMeta:
        jwk = None
        key_id = key.name
        if key.purpose != "key-encryption":
            jwk = self._signer_of(key).public_jwk()
            key_id = jwk["kid"]
        return KeyMeta(
            key_id=key_id,
            name=key.name,
            purpose=key.purpose,
            algorithm=key.algorithm,  # type: ignore[arg-type]
            state=key.state,
            created_at=key.created_at,
            backend="software",
            public_jwk=jwk,
        )

    def signer(self, purpose: SigningPurpose, algorithm: Algorithm | None = None) -> Signer:
        wanted = algorithm or default_algorithm(purpose)
        cached = self._active.get((purpose, wanted))
        if cached is not None:
            return cached
        try:
            meta = choose_active(self.list_keys(), purpose, wanted)
        except CryptoError:
            if (purpose, wanted) not in LAZY_KEYS:
                raise
            self._ensure_active(purpose, wanted)
            meta = choose_active(self.list_keys(), purpose, wanted)
        audited = self._audited_signer(self._keys[meta.name], purpose)
        self._active[purpose, wanted] = audited
        return audited

    def signer_for(self, key_id: str) -> Signer:
        meta = find_key(self.list_keys(), key_id)
        if meta.purpose == "key-encryption" or meta.state == "retired":
            raise KeyLifecycleError(f"key {key_id} is not a usable signing key ({meta.state})")
        return self._audited_signer(self._keys[meta.name], meta.purpose)

    def _audited_signer(self, key: StoredKey, purpose: SigningPurpose) -> AuditedSigner:
        audited = self._audited.get((key.name, purpose))
        if audited is None:
            audited = AuditedSigner(self._signer_of(key), purpose, self._usage)
            self._audited[key.name, purpose] = audited
        return audited

    def _signer_of(self, key: StoredKey) -> SoftwareSigner:
        if key.name not in self._signers:
            private = serialization.load_der_private_key(self._unseal(key), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise CryptoError(f"keystore key {key.name!r} is not a signing key")
            self._signers[key.name] = SoftwareSigner(private)
        return self._signers[key.name]

    def public_jwks(self, purpose: SigningPurpose = "credential-signing") -> list[dict[str, str]]:
        """Public keys of every non-retired key of the purpose: verifiers need old keys too."""
        return [
            meta.public_jwk
            for meta in self.list_keys()
            if meta.purpose == purpose and meta.state != "retired" and meta.public_jwk
        ]

    def wrap_key(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Seal a data key under the active key-encryption key; returns (kek id, blob)."""
        kek = self._keys[choose_active(self.list_keys(), "key-encryption", "A256GCM").name]
        nonce = os.urandom(12)
        return kek.name, nonce + self._kek(kek).encrypt(nonce, data_key, context)

    def unwrap_key(self, kek_id: str, blob: bytes, context: bytes) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None or kek.purpose != "key-encryption":
            raise CryptoError(f"unknown key-encryption key {kek_id!r}")
        if kek.state == "retired":
            raise CryptoError(f"key-encryption key {kek_id!r} is retired")
        try:
            return self._kek(kek).decrypt(blob[:12], blob[12:], context)
        except InvalidTag as exc:
            raise CryptoError("wrapped data key does not open: tampered or wrong context") from exc

    def _kek(self, key: StoredKey) -> AESGCM:
        if key.name not in self._kek_cache:
            self._kek_cache[key.name] = AESGCM(self._unseal(key))
        return self._kek_cache[key.name]

    def health(self) -> None:
        """Raise unless the keystore has an active credential-signing key."""
        self.signer("credential-signing")

    async def ahealth(self) -> None:
        """Raise unless the keystore can sign right now (used by /readyz): the keys are in
        memory, so having the active key is being able to sign."""
        self.health()

    # -- persistence ------------------------------------------------------------------------

    def _path(self) -> Path:
        return self._dir / self.FILE

    def _invalidate(self) -> None:
        self._active.clear()
        self._audited.clear()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._dir / self.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _mutate(self, change: Callable[[], T]) -> T:
        """Re-read the file, apply ``change`` to the keys, write it back: all under the lock."""
        with self._locked():
            self._load()
            try:
                result = change()
            except BaseException:
                self._load()  # drop the half-applied change
                raise
            finally:
                self._invalidate()
            self._save()
        return result

    def _load(self) -> None:
        path = self._path()
        self._keys = {}
        self._file_id = _file_id(path)
        if self._file_id is None:
            return
        try:
            document = json.loads(path.read_text("utf-8"))
            if document.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unsupported version {document.get('version')!r}")
            for entry in document["keys"]:
                if entry["state"] not in KEY_STATES:
                    raise ValueError(f"key {entry['name']!r} has unknown state {entry['state']!r}")
                key = StoredKey(
                    name=entry["name"],
                    purpose=entry["purpose"],
                    algorithm=entry["algorithm"],
                    state=entry["state"],
                    created_at=entry["created_at"],
                    nonce=base64.b64decode(entry["nonce"]),
                    sealed=base64.b64decode(entry["sealed"]),
                )
                self._keys[key.name] = key
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ConfigurationError(f"keystore file {path} is unreadable: {exc}") from exc

    def _save(self) -> None:
        document: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "keys": [
                {
                    "name": k.name,
                    "purpose": k.purpose,
                    "algorithm": k.algorithm,
                    "state": k.state,
                    "created_at": k.created_at,
                    "nonce": base64.b64encode(k.nonce).decode(),
                    "sealed": base64.b64encode(k.sealed).decode(),
                }
                for k in self._keys.values()
            ],
        }
        _atomic_write(self._path(), json.dumps(document, indent=2).encode("utf-8"))
        self._file_id = _file_id(self._path())


def _file_id(path: Path) -> _FileId | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _aad(name: str, purpose: str) -> bytes:
    return f"pavilion-keystore-v1|{purpose}|{name}".encode()


def _pkcs8(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _master_key(path: Path, configured_b64: str) -> bytes:
    if configured_b64:
        try:
            return base64.b64decode(configured_b64, validate=True)
        except binascii.Error as exc:
            raise ConfigurationError(
                "PAVILION_KEYSTORE_MASTER_KEY is not valid base64 (expected 32 random bytes)"
            ) from exc
    if path.exists():
        return base64.b64decode(path.read_bytes().strip())
    key = AESGCM.generate_key(bit_length=256)
    _atomic_write(path, base64.b64encode(key) + b"\n")
    return key


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
