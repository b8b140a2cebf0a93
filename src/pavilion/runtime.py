"""The composition root: builds every service once from the settings.

The API and the CLI both start here, so there is one place that decides which database,
keystore and clients a process uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pavilion.audit.journal import Journal
from pavilion.audit.log import AuditLog
from pavilion.config.settings import Settings
from pavilion.connect.client import ProviderClient
from pavilion.connect.factory import build_provider_client
from pavilion.connect.residency import ResidencyService
from pavilion.credentials.anoncreds.service import AnoncredsConfig, AnoncredsService
from pavilion.credentials.data_integrity.did_web import HttpDidWebFetcher, tls_context
from pavilion.credentials.data_integrity.identity import IssuerDid
from pavilion.credentials.keys import issuer_keys_for
from pavilion.credentials.service import CredentialService
from pavilion.credentials.status.resolver import RemoteStatusResolver
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.ingest.lineage.emitter import LineageEmitter
from pavilion.ingest.lineage.lookups import LookupLineage
from pavilion.ingest.roster_store import RosterStore, SqlRosterStore
from pavilion.ingest.spool import sweep
from pavilion.keystore.base import Keystore
from pavilion.keystore.factory import open_keystore
from pavilion.privacy.budget import BudgetLedger
from pavilion.privacy.psi_client import OprfEvaluator
from pavilion.privacy.receipts import ReceiptService
from pavilion.privacy.tag_sets import TagSetService
from pavilion.providers.service import ProviderService
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database
from pavilion.store.idempotency import RecentAnswers
from pavilion.store.pg_batch import PgConnections
from pavilion.store.private_files import private_dir
from pavilion.store.sqlite_batch import SqliteWriter
from pavilion.tenancy.identities import CertificateIdentities
from pavilion.tenancy.oidc import OidcVerifier
from pavilion.tenancy.service import TenancyService, TenantKeys
from pavilion.workflows.key_lifecycle import KeyService
from pavilion.workflows.roster_upload import spool_dir


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PrivacyEngine:
    """The privacy engine's services (PSI tag sets, OPRF evaluation, budgets, receipts, ZK)."""

    tag_sets: TagSetService
    evaluator: OprfEvaluator
    budgets: BudgetLedger
    receipts: ReceiptService
    anoncreds: AnoncredsService

    async def aclose(self) -> None:
        await self.evaluator.aclose()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keystore: Keystore
    tenant_keys: TenantKeys
    tenancy: TenancyService
    providers: ProviderService
    provider_client: ProviderClient
    audit: AuditLog
    keys: KeyService
    status_lists: StatusListService
    credentials: CredentialService
    #: Tenant configuration (providers, endpoints, adequacy) served from memory.
    config: ConfigCache
    residency: ResidencyService
    #: Audited writes of a tenant committed together (verifications, VC-API issuances).
    journal: Journal
    #: Lookup outcomes counted and written as lineage once per window.
    lookup_lineage: LookupLineage
    #: Canonical roster records, sealed (what roster uploads replace and lookups read).
    rosters: RosterStore
    #: Answers this worker stored under an Idempotency-Key (replays without a read).
    idempotency: RecentAnswers = field(default_factory=RecentAnswers)
    clock: Callable[[], datetime] = field(default=_utc_now)
    #: The OpenLineage emitter (openlineage is imported when it builds its first event).
    lineage: LineageEmitter = field(default_factory=LineageEmitter)
    #: Verified client certificates (mTLS) mapped to tenants and roles.
    certificates: CertificateIdentities = field(default_factory=lambda: CertificateIdentities({}))
    #: OIDC providers' access tokens, accepted beside API tokens.
    oidc: OidcVerifier = field(default_factory=lambda: OidcVerifier([]))
    #: Fetches did:web documents (Data Integrity issuers, vp+jwt holders); None: did:web off.
    did_web: HttpDidWebFetcher | None = None

    @functools.cached_property
    def privacy(self) -> PrivacyEngine:
        """The privacy engine (PSI, ZK predicates, private releases, receipts), built on use."""
        return build_privacy_engine(self)

    async def start(self) -> None:
        """Background work of a serving process (lineage windows), on the serving loop; first
        the spool is swept of what dead processes left (sealed uploads nobody can read)."""
        sweep(spool_dir(self))
        self.lookup_lineage.start()

    async def stop(self) -> None:
        """Stop the background work, on the loop that started it (what is counted stays)."""
        await self.lookup_lineage.stop()

    async def aclose(self) -> None:
        await self.journal.aclose()  # what was taken is committed before anything closes
        await self.lookup_lineage.aclose()  # the last window's counts
        if "privacy" in self.__dict__:  # built on first use only
            await self.privacy.aclose()
        await self.provider_client.aclose()
        await self.oidc.aclose()
        if self.did_web is not None:
            await self.did_web.aclose()
        await self.status_lists.aclose()
        await self.keys.aclose()  # flushes signing counts to the audit log, closes an HSM
        await self.db.dispose()


