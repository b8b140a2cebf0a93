"""Revocation: revoke credentials (one published delta per registry) and answer for an interval.

A presentation's ``non_revoked`` interval needs a status list published inside it: the newest
one in the interval is used, and when there is none and the interval has not ended, a
timestamp-only update is published now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select

from pavilion.credentials.anoncreds.issuers import Issuers
from pavilion.credentials.anoncreds.models import (
    AnoncredsCredential,
    AnoncredsStatusList,
)
from pavilion.credentials.anoncreds.registries import Registries
from pavilion.credentials.anoncreds.types import (
    Published,
)
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.store.database import Database


class Revocation:
    """Revokes AnonCreds credentials and finds the status list a presentation may use."""

    def __init__(
        self,
        db: Database,
        registries: Registries,
        issuers: Issuers,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._registries = registries
        self._issuers = issuers
        self._clock = clock

    async def revoke(self, tenant_id: str, credential_ids: Sequence[str]) -> list[Published]:
        """Revoke credentials and publish one delta per registry they live in."""
        if not credential_ids:
            raise InvalidRequest("name at least one credential", field="credential_ids")
        published: list[Published] = []
        async with self._db.transaction(tenant_id) as session:
            rows = (
                (
                    await session.execute(
                        select(AnoncredsCredential)
                        .where(
                            AnoncredsCredential.tenant_id == tenant_id,
                            AnoncredsCredential.id.in_(list(credential_ids)),
                        )
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            found = {r.id for r in rows}
            missing = [c for c in credential_ids if c not in found]
            if missing:
                raise NotFound(f"AnonCreds credential {missing[0]} does not exist")
            already = [r.id for r in rows if r.revoked_at is not None]
            if already:
                raise Conflict(f"AnonCreds credential {already[0]} is already revoked")
            by_registry: dict[str, list[AnoncredsCredential]] = {}
            for row in rows:
                by_registry.setdefault(row.registry_id, []).append(row)
            for registry_id in sorted(by_registry):
                registry = await self._registries.locked(session, tenant_id, registry_id)
                issuer = await self._issuers.issuer_of(session, tenant_id, registry.issuer_row_id)
                revoked = sorted(r.rev_index for r in by_registry[registry_id])
                published.append(
                    await self._registries.publish(session, tenant_id, issuer, registry, revoked)
                )
                for row in by_registry[registry_id]:
                    row.revoked_at = self._clock()
        return published

    async def revoke_subject(self, tenant_id: str, provider_id: str, subject_ref: str) -> int:
        """Revoke every live credential issued about a subject (by its keyed pseudonym)."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            ids = (
                (
                    await session.execute(
                        select(AnoncredsCredential.id).where(
                            AnoncredsCredential.tenant_id == tenant_id,
                            AnoncredsCredential.provider_id == provider_id,
                            AnoncredsCredential.subject_ref == subject_ref,
                            AnoncredsCredential.revoked_at.is_(None),
                        )
                    )
                )
                .scalars()
                .all()
            )
        if ids:
            await self.revoke(tenant_id, list(ids))
        return len(ids)

    async def status_list_within(
        self, tenant_id: str, registry_id: str, start: int | None, end: int
    ) -> tuple[int, str]:
        """The newest published list with ``start <= timestamp <= end``; when there is none
        and ``end`` is not in the past, a timestamp-only update is published now."""
        async with self._db.transaction(tenant_id) as session:
            query = (
                select(AnoncredsStatusList)
                .where(
                    AnoncredsStatusList.tenant_id == tenant_id,
                    AnoncredsStatusList.registry_id == registry_id,
                    AnoncredsStatusList.timestamp <= end,
                )
                .order_by(AnoncredsStatusList.timestamp.desc())
                .limit(1)
            )
            newest = (await session.execute(query)).scalars().first()
            if newest is not None and (start is None or newest.timestamp >= start):
                return newest.timestamp, newest.list_json
            now = int(self._clock().timestamp())
            if now > end:
                raise InvalidRequest(
                    "no revocation state was published inside the requested non_revoked "
                    "interval, and it has ended",
                    field="proof_request.non_revoked",
                )
            registry = await self._registries.locked(session, tenant_id, registry_id)
            issuer = await self._issuers.issuer_of(session, tenant_id, registry.issuer_row_id)
            published = await self._registries.publish(
                session, tenant_id, issuer, registry, [], not_before=start or 0
            )
            if published.timestamp > end:
                raise InvalidRequest(
                    "the non_revoked interval ends before a new revocation state can be published",
                    field="proof_request.non_revoked",
                )
            return published.timestamp, published.list_json
