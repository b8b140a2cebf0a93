"""Key lifecycle and signing usage, audited in the platform tenant's log.

Keys belong to the platform, not to a tenant, so their audit leaves go to the log of
:data:`~pavilion.tenancy.models.PLATFORM_TENANT_ID` (``pavilion audit checkpoint --tenant
platform`` signs it like any other).

* A lifecycle step (create, activate, rotate, retire) runs inside a platform transaction that
  also appends its leaf: when the keystore refuses, nothing is written; the leaf commits with
  the step (a crash between the keystore change and the commit is the one window without a
  leaf, and ``pavilion keys list`` shows the resulting state).
* Signatures are counted in memory per key and purpose (:class:`~pavilion.keystore.base.
  KeyUsage`) and flushed as ``key-usage`` leaves every ``key_usage_flush_seconds``, before each
  lifecycle step and at shutdown. We chose counters over a leaf per signature: a leaf costs a
  row lock and two inserts, which would serialise every issuance of every tenant on the
  platform log; each credential's own leaf (in its tenant's log) already commits to the
  credential's SHA-256, and so to the ``kid`` in its protected header.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from pavilion.audit.log import AuditLog, AuditReceipt
from pavilion.keystore.base import (
    ALGORITHMS,
    KeyAlgorithm,
    KeyEvent,
    KeyLifecycleError,
    KeyMeta,
    Keystore,
    Purpose,
    UsageCount,
    check_algorithm,
    find_key,
)
from pavilion.observability.logging import get_logger
from pavilion.store.database import Database
from pavilion.tenancy.models import PLATFORM_TENANT_ID, Tenant

log = get_logger(__name__)


@dataclass(frozen=True)
class KeyChange:
    """A lifecycle step's result: the key after it, and the audit leaf that records it."""

    key: KeyMeta
    audit_index: int
    previous_active: str | None = None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


