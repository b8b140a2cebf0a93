"""Tenant and token operations (I/O edge of the tenancy domain)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import AuthenticationFailed, Conflict, CryptoError, InvalidRequest, NotFound
from pavilion.keystore.base import Keystore
from pavilion.store.base import new_id
from pavilion.store.database import Database
from pavilion.tenancy.models import PLATFORM_TENANT_ID, ApiToken, Tenant
from pavilion.tenancy.roles import Role
from pavilion.tenancy.sealing import TenantSealer

TOKEN_PREFIX = "pav"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and role their token carries."""

    tenant_id: str
    role: Role
    token_id: str

    @property
    def is_platform(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN


@dataclass(frozen=True)
class IssuedToken:
    id: str
    tenant_id: str
    name: str
    role: Role
    secret: str  # shown once
    expires_at: datetime | None = None


def _hash_token(secret: str) -> str:
    # The secret carries 256 random bits, so one SHA-256 is enough: no password stretching.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _expiry(token: ApiToken) -> datetime | None:
    """The token's expiry, timezone-aware (SQLite hands datetimes back naive, in UTC)."""
    at = token.expires_at
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _live(token: ApiToken, now: datetime) -> bool:
    """Not revoked and not expired."""
    expires_at = _expiry(token)
    return token.revoked_at is None and (expires_at is None or expires_at > now)


def _parse_token(token: str) -> str:
    """The tenant id encoded in a token; the DB lookup under that tenant does the real check."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 32:
        raise AuthenticationFailed("malformed API token")
    raw = parts[1]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


class TenantKeys:
    """Per-tenant data keys: unwrapped from the keystore on first use and kept in memory."""

    def __init__(self, keystore: Keystore) -> None:
        self._keystore = keystore
        self._cache: dict[str, bytes] = {}
        self._subject_keys: dict[str, bytes] = {}
        self._sealers: dict[str, TenantSealer] = {}

    def new_wrapped_key(self, tenant_id: str) -> tuple[str, bytes]:
        return self._keystore.wrap_key(AESGCM.generate_key(bit_length=256), _ctx(tenant_id))

    async def data_key(self, session: AsyncSession, tenant_id: str) -> bytes:
        if tenant_id not in self._cache:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound(f"tenant {tenant_id} does not exist")
            self._cache[tenant_id] = self._keystore.unwrap_key(
                tenant.kek_id, tenant.wrapped_data_key, _ctx(tenant_id)
            )
        return self._cache[tenant_id]

    async def seal(self, session: AsyncSession, tenant_id: str, plain: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        key = await self.data_key(session, tenant_id)
        return nonce + AESGCM(key).encrypt(nonce, plain, aad)

    async def open(self, session: AsyncSession, tenant_id: str, sealed: bytes, aad: bytes) -> bytes:
        key = await self.data_key(session, tenant_id)
        try:
            return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
        except Exception as exc:
            raise CryptoError("a sealed secret does not open: tampered or moved") from exc

    async def sealer(self, session: AsyncSession, tenant_id: str) -> TenantSealer:
        """The tenant's data key ready to seal records at rest (``tenancy.sealing``)."""
        await self.data_key(session, tenant_id)
        sealer = self.cached_sealer(tenant_id)
        assert sealer is not None  # the key is in memory now
        return sealer

    def cached_sealer(self, tenant_id: str) -> TenantSealer | None:
        """``sealer`` without a database read, or ``None`` if the key is not yet in memory."""
        sealer = self._sealers.get(tenant_id)
        if sealer is None:
            key = self._cache.get(tenant_id)
            if key is None:
                return None
            sealer = self._sealers[tenant_id] = TenantSealer(tenant_id, key)
        return sealer

    async def subject_ref(self, session: AsyncSession, tenant_id: str, canonical: bytes) -> str:
        """Keyed pseudonym of a subject: stable per tenant, useless to anyone without the key."""
        await self.data_key(session, tenant_id)
        ref = self.cached_subject_ref(tenant_id, canonical)
        assert ref is not None  # the key is in memory now
        return ref

    def cached_subject_ref(self, tenant_id: str, canonical: bytes) -> str | None:
        """``subject_ref`` without a database read, or ``None`` if the key is not yet in memory."""
        sub_key = self._subject_keys.get(tenant_id)
        if sub_key is None:
            key = self._cache.get(tenant_id)
            if key is None:
                return None
            sub_key = hmac.new(key, b"pavilion/subject-ref/v1", hashlib.sha256).digest()
            self._subject_keys[tenant_id] = sub_key
        return hmac.new(sub_key, canonical, hashlib.sha256).hexdigest()


def data_key_context(tenant_id: str) -> bytes:
    """What a tenant's wrapped data key is bound to (the key-encryption's associated data)."""
    return _ctx(tenant_id)


def _ctx(tenant_id: str) -> bytes:
    return f"pavilion/tenant-data-key/v1|{tenant_id}".encode()


class TenancyService:
    #: How long a verified token is trusted without a database round trip. A revocation made
    #: on another node takes effect within this window; one made here takes effect at once.
    AUTH_CACHE_SECONDS = 10.0

    def __init__(self, db: Database, keys: TenantKeys) -> None:
        self._db = db
        self._keys = keys
        self._auth_cache: dict[str, tuple[float, Principal]] = {}

    async def ensure_platform_tenant(self) -> None:
        """The platform tenant, created by the first process that starts. Workers start at
        once: one that loses the race to insert it finds the winner's row and goes on."""
        try:
            async with self._db.transaction(None) as session:
                if await session.get(Tenant, PLATFORM_TENANT_ID) is None:
                    kek_id, wrapped = self._keys.new_wrapped_key(PLATFORM_TENANT_ID)
                    session.add(
                        Tenant(
                            id=PLATFORM_TENANT_ID,
                            name="platform",
                            wrapped_data_key=wrapped,
                            kek_id=kek_id,
                        )
                    )
        except IntegrityError:
            async with self._db.transaction(None, readonly=True) as session:
                if await session.get(Tenant, PLATFORM_TENANT_ID) is None:
                    raise

    async def create_tenant(self, name: str) -> Tenant:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("tenant name must be 1 to 200 characters", field="name")
        tenant = Tenant(id=new_id(), name=name)
        tenant.kek_id, tenant.wrapped_data_key = self._keys.new_wrapped_key(tenant.id)
        try:
            async with self._db.transaction(None) as session:
                session.add(tenant)
        except IntegrityError as exc:
            raise Conflict(f"a tenant named {name!r} already exists") from exc
        return tenant

    async def list_tenants(self, *, limit: int, after: str | None) -> list[Tenant]:
        async with self._db.transaction(None, readonly=True) as session:
            query = select(Tenant).order_by(Tenant.id).limit(limit)
            if after:
                query = query.where(Tenant.id > after)
            return list((await session.execute(query)).scalars())

    async def get_tenant(self, tenant_id: str) -> Tenant:
        async with self._db.transaction(None, readonly=True) as session:
            tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant

    async def find_tenant_by_name(self, name: str) -> Tenant:
        async with self._db.transaction(None, readonly=True) as session:
            tenant = (
                await session.execute(select(Tenant).where(Tenant.name == name))
            ).scalar_one_or_none()
        if tenant is None:
            raise NotFound(f"tenant {name!r} does not exist")
        return tenant

    async def create_token(
        self, tenant_id: str, name: str, role: Role, *, ttl: timedelta | None = None
    ) -> IssuedToken:
        """A new token (its secret shown once); with ``ttl`` it stops working after that long,
        for just-in-time access."""
        await self.get_tenant(tenant_id)
        if (role is Role.PLATFORM_ADMIN) != (tenant_id == PLATFORM_TENANT_ID):
            raise InvalidRequest(
                "platform-admin tokens belong to the platform tenant, and only to it",
                field="role",
            )
        secret = f"{TOKEN_PREFIX}_{tenant_id.replace('-', '')}_{secrets.token_urlsafe(32)}"
        expires_at = datetime.now(UTC) + ttl if ttl is not None else None
        token = ApiToken(tenant_id=tenant_id, name=name, role=role.value, expires_at=expires_at)
        token.token_hash = _hash_token(secret)
        async with self._db.transaction(tenant_id) as session:
            session.add(token)
            await session.flush()
        return IssuedToken(token.id, tenant_id, name, role, secret, expires_at)

    async def rotate_token(
        self, tenant_id: str, token_id: str, *, grace: timedelta, ttl: timedelta | None = None
    ) -> IssuedToken:
        """A successor of a live token (same name and role, a new secret); the old one keeps
        working for ``grace`` (0: stops at once) so that its holders can switch over."""
        async with self._db.transaction(tenant_id) as session:
            old = await session.get(ApiToken, token_id)
            now = datetime.now(UTC)
            if old is None or old.tenant_id != tenant_id or not _live(old, now):
                raise NotFound(f"token {token_id} does not exist, or no longer works")
            cutoff = now + grace
            current = _expiry(old)
            old.expires_at = min(current, cutoff) if current is not None else cutoff
            name, role = old.name, Role(old.role)
            self._auth_cache.pop(old.token_hash, None)
        return await self.create_token(tenant_id, name, role, ttl=ttl)

    async def authenticate(self, secret: str) -> Principal:
        tenant_id = _parse_token(secret)
        token_hash = _hash_token(secret)
        cached = self._auth_cache.get(token_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._db.transaction(tenant_id, readonly=True) as session:
            token = (
                await session.execute(
                    select(ApiToken).where(
                        ApiToken.tenant_id == tenant_id,
                        ApiToken.token_hash == token_hash,
                        ApiToken.revoked_at.is_(None),
                    )
                )
            ).scalar_one_or_none()
        now = datetime.now(UTC)
        if token is None or not _live(token, now):
            raise AuthenticationFailed("unknown, revoked or expired API token")
        principal = Principal(token.tenant_id, Role(token.role), token.id)
        trusted_for = self.AUTH_CACHE_SECONDS
        expires_at = _expiry(token)
        if expires_at is not None:  # never cached past its expiry
            trusted_for = min(trusted_for, (expires_at - now).total_seconds())
        self._auth_cache[token_hash] = (time.monotonic() + trusted_for, principal)
        return principal

    async def revoke_token(self, tenant_id: str, token_id: str) -> None:
        async with self._db.transaction(tenant_id) as session:
            token = await session.get(ApiToken, token_id)
            if token is None or token.tenant_id != tenant_id:
                raise NotFound(f"token {token_id} does not exist")
            token.revoked_at = datetime.now(UTC)
            self._auth_cache.pop(token.token_hash, None)
