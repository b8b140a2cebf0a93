"""This connector's own status lists as a verifier reads them: from memory, kept fresh.

Verifying a credential checks its status entry. Read from the database on every
verification, that cost a transaction and two statements, about three quarters of the
connector's CPU per verification through the VC-API. A list is instead held in memory as
what a verifier needs of it: its kind, purpose and size, and the few entries whose state
publishes a value (revoked, suspended); every other index reads 0 (valid, reserved, unused).

It is held for ``ttl`` seconds (``PAVILION_CONFIG_CACHE_SECONDS``), like the tenant's other
configuration: a status change made through this worker drops the tenant's lists at once
(``forget``), one made through another worker or node is seen within ``ttl``. A list that
is verified against is read once per ``ttl`` whatever the rate; concurrent misses share one
read. ``ttl`` 0 reads the database every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pavilion.credentials.status.queries import find_list, published_entries
from pavilion.credentials.status.resolver import StatusUnavailable
from pavilion.credentials.status.states import ListKind, list_value
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database


@dataclass(frozen=True)
class ListView:
    """What a verifier needs of one list: shape, and the entries that publish a value."""

    uri: str
    kind: str
    purpose: str
    size: int
    #: Index -> state, for the entries whose state sets a non-zero value in this list.
    flagged: Mapping[int, str]

    def value(self, index: int) -> int:
        """The list's value at ``index`` (StatusUnavailable when it is outside the list)."""
        if index >= self.size:
            raise StatusUnavailable(f"index {index} is outside the status list (size {self.size})")
        return list_value(self.kind, self.purpose, self.flagged.get(index, "valid"))


class LocalLists:
    """The lists of every tenant of this connector, read through a short-lived cache."""

    def __init__(
        self, db: Database, ttl: float, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._cache = ConfigCache(ttl, timer=timer)

    @property
    def reads(self) -> int:
        """Lists read from the database so far (tests, the benchmark)."""
        return self._cache.loads

    async def view(self, tenant_id: str, kind: ListKind, list_id: str, uri: str) -> ListView:
        async def load() -> ListView:
            return await self._read(tenant_id, kind, list_id, uri)

        return await self._cache.get(tenant_id, ("status-list", kind, list_id), load)

    def forget(self, tenant_id: str) -> None:
        """The tenant's statuses changed through this worker: read its lists again."""
        self._cache.invalidate(tenant_id)

    async def _read(self, tenant_id: str, kind: ListKind, list_id: str, uri: str) -> ListView:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = await find_list(session, tenant_id, list_id, kind)
            if row is None:
                raise StatusUnavailable(f"status list {uri} does not exist")
            flagged = await published_entries(session, tenant_id, row)
        return ListView(
            uri=uri,
            kind=row.kind,
            purpose=row.purpose,
            size=row.size,
            flagged=MappingProxyType({int(idx): str(state) for idx, state in flagged}),
        )
