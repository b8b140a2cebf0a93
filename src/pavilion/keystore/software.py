"""The software keystore: the embedded default, encrypted at rest.

Each private key is stored as PKCS#8 DER sealed with AES-256-GCM under a 32-byte master key
(the key's name and purpose are the associated data, so a sealed blob cannot be swapped for
another). The master key comes from ``PAVILION_KEYSTORE_MASTER_KEY`` or, in embedded mode, from
a ``master.key`` file created beside the keystore with mode 0600. Writes are atomic
(write, fsync, rename), so a crash never leaves a half-written keystore.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.signer import Algorithm, Signer, b64url, jwk_thumbprint

Purpose = Literal["credential-signing", "audit-signing", "key-encryption"]
_FORMAT_VERSION = 1


class SoftwareSigner:
    """A Signer over an in-memory pyca private key."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        self._key = private_key
        self._jwk = public_jwk_of(private_key.public_key())
        self._kid = self._jwk["kid"]

    @property
    def key_id(self) -> str:
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return "EdDSA" if isinstance(self._key, ed25519.Ed25519PrivateKey) else "ES256"

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    async def sign(self, message: bytes) -> bytes:
        return self.sign_blocking(message)

    def sign_blocking(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def public_jwk_of(
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
) -> dict[str, str]:
    """The public JWK with ``kid`` (RFC 7638 thumbprint) and ``alg``."""
    jwk: dict[str, str]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "alg": "EdDSA"}
    else:
        numbers = public_key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
            "alg": "ES256",
        }
    jwk["use"] = "sig"
    jwk["kid"] = jwk_thumbprint(jwk)
    return jwk


@dataclass(frozen=True)
class StoredKey:
    name: str
    purpose: Purpose
    algorithm: str
    state: Literal["active", "retired"]
    created_at: str
    nonce: bytes
    sealed: bytes


class SoftwareKeystore:
    """Named keys in one sealed JSON file; the embedded stand-in for an HSM."""

    FILE = "keystore.json"
    MASTER_KEY_FILE = "master.key"

    def __init__(self, directory: Path, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ConfigurationError("PAVILION_KEYSTORE_MASTER_KEY must be 32 bytes in base64")
        self._dir = directory
        self._aead = AESGCM(master_key)
        self._keys: dict[str, StoredKey] = {}
        self._signers: dict[str, SoftwareSigner] = {}
        self._kek_cache: dict[str, AESGCM] = {}
        self._load()

    @classmethod
    def open(cls, directory: Path, master_key_b64: str = "") -> SoftwareKeystore:
        """Open (creating in embedded mode) the keystore and make sure the default keys exist."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        master_key = _master_key(directory / cls.MASTER_KEY_FILE, master_key_b64)
        keystore = cls(directory, master_key)
        keystore.ensure_defaults()
        return keystore

    # -- key management -------------------------------------------------------------------

    def ensure_defaults(self) -> None:
        wanted: tuple[tuple[Purpose, str], ...] = (
            ("credential-signing", "ES256"),
            ("audit-signing", "EdDSA"),
            ("key-encryption", "A256GCM"),
        )
        for purpose, algorithm in wanted:
            if not any(k.purpose == purpose and k.state == "active" for k in self._keys.values()):
                self.create_key(purpose, algorithm)

    def create_key(self, purpose: Purpose, algorithm: str) -> str:
        material: bytes
        if algorithm == "ES256":
            material = _pkcs8(ec.generate_private_key(ec.SECP256R1()))
        elif algorithm == "EdDSA":
            material = _pkcs8(ed25519.Ed25519PrivateKey.generate())
        elif algorithm == "A256GCM":
            material = AESGCM.generate_key(bit_length=256)
        else:
            raise CryptoError(f"unsupported key algorithm {algorithm!r}")
        name = f"{purpose}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, material, _aad(name, purpose))
        self._keys[name] = StoredKey(
            name, purpose, algorithm, "active", datetime.now(UTC).isoformat(), nonce, sealed
        )
        self._save()
        return name

    def _unseal(self, key: StoredKey) -> bytes:
        try:
            return self._aead.decrypt(key.nonce, key.sealed, _aad(key.name, key.purpose))
        except InvalidTag as exc:
            raise CryptoError(
                f"keystore key {key.name!r} cannot be opened: wrong master key or tampered file"
            ) from exc

    def _active(self, purpose: Purpose) -> StoredKey:
        for key in sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True):
            if key.purpose == purpose and key.state == "active":
                return key
        raise CryptoError(f"no active {purpose} key in the keystore")

    # -- the Keystore interface --------------------------------------------------------------

    def signer(self, purpose: Purpose) -> Signer:
        return self._signer_for(self._active(purpose))

    def _signer_for(self, key: StoredKey) -> SoftwareSigner:
        if key.name not in self._signers:
            private = serialization.load_der_private_key(self._unseal(key), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise CryptoError(f"keystore key {key.name!r} is not a signing key")
            self._signers[key.name] = SoftwareSigner(private)
        return self._signers[key.name]

    def public_jwks(self, purpose: Purpose = "credential-signing") -> list[dict[str, str]]:
        """Public keys of every non-retired key of the purpose: verifiers need old keys too."""
        return [
            self._signer_for(k).public_jwk()
            for k in self._keys.values()
            if k.purpose == purpose and k.state != "retired"
        ]

    def wrap_key(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Seal a data key under the active key-encryption key; returns (kek id, blob)."""
        kek = self._active("key-encryption")
        nonce = os.urandom(12)
        return kek.name, nonce + self._kek(kek).encrypt(nonce, data_key, context)

    def unwrap_key(self, kek_id: str, blob: bytes, context: bytes) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None or kek.purpose != "key-encryption":
            raise CryptoError(f"unknown key-encryption key {kek_id!r}")
        try:
            return self._kek(kek).decrypt(blob[:12], blob[12:], context)
        except InvalidTag as exc:
            raise CryptoError("wrapped data key does not open: tampered or wrong context") from exc

    def _kek(self, key: StoredKey) -> AESGCM:
        if key.name not in self._kek_cache:
            self._kek_cache[key.name] = AESGCM(self._unseal(key))
        return self._kek_cache[key.name]

    def health(self) -> None:
        """Raise unless the keystore can sign right now (used by /readyz)."""
        self.signer("credential-signing")

    # -- persistence ------------------------------------------------------------------------

    def _path(self) -> Path:
        return self._dir / self.FILE

    def _load(self) -> None:
        path = self._path()
        if not path.exists():
            return
        try:
            document = json.loads(path.read_text("utf-8"))
            if document.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unsupported version {document.get('version')!r}")
            for entry in document["keys"]:
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
