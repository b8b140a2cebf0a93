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

:class:`AnoncredsService` is the one object the runtime holds; its methods are those of its
parts, one module each: ``issuers`` (credential definitions), ``registries`` (registries,
slots, published lists), ``revocation``, ``published`` (what holders and verifiers read) and
``offers``; ``types`` holds the values they share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.issuers import Issuers
from pavilion.credentials.anoncreds.offers import Offers
from pavilion.credentials.anoncreds.published import PublishedState
from pavilion.credentials.anoncreds.registries import Registries
from pavilion.credentials.anoncreds.revocation import Revocation
from pavilion.credentials.anoncreds.types import AnoncredsConfig, MaterialFactory
from pavilion.store.database import Database
from pavilion.tenancy.service import TenantKeys

__all__ = ["AnoncredsConfig", "AnoncredsService"]


class AnoncredsService:
    """AnonCreds issuance of one connector: issuers, registries, revocation, offers, reads."""

    def __init__(
        self,
        db: Database,
        tenant_keys: TenantKeys,
        config: AnoncredsConfig,
        *,
        clock: Callable[[], datetime],
        material_factory: MaterialFactory = engine.create_issuer,
    ) -> None:
        self.config = config
        registries = Registries(db, tenant_keys, config, clock=clock)
        issuers = Issuers(
            db, tenant_keys, config, registries, clock=clock, material_factory=material_factory
        )
        revocation = Revocation(db, registries, issuers, clock=clock)
        published = PublishedState(db, config)
        offers = Offers(db, issuers, clock=clock)
        self.ensure_issuer = issuers.ensure_issuer
        self.allocate = registries.allocate
        self.revoke = revocation.revoke
        self.revoke_subject = revocation.revoke_subject
        self.status_list_within = revocation.status_list_within
        self.tails_path = published.tails_path
        self.registry_tails = published.registry_tails
        self.tails = published.tails
        self.verification_material = published.verification_material
        self.registries = published.registries
        self.deltas = published.deltas
        self.offer = offers.offer
        self.take_offer = offers.take_offer
