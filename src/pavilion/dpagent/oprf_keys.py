"""The DP agent's own keys for private set membership: the OPRF key and the tag-set signing key.

Both are generated here, on the DP's side, and never leave it: the connector receives only
the OPRF public key (inside signed tag set manifests) and the signing key's public JWK. The
files are written atomically with mode 0600.

Rotation: :meth:`OprfKeyRing.rotate` makes a new current key and keeps the one before as
``previous``, so connectors still holding tag sets under the old key are served until the DP
pushes tag sets under the new one; a second rotation drops the oldest key. A running agent
picks up a rotation made by the CLI on its next request (the file's mtime is checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from joserfc.jwk import OKPKey

from pavilion.errors import ConfigurationError, PavilionError
from pavilion.jose import b64url, b64url_decode, jwk_thumbprint
from pavilion.privacy import oprf

KEYS_FILE: Final = "oprf-keys.json"
SIGNING_FILE: Final = "roster-signing.jwk"  # its first name: existing key directories keep it
KeyState = Literal["current", "previous"]


class UnknownOprfKey(PavilionError):
    """An evaluation named a key the agent does not hold (never had, or rotated out)."""

    code = "unknown-oprf-key"
    title = "Unknown OPRF key"


def key_id_of(public_key: bytes) -> str:
    """A short stable id: base64url of the first 12 bytes of SHA-256 of the public key."""
    return b64url(hashlib.sha256(public_key).digest()[:12])


@dataclass(frozen=True)
class OprfKey:
    key_id: str
    public_key: bytes
    created_at: datetime
    state: KeyState
    secret: bytes = field(repr=False, compare=False)
    server: oprf.VOPRFServer = field(repr=False, compare=False)

    def public(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "public_key": b64url(self.public_key),
            "state": self.state,
            "created_at": self.created_at.isoformat(),
        }


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OprfKeyRing:
    """The agent's OPRF keys (current and previous) and its tag-set signing key."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._lock = threading.Lock()
        self._mtime_ns = -1
        self._keys: dict[str, OprfKey] = {}
        self._signing: OKPKey | None = None

    @classmethod
    def open(cls, directory: Path | str, *, create: bool = True) -> OprfKeyRing:
        """Load the keys in ``directory``, generating them first when ``create`` allows."""
        ring = cls(Path(directory))
        keys_path = ring._dir / KEYS_FILE
        if not keys_path.exists():
            if not create:
                raise ConfigurationError(
                    f"{keys_path} does not exist: run `pavilion privacy dp-keys init`"
                )
            ring._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            ring._save([_new_entry("current")])
        signing_path = ring._dir / SIGNING_FILE
        if not signing_path.exists():
            if not create:
                raise ConfigurationError(f"{signing_path} does not exist")
            key = OKPKey.generate_key("Ed25519")
            _write_private(signing_path, json.dumps(key.as_dict(private=True)).encode())
        ring.refresh()
        return ring

    @property
    def directory(self) -> Path:
        return self._dir

    def refresh(self) -> None:
        """Reload the key file when it changed on disk (a rotation by the CLI)."""
        path = self._dir / KEYS_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
        if mtime == self._mtime_ns:
            return
        with self._lock:
            entries = json.loads(path.read_text("utf-8"))["keys"]
            self._keys = {key.key_id: key for key in map(_load_entry, entries)}
            self._mtime_ns = mtime
            if not any(k.state == "current" for k in self._keys.values()):
                raise ConfigurationError(f"{path} holds no current OPRF key")

    def current(self) -> OprfKey:
        self.refresh()
        return next(k for k in self._keys.values() if k.state == "current")

    def get(self, key_id: str) -> OprfKey:
        self.refresh()
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownOprfKey(
                "this OPRF key is unknown or was rotated out; the DP must push its tag sets "
                "again under its current key"
            )
        return key

    def all_keys(self) -> list[OprfKey]:
        self.refresh()
        return sorted(self._keys.values(), key=lambda k: k.state)

    def rotate(self) -> OprfKey:
        """A new current key; the old current key becomes ``previous``; older ones go."""
        self.refresh()
        with self._lock:
            old = next(k for k in self._keys.values() if k.state == "current")
            new_entry = _new_entry("current")
            previous = _entry_of(old, "previous")
        self._save([new_entry, previous])
        self.refresh()
        return self.current()

    def signing_key(self) -> OKPKey:
        if self._signing is None:
            path = self._dir / SIGNING_FILE
            self._signing = OKPKey.import_key(json.loads(path.read_text("utf-8")))
        return self._signing

    def signing_public_jwk(self) -> dict[str, str]:
        public = {k: str(v) for k, v in self.signing_key().as_dict(private=False).items()}
        return {**public, "kid": jwk_thumbprint(public), "alg": "Ed25519", "use": "sig"}

    def _save(self, entries: list[dict[str, Any]]) -> None:
        _write_private(self._dir / KEYS_FILE, json.dumps({"keys": entries}, indent=1).encode())


def _new_entry(state: KeyState) -> dict[str, Any]:
    pair = oprf.generate_key_pair()
    return {
        "key_id": key_id_of(pair.pk),
        "sk": b64url(pair.sk),
        "pk": b64url(pair.pk),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": state,
    }


def _entry_of(key: OprfKey, state: KeyState) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "sk": b64url(key.secret),
        "pk": b64url(key.public_key),
        "created_at": key.created_at.isoformat(timespec="seconds"),
        "state": state,
    }


def _load_entry(entry: dict[str, Any]) -> OprfKey:
    public_key = b64url_decode(entry["pk"])
    secret = b64url_decode(entry["sk"])
    return OprfKey(
        key_id=key_id_of(public_key),
        public_key=public_key,
        created_at=datetime.fromisoformat(entry["created_at"]),
        state=entry["state"],
        secret=secret,
        server=oprf.VOPRFServer(secret, public_key),
    )
