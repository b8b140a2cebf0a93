"""The ``Keystore`` protocol both backends implement, and what they share.

A keystore holds the platform's keys, each with a *purpose*:

* ``credential-signing`` (ES256 by default, EdDSA on request): credentials and status lists;
* ``audit-signing`` (EdDSA): audit checkpoints;
* ``key-encryption`` (AES-256-GCM): wraps the per-tenant data keys.

and a *state* in one lifecycle::

    pending ──activate──▶ active ──(another key of its purpose and algorithm activates)──▶ inactive
       │                    ▲                                                                │
       │                    └──────────────────────── activate ──────────────────────────────┤
       └──────────────────────────────── retire ───────────────▶ retired ◀──── retire ───────┘

Exactly one key per purpose and algorithm is ``active`` (it signs, or wraps); ``pending`` and
``inactive`` keys still verify (they are in the JWKS, or still unwrap); ``retired`` is final
(out of the JWKS, never used again). Rotation is "create and activate". The ``kid`` of a
signing key is its RFC 7638 thumbprint; a key-encryption key is named.

Every signer a keystore hands out counts its signatures in :class:`KeyUsage` (one dict
increment under a lock: the hot path does no I/O); the key service flushes the counts into the
platform tenant's audit log (key id, purpose, count; never the payload).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from pavilion.errors import Conflict, CryptoError, InvalidRequest, NotFound
from pavilion.keystore.signer import Algorithm, Signer

Purpose = Literal["credential-signing", "audit-signing", "key-encryption"]
SigningPurpose = Literal["credential-signing", "audit-signing"]
KeyState = Literal["pending", "active", "inactive", "retired"]
KeyAlgorithm = Literal["ES256", "EdDSA", "A256GCM"]
Backend = Literal["software", "pkcs11"]

PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
KEY_STATES: tuple[KeyState, ...] = get_args(KeyState)

#: Algorithms each purpose accepts; the first is the default.
ALGORITHMS: dict[Purpose, tuple[KeyAlgorithm, ...]] = {
    "credential-signing": ("ES256", "EdDSA"),
    "audit-signing": ("EdDSA",),
    "key-encryption": ("A256GCM",),
}

#: Keys every keystore creates when it opens without them.
DEFAULT_KEYS: tuple[tuple[Purpose, KeyAlgorithm], ...] = (
    ("credential-signing", "ES256"),
    ("audit-signing", "EdDSA"),
    ("key-encryption", "A256GCM"),
)

#: Purposes whose keys may be created lazily the first time a signer is asked for them.
LAZY_KEYS: frozenset[tuple[Purpose, KeyAlgorithm]] = frozenset({("credential-signing", "EdDSA")})


class KeyLifecycleError(Conflict):
    """A lifecycle step the key's state (or its use) forbids, with the reason."""

    code = "key-lifecycle"
    title = "Key lifecycle step refused"


class KeyNotFoundError(NotFound):
    """No key with that id (thumbprint or name) in the keystore."""

    code = "key-not-found"


@dataclass(frozen=True, slots=True)
class KeyMeta:
    """What the keystore says about one key (never key material)."""

    key_id: str
    name: str
    purpose: Purpose
    algorithm: KeyAlgorithm
    state: KeyState
    created_at: str
    backend: Backend
    public_jwk: dict[str, str] | None = None


# -- pure lifecycle rules ---------------------------------------------------------------------


def check_algorithm(purpose: str, algorithm: str) -> tuple[Purpose, KeyAlgorithm]:
    """The (purpose, algorithm) pair, or a typed error naming the field that is wrong."""
    if purpose not in ALGORITHMS:
        raise InvalidRequest(
            f"purpose must be one of {', '.join(ALGORITHMS)}; got {purpose!r}", field="purpose"
        )
    allowed = ALGORITHMS[purpose]
    if algorithm not in allowed:
        if algorithm not in ("ES256", "EdDSA", "A256GCM"):
            raise CryptoError(f"unsupported key algorithm {algorithm!r}")
        raise InvalidRequest(
            f"a {purpose} key must be {' or '.join(allowed)}, not {algorithm}", field="algorithm"
        )
    return purpose, algorithm


