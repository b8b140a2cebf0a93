"""The PKCS#11 keystore: every key generated inside the token, its state in its label.

Signing keys are ES256/EdDSA key pairs and the key-encryption key is an AES-256 secret key,
all generated inside the token as ``CKA_SENSITIVE``, non-extractable objects
(:mod:`pavilion.keystore.pkcs11`); the connector refuses a ``pavilion:`` key that is not
sensitive, is extractable, or was not generated in the token (``CKA_LOCAL``).

**Where key state lives.** Each object's ``CKA_LABEL`` is ``pavilion:<purpose>:<state>:<name>``
(for example ``pavilion:credential-signing:active:es256-20260101T120000000000-1a2b3c4d``); a
lifecycle step relabels the pair (both halves) or the secret key. We keep state on the token
rather than in the database because:

* the token is the one place that holds the keys, so key and state cannot drift apart (a
  restored or replaced HSM partition brings its state with it; a restored database does not
  resurrect a retired key);
* every node that shares the HSM partition sees the same state without a database (the
  keystore is built before any migration runs, and ``pavilion keys`` works on a bare token);
* it needs nothing a PKCS#11 token lacks: labels are modifiable attributes on every HSM.

The cost: relabelling two objects is not atomic. Activation promotes the new key before it
demotes the old one, so a crash in between leaves two ``active`` keys; the newest signs (as
:func:`~pavilion.keystore.base.choose_active` decides) until ``activate`` runs again.

**Key encryption** uses ``CKM_AES_GCM`` inside the token with a random 96-bit IV and the
caller's context (the tenant id) as additional authenticated data, so a wrapped data key only
opens for its own tenant, exactly as in the software keystore. We chose GCM over
``CKM_AES_KEY_WRAP`` (RFC 3394, which SoftHSM2 also offers) because key wrap has no associated
data: binding the tenant would need a second mechanism. The ``kek id`` stored beside each
tenant is the key's ``<name>``, which never changes with its state.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pavilion.errors import ConfigurationError, CryptoError
from pavilion.keystore.base import (
    DEFAULT_KEYS,
    KEY_STATES,
    LAZY_KEYS,
    PURPOSES,
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
from pavilion.keystore.pkcs11.config import Pkcs11Config
from pavilion.keystore.pkcs11.errors import Pkcs11Unavailable
from pavilion.keystore.pkcs11.records import SecretKeyRecord
from pavilion.keystore.pkcs11.signer import Pkcs11Signer
from pavilion.keystore.pkcs11.token import Pkcs11Token
from pavilion.keystore.signer import Algorithm, Signer

__all__ = ["LABEL_PREFIX", "HsmKeystore", "format_label", "parse_label"]

LABEL_PREFIX = "pavilion"
#: How long a readiness probe's signature (or its failure) answers for the next probes.
PROBE_TTL_S = 1.0
_NAME_STAMP = "%Y%m%dT%H%M%S%f"


def format_label(purpose: Purpose, state: KeyState, name: str) -> str:
    return f"{LABEL_PREFIX}:{purpose}:{state}:{name}"


def parse_label(label: str) -> tuple[Purpose, KeyState, str] | None:
    """``(purpose, state, name)`` of a connector key's label; ``None`` for anything else."""
    parts = label.split(":")
    if len(parts) != 4 or parts[0] != LABEL_PREFIX:
        return None
    _prefix, purpose, state, name = parts
    if purpose not in PURPOSES or state not in KEY_STATES or not name:
        return None
    return purpose, state, name


def _created_at(name: str) -> str:
    """The creation time written into the name (``<alg>-<stamp>-<random>``)."""
    try:
        stamp = name.split("-")[1]
        return datetime.strptime(stamp, _NAME_STAMP).replace(tzinfo=UTC).isoformat()
    except (IndexError, ValueError):
        return ""


@dataclass(frozen=True)
class _Entry:
    meta: KeyMeta
    cka_id: bytes
    signer: Pkcs11Signer | None


