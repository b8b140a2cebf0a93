"""The composition root: builds every service from the settings, each on first use.

The API and the CLI both start here, so there is one place that decides which database,
keystore and clients a process uses. A service (and the modules behind it) is built the first
time something asks for it, so a short command pays only for what it touches: ``pavilion
providers list`` never imports the credential formats, the data pipeline or the HTTP clients.
Tests replace a service by assigning the attribute (``rt.provider_client = ...``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pavilion.config.settings import Settings

if TYPE_CHECKING:
    from pavilion.audit.journal import Journal
    from pavilion.audit.log import AuditLog
    from pavilion.connect.client import ProviderClient
    from pavilion.connect.residency import ResidencyService
    from pavilion.credentials.anoncreds.service import AnoncredsService
    from pavilion.credentials.data_integrity.did_web import HttpDidWebFetcher
    from pavilion.credentials.service import CredentialService
    from pavilion.credentials.status.service import StatusListService
    from pavilion.ingest.lineage.emitter import LineageEmitter
    from pavilion.ingest.lineage.lookups import LookupLineage
    from pavilion.ingest.roster_store import RosterStore
    from pavilion.keystore.base import Keystore
    from pavilion.privacy.budget import BudgetLedger
    from pavilion.privacy.psi_client import OprfEvaluator
    from pavilion.privacy.receipts import ReceiptService
    from pavilion.privacy.tag_sets import TagSetService
    from pavilion.providers.service import ProviderService
    from pavilion.store.config_cache import ConfigCache
    from pavilion.store.database import Database
    from pavilion.store.idempotency import RecentAnswers
    from pavilion.store.sqlite_batch import SqliteWriter
    from pavilion.tenancy.identities import CertificateIdentities
    from pavilion.tenancy.oidc import OidcVerifier
    from pavilion.tenancy.service import TenancyService, TenantKeys
    from pavilion.workflows.key_lifecycle import KeyService


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PrivacyEngine:
    """The privacy engine's services (PSI tag sets, OPRF evaluation, budgets, receipts, ZK)."""

    def __init__(
        self,
        tag_sets: TagSetService,
        evaluator: OprfEvaluator,
        budgets: BudgetLedger,
        receipts: ReceiptService,
        anoncreds: AnoncredsService,
    ) -> None:
        self.tag_sets = tag_sets
        self.evaluator = evaluator
        self.budgets = budgets
        self.receipts = receipts
        self.anoncreds = anoncreds

    async def aclose(self) -> None:
        await self.evaluator.aclose()


#: Every service of a runtime, in an order that builds each one's dependencies first.
SERVICES = (
    "db",
    "keystore",
    "audit",
    "tenant_keys",
    "keys",
    "journal",
    "idempotency",
    "config",
    "rosters",
    "tenancy",
    "providers",
    "provider_client",
    "residency",
    "certificates",
    "oidc",
    "did_web",
    "credentials",
    "status_lists",
    "lineage",
    "lookup_lineage",
)