def default_algorithm(purpose: Purpose) -> KeyAlgorithm:
    return ALGORITHMS[purpose][0]


def refuse_audit_key_change(purpose: str, step: str) -> None:
    """The audit log verifies every checkpoint with one key, so that key must stay put."""
    if purpose == "audit-signing":
        raise KeyLifecycleError(
            f"cannot {step} the audit-signing key: every audit checkpoint is verified with the "
            "one audit key (AuditLog.verifier_keys), so a new key would make the old checkpoints "
            "unverifiable; rotating it needs an audit key history first"
        )


def check_activation(meta: KeyMeta) -> None:
    refuse_audit_key_change(meta.purpose, "activate another")
    if meta.state == "retired":
        raise KeyLifecycleError(f"key {meta.key_id} is retired: a retired key is never used again")


def check_retirement(meta: KeyMeta) -> None:
    refuse_audit_key_change(meta.purpose, "retire")
    if meta.state == "active":
        raise KeyLifecycleError(
            f"key {meta.key_id} is the active {meta.purpose} {meta.algorithm} key: rotate to a "
            "new key first, then retire this one"
        )


def check_creation(purpose: Purpose) -> None:
    refuse_audit_key_change(purpose, "create another")


def choose_active(keys: Iterable[KeyMeta], purpose: Purpose, algorithm: KeyAlgorithm) -> KeyMeta:
    """The active key of a purpose and algorithm; the newest wins if a race left two."""
    active = [k for k in keys if k.purpose == purpose and k.algorithm == algorithm]
    active = [k for k in active if k.state == "active"]
    if not active:
        raise CryptoError(f"no active {purpose} {algorithm} key in the keystore")
    return max(active, key=lambda k: k.created_at)


def find_key(keys: Iterable[KeyMeta], key_id: str) -> KeyMeta:
    for meta in keys:
        if key_id in (meta.key_id, meta.name):
            return meta
    raise KeyNotFoundError(f"no key {key_id!r} in the keystore")


def new_key_name(algorithm: KeyAlgorithm, suffix: str, now: datetime | None = None) -> str:
    """A unique, sortable name: algorithm, creation time (microseconds) and a random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"{algorithm.lower()}-{stamp}-{suffix}"


# -- signing usage ----------------------------------------------------------------------------


@dataclass
class UsageCount:
    """Signatures by one key for one purpose since the last flush."""

    key_id: str
    purpose: SigningPurpose
    algorithm: Algorithm
    count: int = 0
    first_at: float = field(default_factory=time.time)
    last_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class KeyEvent:
    """A lifecycle step the keystore took on its own (default or lazily created keys)."""

    action: str
    meta: KeyMeta
    at: str


class KeyUsage:
    """In-memory signature counters per key and purpose, drained by the key service.

    ``record`` is on every signature's path: one lock and one dict update, no I/O. Counts
    survive a failed flush (they are put back); a crash loses at most one flush interval, while
    each credential's own audit leaf still commits to its digest (and so to its ``kid``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], UsageCount] = {}
        self._events: list[KeyEvent] = []

    def record(self, key_id: str, purpose: SigningPurpose, algorithm: Algorithm) -> None:
        with self._lock:
            entry = self._counts.get((key_id, purpose))
            if entry is None:
                self._counts[key_id, purpose] = UsageCount(key_id, purpose, algorithm, 1)
            else:
                entry.count += 1
                entry.last_at = time.time()

    def event(self, action: str, meta: KeyMeta) -> None:
        with self._lock:
            self._events.append(KeyEvent(action, meta, datetime.now(UTC).isoformat()))

    def pending(self) -> int:
        with self._lock:
            return sum(c.count for c in self._counts.values()) + len(self._events)

    def drain(self) -> tuple[list[UsageCount], list[KeyEvent]]:
        with self._lock:
            counts, self._counts = list(self._counts.values()), {}
            events, self._events = self._events, []
        return counts, events

    def restore(self, counts: list[UsageCount], events: list[KeyEvent]) -> None:
        """Put back what a failed flush drained, merged with what arrived meanwhile."""
        with self._lock:
            for old in counts:
                entry = self._counts.get((old.key_id, old.purpose))
                if entry is None:
                    self._counts[old.key_id, old.purpose] = old
                else:
                    entry.count += old.count
                    entry.first_at = min(entry.first_at, old.first_at)
            self._events[:0] = events


