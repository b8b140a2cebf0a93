"""Revocation registries: made, stored with their secret sealed, slots handed out, lists published.

Revocation registries are the accumulator. Slots are handed out in order under a row lock on
the active registry; when it is full, the same transaction marks it ``full`` and opens the next
registry (``seq`` + 1), so bulk issuance never stops at "registry is full". anoncreds-rs
reserves index 0, so a registry of capacity ``n`` is created with ``n + 1`` entries and uses
slots ``1..n``. Every change of a registry's state is published as a new status list with a
strictly increasing timestamp, stored append-only with its delta (the indices it revoked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.engine import IssuerMaterial, RegistryMaterial
from pavilion.credentials.anoncreds.models import (
    AnoncredsCredential,
    AnoncredsRegistry,
    AnoncredsStatusList,
)
from pavilion.credentials.anoncreds.types import (
    AnoncredsConfig,
    Issuer,
    Published,
    Slot,
    aad,
)
from pavilion.errors import NotFound
from pavilion.store.base import new_id
from pavilion.store.database import Database
from pavilion.tenancy.service import TenantKeys


class Registries:
    """The registries of every issuer of a tenant, and their published status lists."""

    def __init__(
        self,
        db: Database,
        tenant_keys: TenantKeys,
        config: AnoncredsConfig,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._keys = tenant_keys
        self._config = config
        self._clock = clock

    async def make(
        self, material: IssuerMaterial, issuer_row_id: str, seq: int
    ) -> RegistryMaterial:
        rev_reg_def_id = f"{material.issuer_id}/revocation-registries/{issuer_row_id}/{seq}"
        return await asyncio.to_thread(
            engine.create_registry,
            material,
            rev_reg_def_id,
            tag=f"r{seq}",
            max_cred_num=self._config.registry_capacity + 1,
            timestamp=int(self._clock().timestamp()),
            tails_dir=self._config.tails_dir,
        )

    async def store(
        self,
        session: AsyncSession,
        tenant_id: str,
        issuer_row_id: str,
        seq: int,
        made: RegistryMaterial,
    ) -> AnoncredsRegistry:
        registry_id = new_id()
        registry = AnoncredsRegistry(
            id=registry_id,
            tenant_id=tenant_id,
            issuer_row_id=issuer_row_id,
            seq=seq,
            rev_reg_def_id=made.rev_reg_def_id,
            rev_reg_def_json=made.rev_reg_def_json,
            sealed_private=await self._keys.seal(
                session,
                tenant_id,
                made.private_json.encode(),
                aad(tenant_id, registry_id, "registry"),
            ),
            tails_hash=made.tails_hash,
            tails=made.tails,
            capacity=made.max_cred_num - 1,
            next_index=1,
            status="active",
            created_at=self._clock(),
        )
        session.add(registry)
        await session.flush()
        session.add(
            AnoncredsStatusList(
                tenant_id=tenant_id,
                registry_id=registry_id,
                timestamp=made.timestamp,
                list_json=made.status_list_json,
                revoked=[],
                created_at=self._clock(),
            )
        )
        return registry

    async def private(
        self, session: AsyncSession, tenant_id: str, registry: AnoncredsRegistry
    ) -> str:
        opened = await self._keys.open(
            session, tenant_id, registry.sealed_private, aad(tenant_id, registry.id, "registry")
        )
        return opened.decode()

    async def allocate(
        self,
        tenant_id: str,
        issuer: Issuer,
        *,
        subject_ref: str,
        purpose: str,
        details: dict[str, Any],
    ) -> Slot:
        """Reserve the next free slot, opening the next registry when the active one is full."""
        async with self._db.transaction(tenant_id) as session:
            registry = (
                (
                    await session.execute(
                        select(AnoncredsRegistry)
                        .where(
                            AnoncredsRegistry.tenant_id == tenant_id,
                            AnoncredsRegistry.issuer_row_id == issuer.row_id,
                            AnoncredsRegistry.status == "active",
                        )
                        .order_by(AnoncredsRegistry.seq.desc())
                        .with_for_update()
                    )
                )
                .scalars()
                .first()
            )
            if registry is None or registry.next_index > registry.capacity:
                seq = 1 if registry is None else registry.seq + 1
                if registry is not None:
                    registry.status = "full"
                made = await self.make(issuer.material, issuer.row_id, seq)
                registry = await self.store(session, tenant_id, issuer.row_id, seq, made)
            index = registry.next_index
            registry.next_index = index + 1
            latest = await self.latest_list(session, tenant_id, registry.id)
            credential_id = new_id()
            session.add(
                AnoncredsCredential(
                    id=credential_id,
                    tenant_id=tenant_id,
                    registry_id=registry.id,
                    rev_index=index,
                    provider_id=issuer.provider_id,
                    subject_ref=subject_ref,
                    purpose=purpose,
                    details=details,
                    created_at=self._clock(),
                )
            )
            return Slot(
                credential_id=credential_id,
                registry_id=registry.id,
                rev_reg_def_id=registry.rev_reg_def_id,
                rev_reg_def_json=registry.rev_reg_def_json,
                private_json=await self.private(session, tenant_id, registry),
                index=index,
                status_list_json=latest.list_json,
                tails_hash=registry.tails_hash,
            )

    async def latest_list(
        self, session: AsyncSession, tenant_id: str, registry_id: str
    ) -> AnoncredsStatusList:
        return (
            (
                await session.execute(
                    select(AnoncredsStatusList)
                    .where(
                        AnoncredsStatusList.tenant_id == tenant_id,
                        AnoncredsStatusList.registry_id == registry_id,
                    )
                    .order_by(AnoncredsStatusList.timestamp.desc())
                    .limit(1)
                )
            )
            .scalars()
            .one()
        )

    async def publish(
        self,
        session: AsyncSession,
        tenant_id: str,
        issuer: Issuer,
        registry: AnoncredsRegistry,
        revoked: Sequence[int],
        *,
        not_before: int = 0,
    ) -> Published:
        """Publish the registry's next status list (caller holds the registry's row lock)."""
        latest = await self.latest_list(session, tenant_id, registry.id)
        timestamp = max(int(self._clock().timestamp()), latest.timestamp + 1, not_before)
        list_json = await asyncio.to_thread(
            engine.update_status_list,
            issuer.material,
            registry.rev_reg_def_json,
            await self.private(session, tenant_id, registry),
            latest.list_json,
            revoked=list(revoked),
            timestamp=timestamp,
        )
        session.add(
            AnoncredsStatusList(
                tenant_id=tenant_id,
                registry_id=registry.id,
                timestamp=timestamp,
                list_json=list_json,
                revoked=sorted(revoked),
                created_at=self._clock(),
            )
        )
        return Published(registry.id, registry.rev_reg_def_id, timestamp, list_json, list(revoked))

    async def locked(
        self, session: AsyncSession, tenant_id: str, registry_id: str
    ) -> AnoncredsRegistry:
        registry = (
            await session.execute(
                select(AnoncredsRegistry)
                .where(
                    AnoncredsRegistry.tenant_id == tenant_id, AnoncredsRegistry.id == registry_id
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if registry is None:
            raise NotFound(f"revocation registry {registry_id} does not exist")
        return registry