def build_did_web_fetcher(settings: Settings) -> HttpDidWebFetcher:
    """The did:web fetcher the settings describe (HTTPS, deadline, CA bundle, addresses)."""
    return HttpDidWebFetcher(
        verify=tls_context(settings.did_web_ca_file),
        timeout_seconds=settings.did_web_timeout_seconds,
        allow_private_addresses=settings.did_web_allow_private_addresses,
    )


def build_runtime(
    settings: Settings,
    *,
    provider_client: ProviderClient | None = None,
    did_web: HttpDidWebFetcher | None = None,
) -> Runtime:
    """Every service from the settings; ``provider_client`` and ``did_web`` replace the ones
    the settings would build (tests point them at in-process or loopback servers)."""
    private_dir(settings.data_dir)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    keystore = open_keystore(settings)
    audit = AuditLog(db, keystore.signer("audit-signing"), settings.audit_origin)
    tenant_keys = TenantKeys(keystore)
    client = provider_client or build_provider_client(settings, db, audit)
    config = ConfigCache(settings.config_cache_seconds)
    lineage = LineageEmitter(settings.lineage_file)
    journal = Journal(
        db,
        audit,
        max_batch=settings.journal_max_batch,
        pg=PgConnections(settings.database_url) if db.is_postgres else None,
        sqlite=_sqlite_writer(settings.database_url) if not db.is_postgres else None,
    )
    fetcher = did_web or build_did_web_fetcher(settings)
    return Runtime(
        settings=settings,
        db=db,
        keystore=keystore,
        tenant_keys=tenant_keys,
        tenancy=TenancyService(db, tenant_keys),
        providers=ProviderService(db, tenant_keys, config, audit),
        provider_client=client,
        audit=audit,
        keys=KeyService(db, keystore, audit, flush_seconds=settings.key_usage_flush_seconds),
        credentials=CredentialService(
            db,
            keystore,
            audit,
            issuer_keys_for(keystore),
            journal,
            issuer_id=settings.issuer_id,
            issuer_did=IssuerDid(settings.did_web or None),
            did_web=fetcher,
        ),
        status_lists=StatusListService(
            db,
            keystore,
            audit,
            StatusListConfig(
                base_url=settings.public_url,
                issuer=settings.issuer_id,
                token_bits=settings.status_list_bits,
                token_size=settings.status_list_size,
                bitstring_size=max(settings.status_list_size, 131_072),
                ttl_seconds=settings.status_list_ttl_seconds,
                lifetime_seconds=settings.status_list_lifetime_seconds,
                cache_seconds=settings.config_cache_seconds,
            ),
            remote=RemoteStatusResolver(settings.status_trust_anchors),
        ),
        config=config,
        residency=ResidencyService(db, config, audit),
        journal=journal,
        lineage=lineage,
        rosters=SqlRosterStore(tenant_keys),
        lookup_lineage=LookupLineage(
            db, lineage, window_seconds=settings.lineage_window_seconds, clock=_utc_now
        ),
        certificates=CertificateIdentities(settings.tls_client_identities),
        oidc=OidcVerifier(settings.oidc_providers),
        did_web=fetcher,
    )


def _sqlite_writer(url: str) -> SqliteWriter | None:
    try:
        return SqliteWriter(url)
    except ValueError:  # an in-memory database: the journal keeps SQLAlchemy's path
        return None


def build_privacy_engine(rt: Runtime) -> PrivacyEngine:
    settings = rt.settings

    def clock() -> datetime:
        return rt.clock()

    return PrivacyEngine(
        tag_sets=TagSetService(rt.db, clock),
        evaluator=OprfEvaluator(timeout_seconds=settings.provider_timeout_seconds * 2),
        budgets=BudgetLedger(),
        receipts=ReceiptService(
            rt.keystore.signer("audit-signing"),
            rt.audit,
            policy_version=settings.privacy_policy_version,
            clock=clock,
        ),
        anoncreds=AnoncredsService(
            rt.db,
            rt.tenant_keys,
            AnoncredsConfig(
                tails_dir=settings.data_dir / "anoncreds-tails",
                issuer_base=settings.issuer_id,
                registry_capacity=settings.anoncreds_registry_capacity,
            ),
            clock=clock,
        ),
    )