class AuditedSigner:
    """A backend signer that counts every signature in :class:`KeyUsage` (and nothing else).

    ``sign`` returns the backend's coroutine directly, so the wrapper adds no await frame.
    """

    __slots__ = ("_algorithm", "_inner", "_kid", "_purpose", "_usage")

    def __init__(self, inner: Signer, purpose: SigningPurpose, usage: KeyUsage) -> None:
        self._inner = inner
        self._purpose: SigningPurpose = purpose
        self._usage = usage
        self._kid = inner.key_id
        self._algorithm: Algorithm = inner.algorithm

    def __repr__(self) -> str:
        return f"<AuditedSigner {self._purpose} {self._algorithm} kid={self._kid}>"

    @property
    def key_id(self) -> str:
        return self._kid

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def purpose(self) -> SigningPurpose:
        return self._purpose

    @property
    def inner(self) -> Signer:
        return self._inner

    def public_jwk(self) -> dict[str, str]:
        return self._inner.public_jwk()

    def sign(self, message: bytes) -> Coroutine[Any, Any, bytes]:
        self._usage.record(self._kid, self._purpose, self._algorithm)
        return self._inner.sign(message)


# -- the protocol -----------------------------------------------------------------------------


@runtime_checkable
class Keystore(Protocol):
    """Keys for signing and key encryption, whatever holds them (a file or an HSM).

    ``signer``, ``public_jwks``, ``keys`` and ``health`` answer from memory (safe on the hot
    path; ``ahealth`` signs a probe); ``wrap_key``/``unwrap_key`` may block briefly (an HSM
    round trip: they run once per tenant per process); lifecycle steps are async.
    ``arefresh`` picks up changes another process made (the CLI, another node).
    """

    @property
    def backend(self) -> Backend: ...

    @property
    def usage(self) -> KeyUsage: ...

    def signer(self, purpose: SigningPurpose, algorithm: Algorithm | None = None) -> Signer:
        """The active key of the purpose (and algorithm; the purpose's default if omitted)."""
        ...

    def signer_for(self, key_id: str) -> Signer:
        """Any non-retired signing key by kid (e.g. to re-sign with a pinned key)."""
        ...

    def public_jwks(self, purpose: SigningPurpose = "credential-signing") -> list[dict[str, str]]:
        """Public JWKs of every non-retired key of the purpose, oldest first."""
        ...

    def wrap_key(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the active key-encryption key; (kek id, blob)."""
        ...

    def unwrap_key(self, kek_id: str, blob: bytes, context: bytes) -> bytes: ...

    def health(self) -> None:
        """Raise unless the keystore has an active signing key (from memory, no I/O)."""
        ...

    async def ahealth(self) -> None:
        """Raise unless the keystore can sign right now: signs a probe (readiness)."""
        ...

    def list_keys(self) -> list[KeyMeta]:
        """Every key, oldest first."""
        ...

    async def acreate(
        self, purpose: Purpose, algorithm: KeyAlgorithm, *, activate: bool = False
    ) -> KeyMeta: ...

    async def aactivate(self, key_id: str) -> KeyMeta: ...

    async def aretire(self, key_id: str) -> KeyMeta: ...

    async def arefresh(self) -> None: ...

    async def aclose(self) -> None: ...
