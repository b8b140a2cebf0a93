"""AnonCreds issuers: one credential definition per (tenant, DP), created once and reused.

Creating a credential definition takes seconds (safe primes), so it is made on first use, its
private part sealed under the tenant's data key, and kept in memory once loaded; a concurrent
creation loses the race to the stored one and uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.anoncreds.engine import IssuerMaterial
from pavilion.credentials.anoncreds.models import (
    AnoncredsIssuer,
)
from pavilion.credentials.anoncreds.registries import Registries
from pavilion.credentials.anoncreds.types import (
    AnoncredsConfig,
    Issuer,
    MaterialFactory,
    aad,
)
from pavilion.store.base import new_id
from pavilion.store.database import Database
from pavilion.tenancy.service import TenantKeys


class Issuers:
    """The credential definitions of the tenants' DPs, loaded and unsealed once per process."""

    def __init__(
        self,
        db: Database,
        tenant_keys: TenantKeys,
        config: AnoncredsConfig,
        registries: Registries,
        *,
        clock: Callable[[], datetime],
        material_factory: MaterialFactory,
    ) -> None:
        self._db = db
        self._keys = tenant_keys
        self._config = config
        self._registries = registries
        self._clock = clock
        self._factory = material_factory
        self._issuers: dict[tuple[str, str], Issuer] = {}

    async def ensure_issuer(self, tenant_id: str, provider_id: str) -> Issuer:
        """The DP's credential definition, created on first use and reused ever after."""
        cached = self._issuers.get((tenant_id, provider_id))
        if cached is not None:
            return cached
        async with self._db.transaction(tenant_id, readonly=True) as session:
            issuer = await self._load_issuer(session, tenant_id, provider_id)
        if issuer is None:
            issuer_uri = (
                f"{self._config.issuer_base.rstrip('/')}/anoncreds/{tenant_id}/{provider_id}"
            )
            material = await asyncio.to_thread(self._factory, issuer_uri)
            row_id = new_id()
            first = await self._registries.make(material, row_id, 1)
            try:
                async with self._db.transaction(tenant_id) as session:
                    session.add(
                        AnoncredsIssuer(
                            id=row_id,
                            tenant_id=tenant_id,
                            provider_id=provider_id,
                            issuer_id=material.issuer_id,
                            schema_id=material.schema_id,
                            schema_json=material.schema_json,
                            cred_def_id=material.cred_def_id,
                            cred_def_json=material.cred_def_json,
                            key_proof_json=material.key_proof_json,
                            sealed_private=await self._keys.seal(
                                session,
                                tenant_id,
                                material.cred_def_private_json.encode(),
                                aad(tenant_id, row_id, "cred-def"),
                            ),
                            created_at=self._clock(),
                        )
                    )
                    await session.flush()
                    await self._registries.store(session, tenant_id, row_id, 1, first)
                issuer = Issuer(row_id, provider_id, material)
            except IntegrityError:  # another request created it first: use theirs
                async with self._db.transaction(tenant_id) as session:
                    issuer = await self._load_issuer(session, tenant_id, provider_id)
                assert issuer is not None
        self._issuers[(tenant_id, provider_id)] = issuer
        return issuer

    async def _load_issuer(
        self, session: AsyncSession, tenant_id: str, provider_id: str
    ) -> Issuer | None:
        row = (
            await session.execute(
                select(AnoncredsIssuer).where(
                    AnoncredsIssuer.tenant_id == tenant_id,
                    AnoncredsIssuer.provider_id == provider_id,
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return None
        private = await self._keys.open(
            session, tenant_id, row.sealed_private, aad(tenant_id, row.id, "cred-def")
        )
        material = IssuerMaterial(
            issuer_id=row.issuer_id,
            schema_id=row.schema_id,
            schema_json=row.schema_json,
            cred_def_id=row.cred_def_id,
            cred_def_json=row.cred_def_json,
            key_proof_json=row.key_proof_json,
            cred_def_private_json=private.decode(),
        )
        return Issuer(row.id, provider_id, material)

    async def issuer_of(self, session: AsyncSession, tenant_id: str, issuer_row_id: str) -> Issuer:
        """The issuer of a registry or offer, read in the caller's transaction (opening a
        second one here would wait forever for SQLite's single writer connection)."""
        provider_id = (
            await session.execute(
                select(AnoncredsIssuer.provider_id).where(
                    AnoncredsIssuer.tenant_id == tenant_id, AnoncredsIssuer.id == issuer_row_id
                )
            )
        ).scalar_one()
        cached = self._issuers.get((tenant_id, provider_id))
        if cached is not None:
            return cached
        issuer = await self._load_issuer(session, tenant_id, provider_id)
        assert issuer is not None  # the row was just read
        self._issuers[(tenant_id, provider_id)] = issuer
        return issuer
