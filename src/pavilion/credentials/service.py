"""The credentials domain at its I/O edge: trust chains, template defaults, issue, verify.

* **Trust chains.** A tenant's issuer root is an X.509 CA whose key the issuer key store
  holds (wrapped by the keystore, or inside the HSM). ``certify_provider`` gives a data
  provider an issuing key, a leaf certificate from the root and an accreditation credential
  (a vc+jwt signed by the root) listing the claim types the DP may attest. Credentials a
  certified, accredited DP backs are signed with its key and carry ``x5c``; verification walks
  credential -> accreditation -> root.
* **Templates and defaults.** A tenant may set, per claim type, the template and format used
  when a request names neither.
* **Issue.** ``issue_for_decision`` (the verification flow) and ``issue_vc_api`` (the VC-API)
  sign through a :class:`Signer`; each issuance is recorded (``credential_issuances``) and,
  on the VC-API path, audited in the same transaction.
* **Verify.** ``verify`` builds the trust context (the keystore's JWKS, the tenant's roots,
  accreditations from the database) and runs :mod:`pavilion.credentials.verifier`.

Every query filters ``tenant_id`` explicitly, inside ``Database.transaction(tenant_id)``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict

from cachetools import TTLCache
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.log import AuditLog
from pavilion.credentials import issuance, vc2, verifier
from pavilion.credentials.group_commit import GroupCommit
from pavilion.credentials.issuance import Issued, IssuingKey, StatusEmbed
from pavilion.credentials.issuer_models import (
    Accreditation,
    CredentialDefault,
    Issuance,
    IssuerKey,
)
from pavilion.credentials.keys import IssuerKeyStore, new_label
from pavilion.credentials.report import CheckFailed, CheckName, IntegrityReport, failed
from pavilion.credentials.templates import (
    DEFAULT_FORMAT,
    TEMPLATES,
    CredentialFormat,
    CredentialTemplate,
    by_credential_type,
    resolve,
)
from pavilion.credentials.timeutil import iso, parse_date_time_stamp
from pavilion.credentials.trust import x509 as trust_x509
from pavilion.errors import Conflict, InvalidRequest, NotFound
from pavilion.keystore.signer import Algorithm, Signer
from pavilion.observability.logging import get_logger
from pavilion.providers.models import Provider
from pavilion.store.database import Database

log = get_logger(__name__)

#: How long trust material and defaults read from the database are reused (like tokens).
CACHE_SECONDS = 10.0
CACHE_MAX_ENTRIES = 10_000
ACCREDITATION = TEMPLATES["dp_accreditation@1"]


class CredentialKeystore(Protocol):
    """What the credentials domain needs of the keystore (either backend)."""

    def signer(self, purpose: Literal["credential-signing"]) -> Signer: ...

    def public_jwks(self, purpose: Literal["credential-signing"]) -> list[dict[str, str]]: ...


class StatusLists(Protocol):
    """What the credentials domain needs of the status-list service."""

    async def reserve(self, tenant_id: str, kind: str = "token") -> StatusEmbed: ...

    async def bind(
        self, session: AsyncSession, tenant_id: str, reservation: Any, credential_id: str
    ) -> None: ...

    async def resolve_status(self, list_uri: str, index: int) -> int: ...


def status_kind(fmt: CredentialFormat) -> str:
    """Which status list a format uses: W3C Bitstring for VC 2.0, IETF Token otherwise."""
    return "bitstring" if fmt is CredentialFormat.VC2_JOSE else "token"


@dataclass(frozen=True)
class DefaultChoice:
    """The template and format a tenant's verifications of one claim type use by default."""

    claim_type: str
    template: str
    format: CredentialFormat


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
class _ProviderKey:
    key: IssuingKey
    claim_types: frozenset[str]
    not_after: datetime


