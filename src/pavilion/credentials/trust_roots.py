"""Trust roots and accreditation: a tenant's issuer root and the DPs it certifies.

A tenant's issuer root is an X.509 CA whose key the issuer key store holds (wrapped by the
keystore, or inside the HSM). :meth:`TrustRoots.certify_provider` gives a data provider an
issuing key, a leaf certificate from the root and an accreditation credential (a vc+jwt signed
by the root) listing the claim types the DP may attest. Credentials a certified, accredited DP
backs are signed with its key and carry ``x5c``; verification walks credential ->
accreditation -> root. Every query filters ``tenant_id`` explicitly, inside
``Database.transaction(tenant_id)``; every change appends an audit leaf in its transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog
from pavilion.credentials import vc2
from pavilion.credentials.issuance import IssuingKey
from pavilion.credentials.issuer_models import Accreditation, IssuerKey
from pavilion.credentials.keys import IssuerKeyStore, new_label
from pavilion.credentials.templates import TEMPLATES
from pavilion.credentials.timeutil import iso
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.keystore.signer import Algorithm
from pavilion.observability.logging import get_logger
from pavilion.providers.models import Provider
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database

log = get_logger(__name__)

ACCREDITATION = TEMPLATES["dp_accreditation@1"]


class RootView(TypedDict):
    """The issuer root as reported: its certificate (PEM) and validity, in UTC."""

    id: str
    key_id: str
    backend: str
    certificate: str
    not_before: str
    not_after: str


class ProviderTrustView(TypedDict):
    """A DP's certified issuing key as reported, with its accreditation credential."""

    provider_id: str
    key_id: str
    backend: str
    certificate: str
    not_after: str
    claim_types: list[str]
    accreditation: str
    accreditation_valid_until: str


@dataclass(frozen=True)
class RootInfo:
    id: str
    key_id: str
    backend: str
    certificate_pem: str
    not_before: datetime
    not_after: datetime

    def to_json(self) -> RootView:
        return RootView(
            id=self.id,
            key_id=self.key_id,
            backend=self.backend,
            certificate=self.certificate_pem,
            not_before=iso(self.not_before),
            not_after=iso(self.not_after),
        )


@dataclass(frozen=True)
class ProviderTrust:
    provider_id: str
    key_id: str
    backend: str
    certificate_pem: str
    not_after: datetime
    claim_types: tuple[str, ...]
    accreditation: str
    accreditation_valid_until: datetime

    def to_json(self) -> ProviderTrustView:
        return ProviderTrustView(
            provider_id=self.provider_id,
            key_id=self.key_id,
            backend=self.backend,
            certificate=self.certificate_pem,
            not_after=iso(self.not_after),
            claim_types=list(self.claim_types),
            accreditation=self.accreditation,
            accreditation_valid_until=iso(self.accreditation_valid_until),
        )


@dataclass(frozen=True)
class ProviderKey:
    """A certified DP's issuing key, the claim types it is accredited for, and until when."""

    key: IssuingKey
    claim_types: frozenset[str]
    not_after: datetime