class HsmKeystore:
    """The :class:`~pavilion.keystore.base.Keystore` over one PKCS#11 token."""

    def __init__(
        self,
        token: Pkcs11Token,
        usage: KeyUsage | None = None,
        *,
        standby: Pkcs11Token | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self._standby = standby
        self._usage = usage or KeyUsage()
        self._entries: dict[str, _Entry] = {}
        self._active: dict[tuple[str, str], AuditedSigner] = {}
        self._audited: dict[tuple[str, str], AuditedSigner] = {}
        self._lock = asyncio.Lock()
        self._clock = clock
        #: (when, failure or None) of the last readiness probe signature.
        self._probe: tuple[float, Exception | None] | None = None

    @classmethod
    def open(
        cls,
        config: Pkcs11Config,
        *,
        usage: KeyUsage | None = None,
        standby: Pkcs11Config | None = None,
    ) -> HsmKeystore:
        """Log in (once), read the connector's keys and generate the missing default keys.

        With a ``standby`` token (holding the same keys: ``pavilion keys replicate``), signing
        fails over to it while this token cannot sign. The standby is logged in on first use.
        Blocks while the token answers: call it at start-up, after any fork.
        """
        token = Pkcs11Token(config)
        token.start()
        keystore = cls(token, usage, standby=None if standby is None else Pkcs11Token(standby))
        try:
            keystore._install(token.list_signers(), token.list_secret_keys())
            keystore.ensure_defaults()
        except BaseException:
            token.close()
            raise
        return keystore

    @property
    def backend(self) -> Backend:
        return "pkcs11"

    @property
    def usage(self) -> KeyUsage:
        return self._usage

    @property
    def token(self) -> Pkcs11Token:
        return self._token

    @property
    def standby(self) -> Pkcs11Token | None:
        return self._standby

    # -- loading ------------------------------------------------------------------------------

    def _install(self, signers: list[Pkcs11Signer], secrets_: list[SecretKeyRecord]) -> None:
        entries: dict[str, _Entry] = {}
        for found in signers:
            parsed = parse_label(found.label)
            if parsed is None:
                continue
            purpose, state, name = parsed
            info = found.info
            _require_protected(
                found.label,
                sensitive=info.sensitive,
                extractable=info.extractable,
                never_extractable=info.never_extractable,
                local=info.local,
                replicable=self._standby is not None,
            )
            signer = found.with_standby(self._standby) if self._standby is not None else found
            if purpose == "key-encryption":
                continue
            meta = KeyMeta(
                key_id=signer.key_id,
                name=name,
                purpose=purpose,
                algorithm=signer.algorithm,
                state=state,
                created_at=_created_at(name),
                backend="pkcs11",
                public_jwk={**signer.public_jwk(), "use": "sig"},
            )
            entries[name] = _Entry(meta, signer.cka_id, signer)
        for record in secrets_:
            parsed = parse_label(record.label)
            if parsed is None or parsed[0] != "key-encryption" or record.length != 32:
                continue
            _require_protected(
                record.label,
                sensitive=record.sensitive,
                extractable=record.extractable,
                never_extractable=record.never_extractable,
                local=record.local,
                replicable=self._standby is not None,
            )
            _purpose, state, name = parsed
            meta = KeyMeta(
                key_id=name,
                name=name,
                purpose="key-encryption",
                algorithm="A256GCM",
                state=state,
                created_at=_created_at(name),
                backend="pkcs11",
            )
            entries[name] = _Entry(meta, record.cka_id, None)
        self._entries = entries
        self._active.clear()
        self._audited.clear()

    async def _areload(self) -> None:
        self._install(await self._token.alist_signers(), await self._token.alist_secret_keys())

    def ensure_defaults(self) -> None:
        """Generate (active) default keys the token lacks; blocks on the token."""
        for purpose, algorithm in DEFAULT_KEYS:
            if not any(
                m.purpose == purpose and m.algorithm == algorithm and m.state == "active"
                for m in self.list_keys()
            ):
                meta = self._generate_blocking(purpose, algorithm, "active")
                self._usage.event("created-default", meta)

    def _generate_blocking(
        self, purpose: Purpose, algorithm: KeyAlgorithm, state: KeyState
    ) -> KeyMeta:
        name = new_key_name(algorithm, secrets.token_hex(4))
        label = format_label(purpose, state, name)
        replicable = self._standby is not None
        if algorithm == "A256GCM":
            self._token.generate_secret_key(label, extractable=replicable)
        else:
            self._token.generate_key(label, algorithm, extractable=replicable)
        self._install(self._token.list_signers(), self._token.list_secret_keys())
        return self._entries[name].meta

    # -- lifecycle ----------------------------------------------------------------------------

    def list_keys(self) -> list[KeyMeta]:
        return sorted((e.meta for e in self._entries.values()), key=lambda m: m.created_at)

    async def acreate(
        self, purpose: Purpose, algorithm: KeyAlgorithm, *, activate: bool = False
    ) -> KeyMeta:
        purpose, algorithm = check_algorithm(purpose, algorithm)
        check_creation(purpose)
        async with self._lock:
            name = new_key_name(algorithm, secrets.token_hex(4))
            label = format_label(purpose, "pending", name)
            replicable = self._standby is not None
            if algorithm == "A256GCM":
                await self._token.agenerate_secret_key(label, extractable=replicable)
            else:
                await self._token.agenerate_key(label, algorithm, extractable=replicable)
            await self._areload()
            if activate:
                return await self._aactivate_locked(name)
            return self._entries[name].meta

    async def aactivate(self, key_id: str) -> KeyMeta:
        async with self._lock:
            await self._areload()
            return await self._aactivate_locked(key_id)

    async def _aactivate_locked(self, key_id: str) -> KeyMeta:
        meta = find_key(self.list_keys(), key_id)
        check_activation(meta)
        entry = self._entries[meta.name]
        # Promote first, then demote: a crash in between leaves two active keys (the newest
        # signs), never none.
        await self._token.arelabel(entry.cka_id, format_label(meta.purpose, "active", meta.name))
        for other in list(self._entries.values()):
            o = other.meta
            if o.name != meta.name and (o.purpose, o.algorithm, o.state) == (
                meta.purpose,
                meta.algorithm,
                "active",
            ):
                await self._token.arelabel(
                    other.cka_id, format_label(o.purpose, "inactive", o.name)
                )
        await self._areload()
        return self._entries[meta.name].meta

    async def aretire(self, key_id: str) -> KeyMeta:
        async with self._lock:
            await self._areload()
            meta = find_key(self.list_keys(), key_id)
            check_retirement(meta)
            if meta.state != "retired":
                entry = self._entries[meta.name]
                await self._token.arelabel(
                    entry.cka_id, format_label(meta.purpose, "retired", meta.name)
                )
                await self._areload()
            return self._entries[meta.name].meta

    async def arefresh(self) -> None:
        async with self._lock:
            await self._areload()

    async def aclose(self) -> None:
        await self._token.aclose()
        if self._standby is not None:
            await self._standby.aclose()

    # -- signing ------------------------------------------------------------------------------

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
            meta = self._generate_blocking(purpose, wanted, "active")
            self._usage.event("created-on-first-use", meta)
        audited = self._audited_signer(meta, purpose)
        self._active[purpose, wanted] = audited
        return audited

    def signer_for(self, key_id: str) -> Signer:
        meta = find_key(self.list_keys(), key_id)
        if meta.purpose == "key-encryption" or meta.state == "retired":
            raise KeyLifecycleError(f"key {key_id} is not a usable signing key ({meta.state})")
        return self._audited_signer(meta, meta.purpose)

    def _audited_signer(self, meta: KeyMeta, purpose: SigningPurpose) -> AuditedSigner:
        audited = self._audited.get((meta.name, purpose))
        if audited is None:
            inner = self._entries[meta.name].signer
            assert inner is not None  # signing purposes always carry a signer
            audited = AuditedSigner(inner, purpose, self._usage)
            self._audited[meta.name, purpose] = audited
        return audited

    def public_jwks(self, purpose: SigningPurpose = "credential-signing") -> list[dict[str, str]]:
        return [
            dict(m.public_jwk)
            for m in self.list_keys()
            if m.purpose == purpose and m.state != "retired" and m.public_jwk
        ]

    def health(self) -> None:
        if not self._token.ready:
            raise CryptoError(f"PKCS#11 token '{self._token.label}' is not open")
        self.signer("credential-signing")

    async def ahealth(self) -> None:
        """Sign a probe with the active credential-signing key (through the standby if the
        token cannot), at most once per :data:`PROBE_TTL_S`; raise what signing raised.

        The probe is not counted as key usage. A failed token is tried again here too (with
        its backoff), so readiness probes drive recovery even when no request signs.
        """
        now = self._clock()
        if self._probe is not None and now - self._probe[0] < PROBE_TTL_S:
            if self._probe[1] is not None:
                raise self._probe[1]
            return
        failure: Exception | None = None
        try:
            self.health()
            meta = choose_active(self.list_keys(), "credential-signing", "ES256")
            signer = self._entries[meta.name].signer
            assert signer is not None
            await signer.sign(b"pavilion readiness probe")
        except Exception as exc:
            failure = exc
        self._probe = (self._clock(), failure)
        if failure is not None:
            raise failure

    # -- key encryption -----------------------------------------------------------------------

    def wrap_key(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        meta = choose_active(self.list_keys(), "key-encryption", "A256GCM")
        iv = os.urandom(12)
        cka_id = self._entries[meta.name].cka_id
        try:
            sealed = self._token.encrypt_gcm(cka_id, iv, context, data_key)
        except Pkcs11Unavailable:
            if self._standby is None:
                raise
            sealed = self._standby.encrypt_gcm(cka_id, iv, context, data_key)
        return meta.name, iv + sealed

    def unwrap_key(self, kek_id: str, blob: bytes, context: bytes) -> bytes:
        entry = self._entries.get(kek_id)
        if entry is None:  # made by another process since we loaded: look again, once
            self._install(self._token.list_signers(), self._token.list_secret_keys())
            entry = self._entries.get(kek_id)
        if entry is None or entry.meta.purpose != "key-encryption":
            raise CryptoError(f"unknown key-encryption key {kek_id!r}")
        if entry.meta.state == "retired":
            raise CryptoError(f"key-encryption key {kek_id!r} is retired")
        if len(blob) < 12 + 16:
            raise CryptoError("wrapped data key does not open: tampered or wrong context")
        try:
            return self._token.decrypt_gcm(entry.cka_id, blob[:12], context, blob[12:])
        except Pkcs11Unavailable:
            if self._standby is None:
                raise
            return self._standby.decrypt_gcm(entry.cka_id, blob[:12], context, blob[12:])


def _require_protected(
    label: str,
    *,
    sensitive: bool,
    extractable: bool,
    never_extractable: bool,
    local: bool,
    replicable: bool = False,
) -> None:
    if replicable and sensitive:
        # With a standby, keys are generated extractable (only wrapped, under the replication
        # key) and the standby's copies were unwrapped, not generated (not CKA_LOCAL).
        return
    if not sensitive or extractable or not never_extractable or not local:
        raise ConfigurationError(
            f"PKCS#11 key '{label}' is not protected as the connector requires (generated in "
            f"the token, sensitive, never extractable): sensitive={sensitive}, "
            f"extractable={extractable}, never_extractable={never_extractable}, local={local}. "
            "Remove it or give it a label outside 'pavilion:'"
        )
