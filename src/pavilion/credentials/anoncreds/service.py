"""AnonCreds issuance for DPs (I/O edge): credential definitions, registries, status lists.

* One credential definition per (tenant, DP), created once (safe primes take seconds) and
  reused; its private part is sealed under the tenant's data key.
* Revocation registries are the accumulator. Slots are handed out in order under a row lock
  on the active registry; when it is full, the same transaction marks it ``full`` and opens
  the next registry (``seq`` + 1), so bulk issuance never stops at "registry is full".
  anoncreds-rs reserves index 0, so a registry of capacity ``n`` is created with ``n + 1``
  entries and uses slots ``1..n``.
* Every change of a registry's state is published as a new status list with a strictly
  increasing timestamp, stored append-only with its delta (the indices it revoked); holders
  and verifiers fetch the list at the timestamp a presentation names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypedDict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.engine import IssuerMaterial, RegistryMaterial
from pavilion.credentials.anoncreds.models import (
    AnoncredsCredential,
    AnoncredsIssuer,
    AnoncredsOffer,
    AnoncredsRegistry,
    AnoncredsStatusList,
)
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.store.base import new_id
from pavilion.store.database import Database
from pavilion.tenancy.service import TenantKeys

DEFAULT_CAPACITY: Final = 1000
OFFER_TTL: Final = timedelta(minutes=10)

MaterialFactory = Callable[[str], IssuerMaterial]


@dataclass(frozen=True)
class AnoncredsConfig:
    tails_dir: Path
    issuer_base: str
    registry_capacity: int = DEFAULT_CAPACITY


@dataclass(frozen=True)
class Issuer:
    row_id: str
    provider_id: str
    material: IssuerMaterial = field(repr=False)


@dataclass(frozen=True)
class Slot:
    """A registry slot reserved for one credential, with what issuing into it needs."""

    credential_id: str
    registry_id: str
    rev_reg_def_id: str
    rev_reg_def_json: str
    private_json: str = field(repr=False)
    index: int = 0
    status_list_json: str = ""
    tails_hash: str = ""


@dataclass(frozen=True)
class Published:
    registry_id: str
    rev_reg_def_id: str
    timestamp: int
    list_json: str
    revoked: list[int]


class RegistryView(TypedDict):
    """A revocation registry as published: its definition, capacity and how much is used."""

    id: str
    rev_reg_def_id: str
    seq: int
    status: str
    capacity: int
    issued: int
    tails_hash: str
    definition: dict[str, Any]


class StatusListDelta(TypedDict):
    """One published revocation status list: what it revoked and its accumulator."""

    timestamp: int
    revoked: list[int]
    accumulator: str | None
    status_list: dict[str, Any]


class CredentialOffer(TypedDict):
    """An AnonCreds credential offer, valid until ``expires_at``."""

    offer_id: str
    offer: dict[str, Any]
    cred_def_id: str
    credential_definition: dict[str, Any]
    expires_at: str


def _aad(tenant_id: str, row_id: str, what: str) -> bytes:
    return f"pavilion/anoncreds/v1|{tenant_id}|{row_id}|{what}".encode()


class AnoncredsService:
    def __init__(
        self,
        db: Database,
        tenant_keys: TenantKeys,
        config: AnoncredsConfig,
        *,
        clock: Callable[[], datetime],
        material_factory: MaterialFactory = engine.create_issuer,
    ) -> None:
        self._db = db
        self._keys = tenant_keys
        self.config = config
        self._clock = clock
        self._factory = material_factory
        self._issuers: dict[tuple[str, str], Issuer] = {}

    # ------------------------------------------------------------------ issuers

    async def ensure_issuer(self, tenant_id: str, provider_id: str) -> Issuer:
        """The DP's credential definition, created on first use and reused ever after."""
        cached = self._issuers.get((tenant_id, provider_id))
        if cached is not None:
            return cached
        async with self._db.transaction(tenant_id, readonly=True) as session:
            issuer = await self._load_issuer(session, tenant_id, provider_id)
        if issuer is None:
            issuer_uri = (
                f"{self.config.issuer_base.rstrip('/')}/anoncreds/{tenant_id}/{provider_id}"
            )
            material = await asyncio.to_thread(self._factory, issuer_uri)
            row_id = new_id()
            first = await self._make_registry(material, row_id, 1)
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
                                _aad(tenant_id, row_id, "cred-def"),
                            ),
                            created_at=self._clock(),
                        )
                    )
                    await session.flush()
                    await self._store_registry(session, tenant_id, row_id, 1, first)
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
            session, tenant_id, row.sealed_private, _aad(tenant_id, row.id, "cred-def")
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

    # ------------------------------------------------------------------ registries

    async def _make_registry(
        self, material: IssuerMaterial, issuer_row_id: str, seq: int
    ) -> RegistryMaterial:
        rev_reg_def_id = f"{material.issuer_id}/revocation-registries/{issuer_row_id}/{seq}"
        return await asyncio.to_thread(
            engine.create_registry,
            material,
            rev_reg_def_id,
            tag=f"r{seq}",
            max_cred_num=self.config.registry_capacity + 1,
            timestamp=int(self._clock().timestamp()),
            tails_dir=self.config.tails_dir,
        )

    async def _store_registry(
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
                _aad(tenant_id, registry_id, "registry"),
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

    async def _registry_private(
        self, session: AsyncSession, tenant_id: str, registry: AnoncredsRegistry
    ) -> str:
        opened = await self._keys.open(
            session, tenant_id, registry.sealed_private, _aad(tenant_id, registry.id, "registry")
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
                made = await self._make_registry(issuer.material, issuer.row_id, seq)
                registry = await self._store_registry(session, tenant_id, issuer.row_id, seq, made)
            index = registry.next_index
            registry.next_index = index + 1
            latest = await self._latest_list(session, tenant_id, registry.id)
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
                private_json=await self._registry_private(session, tenant_id, registry),
                index=index,
                status_list_json=latest.list_json,
                tails_hash=registry.tails_hash,
            )

    async def _latest_list(
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

    async def _publish(
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
        latest = await self._latest_list(session, tenant_id, registry.id)
        timestamp = max(int(self._clock().timestamp()), latest.timestamp + 1, not_before)
        list_json = await asyncio.to_thread(
            engine.update_status_list,
            issuer.material,
            registry.rev_reg_def_json,
            await self._registry_private(session, tenant_id, registry),
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

    async def _locked_registry(
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

    async def _issuer_of(self, session: AsyncSession, tenant_id: str, issuer_row_id: str) -> Issuer:
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

    # ------------------------------------------------------------------ revocation

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
                registry = await self._locked_registry(session, tenant_id, registry_id)
                issuer = await self._issuer_of(session, tenant_id, registry.issuer_row_id)
                revoked = sorted(r.rev_index for r in by_registry[registry_id])
                published.append(await self._publish(session, tenant_id, issuer, registry, revoked))
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
            registry = await self._locked_registry(session, tenant_id, registry_id)
            issuer = await self._issuer_of(session, tenant_id, registry.issuer_row_id)
            published = await self._publish(
                session, tenant_id, issuer, registry, [], not_before=start or 0
            )
            if published.timestamp > end:
                raise InvalidRequest(
                    "the non_revoked interval ends before a new revocation state can be published",
                    field="proof_request.non_revoked",
                )
            return published.timestamp, published.list_json

    # ------------------------------------------------------------------ holders and verifiers

    def tails_path(self, tails_hash: str, tails: bytes) -> Path:
        """The tails file on local disk, written from the database when this node lacks it."""
        path = self.config.tails_dir / tails_hash
        if not path.exists():
            self.config.tails_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{new_id()}.tmp")
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

    # ------------------------------------------------------------------ offers (wallet holders)

    async def offer(self, tenant_id: str, provider_id: str) -> CredentialOffer:
        issuer = await self.ensure_issuer(tenant_id, provider_id)
        offer_json = await asyncio.to_thread(engine.create_offer, issuer.material)
        offer_id = new_id()
        expires = self._clock() + OFFER_TTL
        async with self._db.transaction(tenant_id) as session:
            session.add(
                AnoncredsOffer(
                    id=offer_id,
                    tenant_id=tenant_id,
                    issuer_row_id=issuer.row_id,
                    offer_json=offer_json,
                    expires_at=expires,
                )
            )
        return CredentialOffer(
            offer_id=offer_id,
            offer=json.loads(offer_json),
            cred_def_id=issuer.material.cred_def_id,
            credential_definition=json.loads(issuer.material.cred_def_json),
            expires_at=expires.isoformat(),
        )

    async def take_offer(self, tenant_id: str, offer_id: str) -> tuple[Issuer, str]:
        """The offer's issuer and JSON; an offer answers exactly one credential request."""
        async with self._db.transaction(tenant_id) as session:
            offer = (
                await session.execute(
                    select(AnoncredsOffer)
                    .where(AnoncredsOffer.tenant_id == tenant_id, AnoncredsOffer.id == offer_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if offer is None:
                raise NotFound(f"credential offer {offer_id} does not exist")
            expires = offer.expires_at
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=self._clock().tzinfo)
            if offer.used_at is not None or expires < self._clock():
                raise Conflict(f"credential offer {offer_id} was used or has expired")
            offer.used_at = self._clock()
            issuer_row_id, offer_json = offer.issuer_row_id, offer.offer_json
            issuer = await self._issuer_of(session, tenant_id, issuer_row_id)
        return issuer, offer_json
