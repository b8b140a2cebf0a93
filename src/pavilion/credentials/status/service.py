"""Status lists over the database: allocate, bind, change, publish, resolve.

:class:`StatusListService` is the one object the runtime holds; its methods are those of its
parts, one module each: ``reservations`` (reserve and bind indices), ``changes`` (revoke,
suspend, reinstate; a credential's status), ``publishing`` (signed, cached lists); it resolves
a status itself (this connector's lists from memory, ``local_lists``, others through the
remote resolver). The values they share are in ``types``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pavilion.audit.log import AuditLog
from pavilion.credentials.status.changes import StatusChanges
from pavilion.credentials.status.local_lists import LocalLists
from pavilion.credentials.status.publishing import ListPublisher
from pavilion.credentials.status.reservations import IndexAllocator
from pavilion.credentials.status.resolver import RemoteStatusResolver, StatusUnavailable
from pavilion.credentials.status.states import ListKind
from pavilion.credentials.status.types import (
    PATHS,
    PublishedList,
    StatusChange,
    StatusListConfig,
    StatusLookup,
    StatusReservation,
    list_uri,
    tenant_of_list,
)
from pavilion.errors import InvalidRequest, NotFound
from pavilion.keystore.base import Keystore
from pavilion.store.database import Database
from pavilion.store.sqlite_batch import SqliteWriter

__all__ = [
    "PublishedList",
    "StatusListConfig",
    "StatusListService",
    "StatusLookup",
    "StatusReservation",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StatusListService:
    """Status lists of every tenant: the issuance, admin, publishing and verifier sides."""

    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        audit: AuditLog,
        config: StatusListConfig,
        *,
        remote: RemoteStatusResolver | None = None,
        clock: Callable[[], datetime] = _utc_now,
        writer: SqliteWriter | None = None,
    ) -> None:
        """``writer``: the SQLite database's writer thread (the journal's), which makes a
        status change one hand-off instead of a SQLAlchemy transaction."""
        self._db = db
        self._config = config
        self._remote = remote or RemoteStatusResolver({})
        self._base = config.base_url.rstrip("/")
        self._allocator = IndexAllocator(db, config, clock=clock)
        self._changes = StatusChanges(db, audit, config, clock=clock, writer=writer)
        self._lists = LocalLists(db, config.cache_seconds)
        publisher = ListPublisher(db, keystore, config, clock=clock)
        self.reserve = self._allocator.reserve
        self.bind = self._allocator.bind
        self.binding = self._allocator.binding
        self.credential_status = self._changes.credential_status
        self.publish = publisher.publish

    @property
    def config(self) -> StatusListConfig:
        return self._config

    async def aclose(self) -> None:
        await self._allocator.aclose()
        await self._remote.aclose()

    def list_uri(self, kind: str, list_id: str) -> str:
        return list_uri(self._base, kind, list_id)

    def _local(self, list_uri: str) -> tuple[ListKind, str] | None:
        for kind, path in PATHS.items():
            prefix = self._base + path
            if list_uri.startswith(prefix):
                return kind, list_uri[len(prefix) :]  # type: ignore[return-value]
        return None

    async def resolve_status(self, list_uri: str, index: int) -> int:
        """The status value at ``index`` of the list at ``list_uri`` (a verifier's callable).

        This connector's own lists are read from memory (``local_lists``: a change through this
        worker applies at once, through another within ``cache_seconds``); any other list is
        fetched, its signature checked against a trust anchor, and cached for its
        ``ttl``. Token lists give 0 valid, 1 invalid, 2 suspended; bitstring lists give the bit
        of their purpose. Raises :class:`StatusUnavailable` with the reason otherwise.
        """
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidRequest("index must be a non-negative integer", field="idx")
        local = self._local(list_uri)
        if local is None:
            return await self._remote.resolve(list_uri, index)
        kind, list_id = local
        try:
            tenant_id = tenant_of_list(list_id)
        except NotFound as exc:
            raise StatusUnavailable(f"status list {list_uri} does not exist") from exc
        view = await self._lists.view(tenant_id, kind, list_id, list_uri)
        return view.value(index)

    async def change_status(
        self,
        tenant_id: str,
        credential_id: str,
        action: str,
        *,
        actor: str,
        reason: str | None = None,
    ) -> StatusChange:
        """Revoke, suspend or reinstate a credential (audited); this worker's verifiers see
        the change at once, other workers' within the cache's ``ttl``."""
        try:
            return await self._changes.change_status(
                tenant_id, credential_id, action, actor=actor, reason=reason
            )
        finally:
            self._lists.forget(tenant_id)