class KeyService:
    """Lifecycle steps with their audit leaves, and the background flush of usage counts."""

    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        audit: AuditLog,
        *,
        flush_seconds: float = 30.0,
        node: str | None = None,
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._audit = audit
        self._flush_seconds = flush_seconds
        self._node = node or f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()

    @property
    def keystore(self) -> Keystore:
        return self._keystore

    # -- lifecycle ----------------------------------------------------------------------------

    async def list(self) -> list[KeyMeta]:
        await self._keystore.arefresh()
        return self._keystore.list_keys()

    async def create(
        self, purpose: str, algorithm: str | None, *, activate: bool = False, actor: str
    ) -> KeyChange:
        checked_purpose, checked_algorithm = self._checked(purpose, algorithm)
        action = "rotate" if activate else "create"
        return await self._step(
            action,
            actor,
            checked_purpose,
            lambda: self._keystore.acreate(checked_purpose, checked_algorithm, activate=activate),
            algorithm=checked_algorithm,
        )

    async def rotate(self, purpose: str, algorithm: str | None, *, actor: str) -> KeyChange:
        """Create a key and make it the one that signs; the old key stays in the JWKS."""
        return await self.create(purpose, algorithm, activate=True, actor=actor)

    async def activate(self, key_id: str, *, actor: str) -> KeyChange:
        await self._keystore.arefresh()
        meta = find_key(self._keystore.list_keys(), key_id)
        return await self._step(
            "activate",
            actor,
            meta.purpose,
            lambda: self._keystore.aactivate(key_id),
            algorithm=meta.algorithm,
        )

    async def retire(self, key_id: str, *, actor: str) -> KeyChange:
        """Take a key out of use and out of the JWKS for good."""
        await self._keystore.arefresh()
        meta = find_key(self._keystore.list_keys(), key_id)
        if meta.purpose == "key-encryption":
            await self._refuse_if_wrapping(meta)
        return await self._step(
            "retire", actor, meta.purpose, lambda: self._keystore.aretire(key_id)
        )

    @staticmethod
    def _checked(purpose: str, algorithm: str | None) -> tuple[Purpose, KeyAlgorithm]:
        if algorithm is None:
            algorithm = ALGORITHMS[purpose][0] if purpose in ALGORITHMS else ""
        return check_algorithm(purpose, algorithm)

    async def _refuse_if_wrapping(self, meta: KeyMeta) -> None:
        async with self._db.transaction(None, readonly=True) as session:
            count = (
                await session.execute(
                    select(func.count()).select_from(Tenant).where(Tenant.kek_id == meta.name)
                )
            ).scalar_one()
        if count:
            raise KeyLifecycleError(
                f"key-encryption key {meta.key_id} still wraps the data keys of {count} "
                "tenant(s): rotate it and re-wrap those keys before retiring it"
            )

    async def _step(
        self,
        action: str,
        actor: str,
        purpose: Purpose,
        change: Callable[[], Awaitable[KeyMeta]],
        *,
        algorithm: KeyAlgorithm | None = None,
    ) -> KeyChange:
        await self.flush_usage(raise_errors=False)  # attribute signatures to the old state
        before = self._active_kid(purpose, algorithm)
        async with self._db.transaction(PLATFORM_TENANT_ID) as session:
            meta: KeyMeta = await change()
            receipt: AuditReceipt = await self._audit.append(
                session,
                PLATFORM_TENANT_ID,
                _lifecycle_event(action, meta, actor=actor, previous_active=before),
            )
        log.info(
            "key lifecycle",
            action=action,
            key_id=meta.key_id,
            purpose=meta.purpose,
            state=meta.state,
            audit_index=receipt.index,
        )
        previous = before if before != meta.key_id and meta.state == "active" else None
        return KeyChange(meta, receipt.index, previous)

    def _active_kid(self, purpose: Purpose, algorithm: KeyAlgorithm | None) -> str | None:
        for meta in reversed(self._keystore.list_keys()):
            if (
                meta.purpose == purpose
                and meta.state == "active"
                and algorithm in (None, meta.algorithm)
            ):
                return meta.key_id
        return None

    # -- usage --------------------------------------------------------------------------------

    async def flush_usage(self, *, raise_errors: bool = True) -> int:
        """Write the counted signatures and automatic key events as platform audit leaves."""
        async with self._flush_lock:
            counts, events = self._keystore.usage.drain()
            if not counts and not events:
                return 0
            try:
                async with self._db.transaction(PLATFORM_TENANT_ID) as session:
                    for event in events:
                        await self._audit.append(
                            session, PLATFORM_TENANT_ID, _automatic_event(event)
                        )
                    for count in counts:
                        await self._audit.append(
                            session, PLATFORM_TENANT_ID, _usage_event(count, self._node)
                        )
            except Exception as exc:
                self._keystore.usage.restore(counts, events)
                log.warning("key usage flush failed", error=type(exc).__name__)
                if raise_errors:
                    raise
                return 0
            return len(counts) + len(events)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self._keystore.arefresh()
            except Exception as exc:  # a refresh failure must not stop the flushing
                log.warning("keystore refresh failed", error=type(exc).__name__)
            await self.flush_usage(raise_errors=False)

    async def start(self) -> None:
        """Start the background refresh and flush (the API's lifespan calls this)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._maintain(), name="pavilion-key-maintenance")

    async def stop(self) -> None:
        """Stop the background task and flush what is left."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush_usage(raise_errors=False)

    async def aclose(self) -> None:
        await self.stop()
        await self._keystore.aclose()


def _key_fields(meta: KeyMeta) -> dict[str, Any]:
    return {
        "key_id": meta.key_id,
        "key_name": meta.name,
        "purpose": meta.purpose,
        "algorithm": meta.algorithm,
        "state": meta.state,
        "backend": meta.backend,
    }


def _lifecycle_event(
    action: str, meta: KeyMeta, *, actor: str, previous_active: str | None
) -> dict[str, Any]:
    return {
        "kind": "key-lifecycle",
        "action": action,
        **_key_fields(meta),
        "previous_active": previous_active,
        "actor": actor,
        "at": datetime.now(UTC).isoformat(),
    }


def _automatic_event(event: KeyEvent) -> dict[str, Any]:
    return {
        "kind": "key-lifecycle",
        "action": event.action,
        **_key_fields(event.meta),
        "previous_active": None,
        "actor": "keystore",
        "at": event.at,
    }


def _usage_event(count: UsageCount, node: str) -> dict[str, Any]:
    return {
        "kind": "key-usage",
        "operation": "sign",
        "key_id": count.key_id,
        "purpose": count.purpose,
        "algorithm": count.algorithm,
        "count": count.count,
        "from": _iso(count.first_at),
        "to": _iso(count.last_at),
        "node": node,
    }