class Runtime:
    """Every service of one process, each built on first use from the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider_client: ProviderClient | None = None,
        did_web: HttpDidWebFetcher | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Callable[[], datetime] = _utc_now
        if provider_client is not None:
            self.provider_client = provider_client
        if did_web is not None:
            self.did_web = did_web

    def built(self, name: str) -> bool:
        """Whether the service ``name`` was built (or set) already."""
        return name in self.__dict__

    def build_all(self) -> None:
        """Build every service now (a serving process, so that no request pays for one); the
        privacy engine stays built on first use."""
        for name in SERVICES:
            getattr(self, name)

    # -- storage and keys ---------------------------------------------------------------------

    @functools.cached_property
    def db(self) -> Database:
        from pavilion.store.database import Database

        return Database(self.settings.database_url, pool_size=self.settings.database_pool_size)

    @functools.cached_property
    def keystore(self) -> Keystore:
        from pavilion.keystore.factory import open_keystore

        return open_keystore(self.settings)

    @functools.cached_property
    def audit(self) -> AuditLog:
        from pavilion.audit.log import AuditLog

        signer = self.keystore.signer("audit-signing")
        return AuditLog(self.db, signer, self.settings.audit_origin)

    @functools.cached_property
    def tenant_keys(self) -> TenantKeys:
        from pavilion.tenancy.service import TenantKeys

        return TenantKeys(self.keystore)

    @functools.cached_property
    def keys(self) -> KeyService:
        from pavilion.workflows.key_lifecycle import KeyService

        flush = self.settings.key_usage_flush_seconds
        return KeyService(self.db, self.keystore, self.audit, flush_seconds=flush)

    @functools.cached_property
    def journal(self) -> Journal:
        """Audited writes of a tenant committed together (verifications, VC-API issuances)."""
        from pavilion.audit.journal import Journal
        from pavilion.store.pg_batch import PgConnections

        db, url = self.db, self.settings.database_url
        return Journal(
            db,
            self.audit,
            max_batch=self.settings.journal_max_batch,
            pg=PgConnections(url) if db.is_postgres else None,
            sqlite=_sqlite_writer(url) if not db.is_postgres else None,
        )

    @functools.cached_property
    def idempotency(self) -> RecentAnswers:
        """Answers this worker stored under an Idempotency-Key (replays without a read)."""
        from pavilion.store.idempotency import RecentAnswers

        return RecentAnswers()

    @functools.cached_property
    def config(self) -> ConfigCache:
        """Tenant configuration (providers, endpoints, adequacy) served from memory."""
        from pavilion.store.config_cache import ConfigCache

        return ConfigCache(self.settings.config_cache_seconds)

    @functools.cached_property
    def rosters(self) -> RosterStore:
        """Canonical roster records, sealed (what roster uploads replace and lookups read)."""
        from pavilion.ingest.roster_store import SqlRosterStore

        return SqlRosterStore(self.tenant_keys)

    # -- tenants, providers, access -----------------------------------------------------------

    @functools.cached_property
    def tenancy(self) -> TenancyService:
        from pavilion.tenancy.service import TenancyService

        return TenancyService(self.db, self.tenant_keys)

    @functools.cached_property
    def providers(self) -> ProviderService:
        from pavilion.providers.service import ProviderService

        return ProviderService(self.db, self.tenant_keys, self.config, self.audit)

    @functools.cached_property
    def provider_client(self) -> ProviderClient:
        from pavilion.connect.factory import build_provider_client

        return build_provider_client(self.settings, self.db, self.audit)

    @functools.cached_property
    def residency(self) -> ResidencyService:
        from pavilion.connect.residency import ResidencyService

        return ResidencyService(self.db, self.config, self.audit)

    @functools.cached_property
    def certificates(self) -> CertificateIdentities:
        """Verified client certificates (mTLS) mapped to tenants and roles."""
        from pavilion.tenancy.identities import CertificateIdentities

        return CertificateIdentities(self.settings.tls_client_identities)

    @functools.cached_property
    def oidc(self) -> OidcVerifier:
        """OIDC providers' access tokens, accepted beside API tokens."""
        from pavilion.tenancy.oidc import OidcVerifier

        return OidcVerifier(self.settings.oidc_providers)

    # -- credentials ----------------------------------------------------------------------------

    @functools.cached_property
    def did_web(self) -> HttpDidWebFetcher | None:
        """Fetches did:web documents (Data Integrity issuers, vp+jwt holders)."""
        return build_did_web_fetcher(self.settings)

    @functools.cached_property
    def credentials(self) -> CredentialService:
        from pavilion.credentials.data_integrity.identity import IssuerDid
        from pavilion.credentials.keys import issuer_keys_for
        from pavilion.credentials.service import CredentialService

        return CredentialService(
            self.db,
            self.keystore,
            self.audit,
            issuer_keys_for(self.keystore),
            self.journal,
            issuer_id=self.settings.issuer_id,
            issuer_did=IssuerDid(self.settings.did_web or None),
            did_web=self.did_web,
        )

    @functools.cached_property
    def status_lists(self) -> StatusListService:
        from pavilion.credentials.status.resolver import RemoteStatusResolver
        from pavilion.credentials.status.service import StatusListConfig, StatusListService

        settings = self.settings
        return StatusListService(
            self.db,
            self.keystore,
            self.audit,
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
            writer=self.journal.sqlite_writer,
        )

    # -- lineage and privacy --------------------------------------------------------------------

    @functools.cached_property
    def lineage(self) -> LineageEmitter:
        """The OpenLineage emitter (openlineage is imported when it builds its first event)."""
        from pavilion.ingest.lineage.emitter import LineageEmitter

        return LineageEmitter(self.settings.lineage_file)

    @functools.cached_property
    def lookup_lineage(self) -> LookupLineage:
        """Lookup outcomes counted and written as lineage once per window."""
        from pavilion.ingest.lineage.lookups import LookupLineage

        window = self.settings.lineage_window_seconds
        return LookupLineage(self.db, self.lineage, window_seconds=window, clock=_utc_now)

    @functools.cached_property
    def privacy(self) -> PrivacyEngine:
        """The privacy engine (PSI, ZK predicates, private releases, receipts)."""
        return build_privacy_engine(self)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Background work of a serving process (lineage windows), on the serving loop; first
        the spool is swept of what dead processes left (sealed uploads nobody can read)."""
        from pavilion.ingest.spool import sweep
        from pavilion.workflows.roster_upload import spool_dir

        sweep(spool_dir(self))
        self.lookup_lineage.start()

    async def stop(self) -> None:
        """Stop the background work, on the loop that started it (what is counted stays)."""
        if self.built("lookup_lineage"):
            await self.lookup_lineage.stop()

    async def aclose(self) -> None:
        """Close what was built, in order: the journal commits what it took before anything
        closes, the lineage window is written, and signing counts are flushed to the audit log
        before the keystore and the database close."""
        if self.built("journal"):
            await self.journal.aclose()
        if self.built("lookup_lineage"):
            await self.lookup_lineage.aclose()
        if self.built("privacy"):
            await self.privacy.aclose()
        for name in ("provider_client", "oidc", "status_lists", "config"):
            if self.built(name):
                await getattr(self, name).aclose()
        if self.built("did_web") and self.did_web is not None:
            await self.did_web.aclose()
        if self.built("keystore"):  # flushes signing counts to the audit log, closes an HSM
            await self.keys.aclose()
        if self.built("db"):
            await self.db.dispose()


def build_did_web_fetcher(settings: Settings) -> HttpDidWebFetcher:
    """The did:web fetcher the settings describe (HTTPS, deadline, CA bundle, addresses)."""
    from pavilion.credentials.data_integrity.did_web import HttpDidWebFetcher, tls_context

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
    """The runtime of the settings (its services built on first use); ``provider_client`` and
    ``did_web`` replace the ones the settings would build (tests point them at in-process or
    loopback servers)."""
    from pavilion.store.private_files import private_dir

    private_dir(settings.data_dir)
    return Runtime(settings, provider_client=provider_client, did_web=did_web)


def _sqlite_writer(url: str) -> SqliteWriter | None:
    from pavilion.store.sqlite_batch import SqliteWriter

    try:
        return SqliteWriter(url)
    except ValueError:  # an in-memory database: the journal keeps SQLAlchemy's path
        return None


def build_privacy_engine(rt: Runtime) -> PrivacyEngine:
    from pavilion.credentials.anoncreds.service import AnoncredsConfig, AnoncredsService
    from pavilion.privacy.budget import BudgetLedger
    from pavilion.privacy.psi_client import OprfEvaluator
    from pavilion.privacy.receipts import ReceiptService
    from pavilion.privacy.tag_sets import TagSetService

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