class _TtlCache:
    """Configuration reads (issuer keys, trust anchors, defaults) for ``CACHE_SECONDS``.

    At most ``CACHE_MAX_ENTRIES`` entries: the least recently used one makes room.
    """

    def __init__(
        self, ttl: float = CACHE_SECONDS, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: TTLCache[Any, Any] = TTLCache(CACHE_MAX_ENTRIES, ttl, timer=timer)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> Any:
        return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value

    def drop(self, predicate: Callable[[Any], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            self._items.pop(key, None)


def _now() -> datetime:
    return datetime.now(UTC)


def parse_as_of(as_of: str | None) -> datetime | None:
    """The DP's ``as_of`` (ISO 8601); naive times are UTC; garbage counts as absent."""
    if not as_of:
        return None
    try:
        moment = datetime.fromisoformat(as_of)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CredentialService:
    def __init__(
        self,
        db: Database,
        keystore: CredentialKeystore,
        audit: AuditLog,
        issuer_keys: IssuerKeyStore,
        *,
        issuer_id: str,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._audit = audit
        self._issuer_keys = issuer_keys
        self._issuer_id = issuer_id
        self._clock = clock
        self._cache = _TtlCache()
        self._writer = GroupCommit(db)

    @property
    def issuer_id(self) -> str:
        return self._issuer_id

    # -- trust chains ---------------------------------------------------------------------

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
        self._cache.drop(lambda key: key[1] == tenant_id)
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
        self._cache.drop(lambda key: key[1] == tenant_id)
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

    async def _provider_key(self, tenant_id: str, provider_id: str) -> _ProviderKey | None:
        cache_key = ("provider", tenant_id, provider_id)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached if isinstance(cached, _ProviderKey) else None
        async with self._db.transaction(tenant_id, readonly=True) as session:
            found = await self._provider_rows(session, tenant_id, provider_id)
        value: _ProviderKey | None = None
        if found is not None:
            key_row, accreditation = found
            signer = await self._issuer_keys.load(tenant_id, key_row.key_ref)
            leaf = trust_x509.from_pem(key_row.certificate)
            value = _ProviderKey(
                IssuingKey(signer, (trust_x509.to_x5c(leaf),), provider_id),
                frozenset(accreditation.claim_types),
                min(leaf.not_valid_after_utc, _aware(accreditation.valid_until)),
            )
        self._cache.put(cache_key, value if value is not None else False)
        return value

    async def anchors(self, tenant_id: str) -> list[x509.Certificate]:
        """The tenant's trust anchors: its issuer roots that are not retired."""
        cache_key = ("anchors", tenant_id)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return list(cached)
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
            anchors = [trust_x509.from_pem(pem) for pem in pems]
        self._cache.put(cache_key, tuple(anchors))
        return anchors

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

    # -- templates and defaults -------------------------------------------------------------

    async def defaults(self, tenant_id: str) -> dict[str, tuple[str, CredentialFormat]]:
        cache_key = ("defaults", tenant_id)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return dict(cached)
        async with self._db.transaction(tenant_id, readonly=True) as session:
            rows = (
                await session.execute(
                    select(CredentialDefault).where(CredentialDefault.tenant_id == tenant_id)
                )
            ).scalars()
            found = {r.claim_type: (r.template_id, CredentialFormat(r.format)) for r in rows}
        self._cache.put(cache_key, found)
        return found

    async def set_default(
        self, tenant_id: str, claim_type: str, *, template_id: str | None, fmt: CredentialFormat
    ) -> DefaultChoice:
        template = resolve(claim_type, template_id)
        async with self._db.transaction(tenant_id) as session:
            row = (
                await session.execute(
                    select(CredentialDefault).where(
                        CredentialDefault.tenant_id == tenant_id,
                        CredentialDefault.claim_type == claim_type,
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                session.add(
                    CredentialDefault(
                        tenant_id=tenant_id,
                        claim_type=claim_type,
                        template_id=template.id,
                        format=fmt.value,
                        updated_at=self._clock(),
                    )
                )
            else:
                row.template_id = template.id
                row.format = fmt.value
                row.updated_at = self._clock()
        self._cache.drop(lambda key: key == ("defaults", tenant_id))
        return DefaultChoice(claim_type, template.id, fmt)

    async def choose(
        self,
        tenant_id: str,
        claim_type: str,
        fmt: CredentialFormat | str | None,
        template_id: str | None,
    ) -> tuple[CredentialFormat, CredentialTemplate]:
        """The format and template of a request: as asked, else the tenant's default."""
        default = (await self.defaults(tenant_id)).get(claim_type)
        chosen_format = (
            CredentialFormat(fmt)
            if fmt is not None
            else default[1]
            if default is not None
            else DEFAULT_FORMAT
        )
        if template_id is None and default is not None:
            template_id = default[0]
        return chosen_format, resolve(claim_type, template_id)

    # -- issuance -------------------------------------------------------------------------

    async def issuing_key(
        self, tenant_id: str, provider_id: str | None, claim_type: str | None
    ) -> IssuingKey:
        """The DP's certified key when it is accredited for the claim type, else ours."""
        if provider_id is not None:
            found = await self._provider_key(tenant_id, provider_id)
            if found is not None:
                if claim_type in found.claim_types and found.not_after > self._clock():
                    return found.key
                log.warning(
                    "provider key not used: claim type not accredited or link expired",
                    tenant_id=tenant_id,
                    provider_id=provider_id,
                    claim_type=claim_type,
                )
        return IssuingKey(self._keystore.signer("credential-signing"))

    async def issue_for_decision(
        self,
        tenant_id: str,
        *,
        provider_id: str,
        fmt: CredentialFormat,
        template: CredentialTemplate,
        subject: Mapping[str, Any],
        as_of: str | None,
        issued_at: datetime,
        holder_jwk: Mapping[str, Any] | None = None,
        status: StatusEmbed | None = None,
    ) -> Issued:
        """Sign the credential a true decision earns (nothing is written here)."""
        key = await self.issuing_key(tenant_id, provider_id, template.claim_type)
        return await issuance.issue(
            fmt=fmt,
            template=template,
            subject=subject,
            issuer=self._issuer_id,
            key=key,
            issued_at=issued_at,
            vouched_at=parse_as_of(as_of),
            holder_jwk=holder_jwk,
            status=status,
        )

    def issuance_row(
        self,
        tenant_id: str,
        issued: Issued,
        *,
        verification_id: str | None,
        refreshes: str | None = None,
    ) -> Issuance:
        return Issuance(
            id=issued.id,
            tenant_id=tenant_id,
            verification_id=verification_id,
            refreshes=refreshes,
            format=issued.format.value,
            template_id=issued.template.id if issued.template else None,
            claim_type=issued.template.claim_type if issued.template else None,
            key_id=issued.key_id,
            digest=issued.digest,
            vouched_at=issued.vouched_at,
            valid_until=issued.valid_until,
            created_at=self._clock(),
        )

    async def issue_vc_api(
        self,
        tenant_id: str,
        credential: Mapping[str, Any],
        *,
        fmt: CredentialFormat = CredentialFormat.VC2_JOSE,
        credential_id: str | None = None,
        holder_jwk: Mapping[str, Any] | None = None,
        vct: str | None = None,
        provider_id: str | None = None,
        status_lists: StatusLists | None = None,
    ) -> Issued:
        """Secure an unsecured VC 2.0 credential (the VC-API ``/credentials/issue``)."""
        fmt = CredentialFormat(fmt)
        now = self._clock()
        document = self.complete_document(credential, credential_id=credential_id, now=now)
        template = by_credential_type(document["type"])
        key = await self.issuing_key(
            tenant_id, provider_id, template.claim_type if template else None
        )
        if provider_id is not None and key.provider_id != provider_id:
            raise InvalidRequest(
                f"provider {provider_id} has no certified key accredited for this credential type",
                field="options.providerId",
            )
        status = None
        if status_lists is not None:
            status = await status_lists.reserve(tenant_id, status_kind(fmt))
        issued = await issuance.issue_document(
            document,
            fmt=fmt,
            template=template,
            key=key,
            issued_at=now,
            holder_jwk=holder_jwk,
            status=status,
            vct=vct,
        )
        event = {
            "kind": "credential_issued",
            "credential_id": issued.id,
            "format": issued.format.value,
            "template": issued.template.id if issued.template else None,
            "key_id": issued.key_id,
            "credential_sha256": issued.digest,
            "at": iso(now),
        }

        async def record(session: AsyncSession) -> None:
            session.add(self.issuance_row(tenant_id, issued, verification_id=None))
            if status is not None and status_lists is not None:
                await status_lists.bind(session, tenant_id, status, issued.id)
            await self._audit.append(session, tenant_id, event)

        # The record, the status binding and the audit leaf commit together; concurrent
        # issuances of the tenant share the transaction (group commit).
        await self._writer.write(tenant_id, record)
        return issued

    def complete_document(
        self, credential: Mapping[str, Any], *, credential_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """Fill id, issuer, validFrom, validUntil and the attestation; check the result."""
        if "proof" in credential:
            raise InvalidRequest(
                "send an unsecured credential: it must not carry a proof",
                field="credential.proof",
            )
        document = dict(credential)
        issuer = vc2.issuer_id(document) if "issuer" in document else self._issuer_id
        if issuer != self._issuer_id:
            raise InvalidRequest(
                f"issuer must be this connector's issuer id {self._issuer_id!r}",
                field="credential.issuer",
            )
        document.setdefault("issuer", self._issuer_id)
        if "id" not in document:
            document["id"] = credential_id or f"urn:uuid:{uuid.uuid4()}"
        template = by_credential_type(document.get("type"))
        document.setdefault("validFrom", iso(now))
        if "validUntil" not in document:
            start = _parse_or_now(document["validFrom"], now)
            document["validUntil"] = iso(issuance.default_valid_until(template, start))
        if template is not None and not any(
            isinstance(e, dict) and e.get("type") == "DataProviderAttestation"
            for e in _as_list(document.get("evidence"))
        ):
            document["evidence"] = [
                *_as_list(document.get("evidence")),
                issuance.attestation(None, _parse_or_now(document["validFrom"], now), template),
            ]
        try:
            vc2.check_document(document)
        except CheckFailed as exc:
            raise InvalidRequest(exc.reason, field="credential") from exc
        return document

    # -- verification -----------------------------------------------------------------------

    async def trust_context(
        self,
        tenant_id: str,
        status_lookup: verifier.StatusLookup | None = None,
        *,
        extra_anchors: Sequence[x509.Certificate] = (),
    ) -> verifier.TrustContext:
        async def accreditation(key_id: str) -> str | None:
            return await self.accreditation_for_key(tenant_id, key_id)

        return verifier.TrustContext.from_jwks(
            self._keystore.public_jwks("credential-signing"),
            anchors=[*(await self.anchors(tenant_id)), *extra_anchors],
            accreditation=accreditation,
            status=status_lookup,
        )

    async def verify(
        self,
        tenant_id: str,
        token: str,
        *,
        status_lookup: verifier.StatusLookup | None = None,
        presentation: bool = False,
        audience: str | None = None,
        nonce: str | None = None,
        max_age: timedelta | None = None,
        expected_format: CredentialFormat | None = None,
    ) -> IntegrityReport:
        trust = await self.trust_context(tenant_id, status_lookup)
        options = verifier.VerifyOptions(
            now=self._clock(), audience=audience, nonce=nonce, max_age=max_age
        )
        report = await verifier.verify_credential(token, trust, options, presentation=presentation)
        if expected_format is not None and report.format not in (
            expected_format.value,
            "unknown",
        ):
            report.add(
                failed(
                    CheckName.SCHEMA,
                    "media_type_mismatch",
                    f"the envelope says {expected_format.value} but the credential is "
                    f"{report.format}",
                )
            )
        return report


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns: make them aware again."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _parse_or_now(value: object, now: datetime) -> datetime:
    try:
        return parse_date_time_stamp(value, "validFrom")
    except CheckFailed:
        return now


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
