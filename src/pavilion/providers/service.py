"""Registering and reading providers (I/O edge of the registry)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.providers.models import Provider, ProviderEndpoint
from pavilion.providers.registration import (
    describe_tls,
    encode_secrets,
    opened_settings,
    secrets_aad,
    split_settings,
)
from pavilion.providers.schemas import ApiKeyAuthIn, EndpointOut, ProviderIn, ProviderOut
from pavilion.providers.types import Endpoint, ProviderConnection
from pavilion.store.base import new_id
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database
from pavilion.tenancy.service import TenantKeys


def _secret_aad(tenant_id: str, provider_id: str) -> bytes:
    return f"pavilion/provider-secret/v1|{tenant_id}|{provider_id}".encode()


class ProviderService:
    def __init__(
        self,
        db: Database,
        keys: TenantKeys,
        config: ConfigCache | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._audit = audit  # registrations and deletions are leaves of the tenant's audit log
        # Opened connections, served from memory on the hot path; dropped on every change.
        self._config = config if config is not None else ConfigCache(ttl=0)

    async def register(self, tenant_id: str, spec: ProviderIn) -> ProviderOut:
        provider_id = new_id()
        try:
            async with self._db.transaction(tenant_id) as session:
                sealed = None
                if isinstance(spec.auth, ApiKeyAuthIn):
                    sealed = await self._keys.seal(
                        session,
                        tenant_id,
                        spec.auth.api_key.encode("utf-8"),
                        _secret_aad(tenant_id, provider_id),
                    )
                auth, tls, secrets = split_settings(spec.auth, spec.tls)
                sealed_secrets = None
                if secrets:
                    sealed_secrets = await self._keys.seal(
                        session,
                        tenant_id,
                        encode_secrets(secrets),
                        secrets_aad(tenant_id, provider_id),
                    )
                provider = Provider(
                    id=provider_id,
                    tenant_id=tenant_id,
                    name=spec.name,
                    claim_types=[c.value for c in spec.claim_types],
                    auth=auth,
                    sealed_secret=sealed,
                    sealed_secrets=sealed_secrets,
                    tls=tls,
                    record_schema=spec.record_schema,
                )
                session.add(provider)
                await session.flush()
                endpoints = [
                    ProviderEndpoint(
                        tenant_id=tenant_id,
                        provider_id=provider_id,
                        region=e.region,
                        jurisdiction=e.jurisdiction,
                        url=str(e.url).rstrip("/"),
                        weight=e.weight,
                        tags=list(e.tags) or None,
                    )
                    for e in spec.endpoints
                ]
                session.add_all(endpoints)
                if self._audit is not None:
                    await self._audit.append(
                        session,
                        tenant_id,
                        {
                            "kind": "provider_registered",
                            "provider_id": provider_id,
                            "claim_types": sorted(spec.claim_types),
                            "auth": spec.auth.type,
                            "endpoints": sorted(
                                f"{e.region}/{e.jurisdiction}" for e in spec.endpoints
                            ),
                            "at": _now(),
                        },
                    )
        except IntegrityError as exc:
            raise Conflict(f"a provider named {spec.name!r} already exists") from exc
        finally:
            self._config.invalidate(tenant_id)  # a new provider may answer a claim type first
        return _out(provider, endpoints)

    async def get(self, tenant_id: str, provider_id: str) -> ProviderOut:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            provider, endpoints = await _load(session, tenant_id, provider_id)
        return _out(provider, endpoints)

    async def list(self, tenant_id: str, *, limit: int, after: str | None) -> list[ProviderOut]:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            query = (
                select(Provider)
                .where(Provider.tenant_id == tenant_id)
                .order_by(Provider.id)
                .limit(limit)
            )
            if after:
                query = query.where(Provider.id > after)
            providers = list((await session.execute(query)).scalars())
            ids = [p.id for p in providers]
            rows = (
                await session.execute(
                    select(ProviderEndpoint).where(
                        ProviderEndpoint.tenant_id == tenant_id,
                        ProviderEndpoint.provider_id.in_(ids),
                    )
                )
            ).scalars()
            by_provider: dict[str, list[ProviderEndpoint]] = {}
            for row in rows:
                by_provider.setdefault(row.provider_id, []).append(row)
        return [_out(p, by_provider.get(p.id, [])) for p in providers]

    async def delete(self, tenant_id: str, provider_id: str) -> None:
        self._config.invalidate(tenant_id)
        async with self._db.transaction(tenant_id) as session:
            await _load(session, tenant_id, provider_id)
            await session.execute(
                delete(ProviderEndpoint).where(
                    ProviderEndpoint.tenant_id == tenant_id,
                    ProviderEndpoint.provider_id == provider_id,
                )
            )
            await session.execute(
                delete(Provider).where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
            )
            if self._audit is not None:
                await self._audit.append(
                    session,
                    tenant_id,
                    {"kind": "provider_deleted", "provider_id": provider_id, "at": _now()},
                )
        self._config.invalidate(tenant_id)  # and again: a load may have begun meanwhile

    async def cached_connection(
        self, tenant_id: str, provider_id: str | None, claim_type: str
    ) -> ProviderConnection:
        """``connection`` from memory (``ConfigCache``); a miss opens its own read transaction."""

        async def load() -> ProviderConnection:
            async with self._db.transaction(tenant_id, readonly=True) as session:
                return await self.connection(session, tenant_id, provider_id, claim_type)

        return await self._config.get(tenant_id, ("connection", provider_id, claim_type), load)

    async def connection(
        self, session: AsyncSession, tenant_id: str, provider_id: str | None, claim_type: str
    ) -> ProviderConnection:
        """The provider to ask, chosen by id or, without one, by the claim type it answers."""
        if provider_id is None:
            candidates = (
                (
                    await session.execute(
                        select(Provider)
                        .where(Provider.tenant_id == tenant_id)
                        .order_by(Provider.created_at)
                    )
                )
                .scalars()
                .all()
            )
            matching = [p for p in candidates if claim_type in p.claim_types]
            if not matching:
                raise NotFound(f"no registered provider answers {claim_type} claims")
            provider_id = matching[0].id
        provider, endpoints = await _load(session, tenant_id, provider_id)
        if claim_type not in provider.claim_types:
            raise InvalidRequest(
                f"provider {provider.name!r} does not answer {claim_type} claims "
                f"(it answers: {', '.join(provider.claim_types)})",
                field="claim.type",
            )
        return await self._opened(session, tenant_id, provider, endpoints)

    async def all_connections(
        self, session: AsyncSession, tenant_id: str
    ) -> Sequence[ProviderConnection]:
        """Every provider of a tenant, opened (connection warm-up and health views)."""
        providers = (
            await session.execute(select(Provider).where(Provider.tenant_id == tenant_id))
        ).scalars()
        return [
            await self._opened(session, tenant_id, *(await _load(session, tenant_id, p.id)))
            for p in list(providers)
        ]

    async def _opened(
        self,
        session: AsyncSession,
        tenant_id: str,
        provider: Provider,
        endpoints: Sequence[ProviderEndpoint],
    ) -> ProviderConnection:
        api_key = None
        if provider.sealed_secret is not None:
            api_key = (
                await self._keys.open(
                    session, tenant_id, provider.sealed_secret, _secret_aad(tenant_id, provider.id)
                )
            ).decode("utf-8")
        secrets = None
        if provider.sealed_secrets is not None:
            secrets = await self._keys.open(
                session, tenant_id, provider.sealed_secrets, secrets_aad(tenant_id, provider.id)
            )
        auth, tls = opened_settings(provider.auth, provider.tls, secrets)
        return ProviderConnection(
            id=provider.id,
            name=provider.name,
            claim_types=tuple(provider.claim_types),
            endpoints=tuple(
                Endpoint(e.region, e.jurisdiction, e.url, e.weight, tuple(e.tags or ()))
                for e in endpoints
            ),
            auth_type=str(provider.auth.get("type", "none")),
            api_key=api_key,
            record_schema=provider.record_schema,
            tenant_id=tenant_id,
            auth=auth,
            tls=tls,
        )


async def _load(
    session: AsyncSession, tenant_id: str, provider_id: str
) -> tuple[Provider, list[ProviderEndpoint]]:
    provider = (
        await session.execute(
            select(Provider).where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
        )
    ).scalar_one_or_none()
    if provider is None:
        raise NotFound(f"provider {provider_id} does not exist")
    endpoints = list(
        (
            await session.execute(
                select(ProviderEndpoint)
                .where(
                    ProviderEndpoint.tenant_id == tenant_id,
                    ProviderEndpoint.provider_id == provider_id,
                )
                .order_by(ProviderEndpoint.region)
            )
        ).scalars()
    )
    return provider, endpoints


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _out(provider: Provider, endpoints: list[ProviderEndpoint]) -> ProviderOut:
    return ProviderOut(
        id=provider.id,
        name=provider.name,
        claim_types=list(provider.claim_types),
        endpoints=[
            EndpointOut(
                region=e.region,
                jurisdiction=e.jurisdiction,
                url=e.url,
                weight=e.weight,
                tags=list(e.tags or []),
            )
            for e in endpoints
        ],
        auth=dict(provider.auth),
        tls=describe_tls(provider.tls),
        record_schema=provider.record_schema,
        created_at=provider.created_at.isoformat(),
    )