class TrustRoots:
    """Issuer roots, DP certification and the trust material verification reads."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        issuer_keys: IssuerKeyStore,
        cache: ConfigCache,
        *,
        issuer_id: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._audit = audit
        self._issuer_keys = issuer_keys
        self._cache = cache
        self._issuer_id = issuer_id
        self._clock = clock

    async def create_root(
        self, tenant_id: str, *, common_name: str | None = None, valid_days: int = 3650
    ) -> RootInfo:
        """The tenant's issuer root (one active root per tenant)."""
        if not 1 <= valid_days <= 36_500:
            raise InvalidRequest("valid_days must be between 1 and 36500", field="valid_days")
        async with self._db.transaction(tenant_id, readonly=True) as session:
            if await self._active_root(session, tenant_id) is not None:
                raise Conflict("this tenant already has an issuer root")
        now = self._clock()
        reference, signer = await self._issuer_keys.create(tenant_id, new_label("root"), "ES256")
        not_before, not_after = trust_x509.default_validity(now, valid_days)
        certificate = await trust_x509.build_root(
            signer,
            tenant_id=tenant_id,
            common_name=common_name or f"Pavilion issuer root {tenant_id[:8]}",
            not_before=not_before,
            not_after=not_after,
        )
        row = IssuerKey(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            role="root",
            provider_id=None,
            algorithm="ES256",
            key_id=signer.key_id,
            backend=self._issuer_keys.backend,
            key_ref=reference,
            certificate=trust_x509.to_pem(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            created_at=now,
        )
        try:
            async with self._db.transaction(tenant_id) as session:
                if await self._active_root(session, tenant_id) is not None:
                    raise Conflict("this tenant already has an issuer root")
                session.add(row)
                await self._audit.append(
                    session,
                    tenant_id,
                    {
                        "kind": "issuer_root_created",
                        "root_id": row.id,
                        "key_id": row.key_id,
                        "backend": row.backend,
                        "certificate_sha256": _cert_digest(certificate),
                        "not_after": iso(row.not_after),
                        "at": iso(now),
                    },
                )
        except IntegrityError as exc:  # a concurrent request won the race
            raise Conflict("this tenant already has an issuer root") from exc
        self._cache.invalidate(tenant_id)
        log.info("issuer root created", tenant_id=tenant_id, key_id=row.key_id)
        return _root_info(row)

    async def root(self, tenant_id: str) -> RootInfo:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = await self._active_root(session, tenant_id)
        if row is None:
            raise NotFound("this tenant has no issuer root yet (POST /v1/credentials/trust/root)")
        return _root_info(row)

    async def _active_root(self, session: AsyncSession, tenant_id: str) -> IssuerKey | None:
        rows = await session.execute(
            select(IssuerKey)
            .where(
                IssuerKey.tenant_id == tenant_id,
                IssuerKey.role == "root",
                IssuerKey.retired_at.is_(None),
            )
            .order_by(IssuerKey.created_at.desc())
        )
        return rows.scalars().first()

    async def certify_provider(
        self,
        tenant_id: str,
        provider_id: str,
        *,
        claim_types: Sequence[str] | None = None,
        valid_days: int = 365,
        algorithm: Algorithm = "ES256",
    ) -> ProviderTrust:
        """A DP issuing key, its certificate from the root and its accreditation credential.

        Certifying again replaces the DP's previous key and accreditation (they are retired).
        """
        if not 1 <= valid_days <= 3650:
            raise InvalidRequest("valid_days must be between 1 and 3650", field="valid_days")
        async with self._db.transaction(tenant_id, readonly=True) as session:
            root_row = await self._active_root(session, tenant_id)
            provider = (
                await session.execute(
                    select(Provider).where(
                        Provider.tenant_id == tenant_id, Provider.id == provider_id
                    )
                )
            ).scalar_one_or_none()
        if provider is None:
            raise NotFound(f"provider {provider_id} does not exist")
        if root_row is None:
            raise Conflict(
                "create the tenant's issuer root first (POST /v1/credentials/trust/root)"
            )
        registered = list(provider.claim_types)
        wanted = list(dict.fromkeys(claim_types)) if claim_types is not None else registered
        outside = [c for c in wanted if c not in registered]
        if not wanted or outside:
            raise InvalidRequest(
                f"claim_types must be a non-empty subset of the provider's claim types "
                f"({', '.join(registered)}); not {', '.join(outside) or 'empty'}",
                field="claim_types",
            )
        now = self._clock()
        root = trust_x509.from_pem(root_row.certificate)
        if root.not_valid_after_utc <= now:
            raise Conflict("the tenant's issuer root has expired; create a new one")
        root_signer = await self._issuer_keys.load(tenant_id, root_row.key_ref)
        reference, dp_signer = await self._issuer_keys.create(
            tenant_id, new_label(f"dp-{provider_id[:8]}"), algorithm
        )
        not_before, not_after = trust_x509.default_validity(now, valid_days)
        leaf = await trust_x509.build_leaf(
            root_signer,
            root,
            dp_signer,
            provider_id=provider_id,
            common_name=f"{provider.name} ({provider_id[:8]})",
            not_before=not_before,
            not_after=not_after,
        )
        valid_until = min(leaf.not_valid_after_utc, now + ACCREDITATION.max_age)
        document = vc2.build_document(
            credential_id=f"urn:uuid:{uuid.uuid4()}",
            issuer=self._issuer_id,
            template=ACCREDITATION,
            subject={
                "id": f"{trust_x509.PROVIDER_URN}{provider_id}",
                "accreditedClaimTypes": wanted,
                "issuingKey": dp_signer.key_id,
            },
            valid_from=now,
            valid_until=valid_until,
        )
        token = await vc2.sign(document, root_signer, issued_at=now, x5c=[trust_x509.to_x5c(root)])
        key_row = IssuerKey(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            role="provider",
            provider_id=provider_id,
            algorithm=algorithm,
            key_id=dp_signer.key_id,
            backend=self._issuer_keys.backend,
            key_ref=reference,
            certificate=trust_x509.to_pem(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            created_at=now,
        )
        accreditation = Accreditation(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            provider_id=provider_id,
            issuer_key_row=key_row.id,
            key_id=dp_signer.key_id,
            claim_types=wanted,
            token=token,
            valid_from=now.replace(microsecond=0),
            valid_until=valid_until.replace(microsecond=0),
            created_at=now,
        )
        try:
            async with self._db.transaction(tenant_id) as session:
                for model, provider_column in (
                    (IssuerKey, IssuerKey.provider_id),
                    (Accreditation, Accreditation.provider_id),
                ):
                    await session.execute(
                        update(model)
                        .where(
                            model.tenant_id == tenant_id,
                            provider_column == provider_id,
                            model.retired_at.is_(None),
                        )
                        .values(retired_at=now)
                    )
                session.add_all([key_row, accreditation])
                await self._audit.append(
                    session,
                    tenant_id,
                    {
                        "kind": "provider_certified",
                        "provider_id": provider_id,
                        "key_id": key_row.key_id,
                        "root_key_id": root_row.key_id,
                        "certificate_sha256": _cert_digest(leaf),
                        "accreditation_sha256": hashlib.sha256(token.encode()).hexdigest(),
                        "claim_types": wanted,
                        "at": iso(now),
                    },
                )
        except IntegrityError as exc:  # a concurrent request won the race
            raise Conflict(
                f"provider {provider_id} was certified by another request; retry"
            ) from exc
        self._cache.invalidate(tenant_id)
        log.info(
            "provider certified",
            tenant_id=tenant_id,
            provider_id=provider_id,
            key_id=key_row.key_id,
        )
        return _provider_trust(key_row, accreditation)

    async def provider_trust(self, tenant_id: str, provider_id: str) -> ProviderTrust:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            found = await self._provider_rows(session, tenant_id, provider_id)
        if found is None:
            raise NotFound(f"provider {provider_id} has no certified issuing key")
        return _provider_trust(*found)

    async def _provider_rows(
        self, session: AsyncSession, tenant_id: str, provider_id: str
    ) -> tuple[IssuerKey, Accreditation] | None:
        row = (
            await session.execute(
                select(IssuerKey, Accreditation)
                .join(Accreditation, Accreditation.issuer_key_row == IssuerKey.id)
                .where(
                    IssuerKey.tenant_id == tenant_id,
                    Accreditation.tenant_id == tenant_id,
                    IssuerKey.role == "provider",
                    IssuerKey.provider_id == provider_id,
                    IssuerKey.retired_at.is_(None),
                    Accreditation.retired_at.is_(None),
                )
                .order_by(IssuerKey.created_at.desc())
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def provider_key(self, tenant_id: str, provider_id: str) -> ProviderKey | None:
        """The DP's certified key with its accreditation, if it has one (cached)."""

        async def load() -> ProviderKey | None:
            async with self._db.transaction(tenant_id, readonly=True) as session:
                found = await self._provider_rows(session, tenant_id, provider_id)
            if found is None:
                return None
            key_row, accreditation = found
            signer = await self._issuer_keys.load(tenant_id, key_row.key_ref)
            leaf = trust_x509.from_pem(key_row.certificate)
            return ProviderKey(
                IssuingKey(signer, (trust_x509.to_x5c(leaf),), provider_id),
                frozenset(accreditation.claim_types),
                min(leaf.not_valid_after_utc, _aware(accreditation.valid_until)),
            )

        return await self._cache.get(tenant_id, ("provider", provider_id), load)

    async def anchors(self, tenant_id: str) -> list[x509.Certificate]:
        """The tenant's trust anchors: its issuer roots that are not retired."""

        async def load() -> tuple[x509.Certificate, ...]:
            async with self._db.transaction(tenant_id, readonly=True) as session:
                pems = (
                    await session.execute(
                        select(IssuerKey.certificate).where(
                            IssuerKey.tenant_id == tenant_id,
                            IssuerKey.role == "root",
                            IssuerKey.retired_at.is_(None),
                        )
                    )
                ).scalars()
                return tuple(trust_x509.from_pem(pem) for pem in pems)

        return list(await self._cache.get(tenant_id, "anchors", load))

    async def accreditation_for_key(self, tenant_id: str, key_id: str) -> str | None:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            rows = await session.execute(
                select(Accreditation.token)
                .where(
                    Accreditation.tenant_id == tenant_id,
                    Accreditation.key_id == key_id,
                    Accreditation.retired_at.is_(None),
                )
                .order_by(Accreditation.created_at.desc())
            )
            token: str | None = rows.scalars().first()
        return token


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns: make them aware again."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cert_digest(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _root_info(row: IssuerKey) -> RootInfo:
    return RootInfo(
        id=row.id,
        key_id=row.key_id,
        backend=row.backend,
        certificate_pem=row.certificate,
        not_before=_aware(row.not_before),
        not_after=_aware(row.not_after),
    )


def _provider_trust(key_row: IssuerKey, accreditation: Accreditation) -> ProviderTrust:
    assert key_row.provider_id is not None
    return ProviderTrust(
        provider_id=key_row.provider_id,
        key_id=key_row.key_id,
        backend=key_row.backend,
        certificate_pem=key_row.certificate,
        not_after=_aware(key_row.not_after),
        claim_types=tuple(accreditation.claim_types),
        accreditation=accreditation.token,
        accreditation_valid_until=_aware(accreditation.valid_until),
    )
