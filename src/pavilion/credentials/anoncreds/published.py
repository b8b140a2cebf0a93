"""What holders and verifiers read: tails files, registries, deltas, verification material.

Everything is read from the tenant's own records; a tails file is written to local disk from
the database when this node lacks it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pavilion.credentials.anoncreds.models import (
    AnoncredsIssuer,
    AnoncredsRegistry,
    AnoncredsStatusList,
)
from pavilion.credentials.anoncreds.types import (
    AnoncredsConfig,
    RegistryView,
    StatusListDelta,
)
from pavilion.errors import NotFound
from pavilion.store.base import new_id
from pavilion.store.database import Database
from pavilion.store.private_files import private_dir, private_file


class PublishedState:
    """The read side of AnonCreds issuance for holders and verifiers."""

    def __init__(self, db: Database, config: AnoncredsConfig) -> None:
        self._db = db
        self._config = config

    def tails_path(self, tails_hash: str, tails: bytes) -> Path:
        """The tails file on local disk, written from the database when this node lacks it."""
        path = self._config.tails_dir / tails_hash
        if not path.exists():
            private_dir(self._config.tails_dir)
            tmp = private_file(path.with_suffix(f".{new_id()}.tmp"))
            tmp.write_bytes(tails)
            tmp.replace(path)
        return path

    async def registry_tails(self, tenant_id: str, registry_id: str) -> Path:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(AnoncredsRegistry.tails_hash, AnoncredsRegistry.tails).where(
                        AnoncredsRegistry.tenant_id == tenant_id,
                        AnoncredsRegistry.id == registry_id,
                    )
                )
            ).one()
        return await asyncio.to_thread(self.tails_path, row.tails_hash, row.tails)

    async def tails(self, tenant_id: str, tails_hash: str) -> bytes:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            data = (
                await session.execute(
                    select(AnoncredsRegistry.tails).where(
                        AnoncredsRegistry.tenant_id == tenant_id,
                        AnoncredsRegistry.tails_hash == tails_hash,
                    )
                )
            ).scalar_one_or_none()
        if data is None:
            raise NotFound(f"no tails file {tails_hash}")
        return data

    async def verification_material(
        self, tenant_id: str, identifiers: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Schemas, credential definitions, registry definitions and the status lists at the
        timestamps a presentation names, all from this tenant's records."""
        schemas: dict[str, str] = {}
        cred_defs: dict[str, str] = {}
        rev_reg_defs: dict[str, str] = {}
        lists: list[str] = []
        async with self._db.transaction(tenant_id, readonly=True) as session:
            for i, ident in enumerate(identifiers):
                issuer = (
                    await session.execute(
                        select(AnoncredsIssuer).where(
                            AnoncredsIssuer.tenant_id == tenant_id,
                            AnoncredsIssuer.cred_def_id == str(ident.get("cred_def_id")),
                        )
                    )
                ).scalar_one_or_none()
                if issuer is None or issuer.schema_id != ident.get("schema_id"):
                    raise NotFound(
                        f"identifiers.{i}: the credential definition is not one of this tenant's"
                    )
                schemas[issuer.schema_id] = issuer.schema_json
                cred_defs[issuer.cred_def_id] = issuer.cred_def_json
                rev_reg_id, timestamp = ident.get("rev_reg_id"), ident.get("timestamp")
                if rev_reg_id is None:
                    continue
                found = (
                    await session.execute(
                        select(AnoncredsRegistry.rev_reg_def_json, AnoncredsStatusList.list_json)
                        .join(
                            AnoncredsStatusList,
                            AnoncredsStatusList.registry_id == AnoncredsRegistry.id,
                        )
                        .where(
                            AnoncredsRegistry.tenant_id == tenant_id,
                            AnoncredsRegistry.rev_reg_def_id == str(rev_reg_id),
                            AnoncredsStatusList.timestamp == timestamp,
                        )
                    )
                ).one_or_none()
                if found is None:
                    raise NotFound(
                        f"identifiers.{i}: no revocation state of {rev_reg_id} at {timestamp}"
                    )
                rev_reg_defs[str(rev_reg_id)] = found.rev_reg_def_json
                lists.append(found.list_json)
        return {
            "schemas": schemas,
            "cred_defs": cred_defs,
            "rev_reg_defs": rev_reg_defs,
            "status_lists": lists,
        }

    async def registries(self, tenant_id: str, provider_id: str) -> list[RegistryView]:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            rows = (
                (
                    await session.execute(
                        select(AnoncredsRegistry)
                        .join(
                            AnoncredsIssuer, AnoncredsIssuer.id == AnoncredsRegistry.issuer_row_id
                        )
                        .where(
                            AnoncredsRegistry.tenant_id == tenant_id,
                            AnoncredsIssuer.provider_id == provider_id,
                        )
                        .order_by(AnoncredsRegistry.seq)
                    )
                )
                .scalars()
                .all()
            )
            return [
                RegistryView(
                    id=r.id,
                    rev_reg_def_id=r.rev_reg_def_id,
                    seq=r.seq,
                    status=r.status,
                    capacity=r.capacity,
                    issued=r.next_index - 1,
                    tails_hash=r.tails_hash,
                    definition=json.loads(r.rev_reg_def_json),
                )
                for r in rows
            ]

    async def deltas(
        self, tenant_id: str, registry_id: str, *, since: int = 0
    ) -> list[StatusListDelta]:
        """Published status lists after ``since``: each one's revocations and accumulator."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            rows = (
                (
                    await session.execute(
                        select(AnoncredsStatusList)
                        .where(
                            AnoncredsStatusList.tenant_id == tenant_id,
                            AnoncredsStatusList.registry_id == registry_id,
                            AnoncredsStatusList.timestamp > since,
                        )
                        .order_by(AnoncredsStatusList.timestamp)
                    )
                )
                .scalars()
                .all()
            )
        if not rows and since == 0:
            raise NotFound(f"revocation registry {registry_id} does not exist")
        return [
            StatusListDelta(
                timestamp=r.timestamp,
                revoked=r.revoked,
                accumulator=json.loads(r.list_json).get("currentAccumulator"),
                status_list=json.loads(r.list_json),
            )
            for r in rows
        ]
