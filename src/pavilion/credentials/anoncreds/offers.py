"""Credential offers for wallet holders: valid for a few minutes, each answers one request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.issuers import Issuers
from pavilion.credentials.anoncreds.models import (
    AnoncredsOffer,
)
from pavilion.credentials.anoncreds.types import (
    OFFER_TTL,
    CredentialOffer,
    Issuer,
)
from pavilion.errors import Conflict, NotFound
from pavilion.store.base import new_id
from pavilion.store.database import Database


class Offers:
    """Makes credential offers and takes each one exactly once."""

    def __init__(self, db: Database, issuers: Issuers, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._issuers = issuers
        self._clock = clock

    async def offer(self, tenant_id: str, provider_id: str) -> CredentialOffer:
        issuer = await self._issuers.ensure_issuer(tenant_id, provider_id)
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
            issuer = await self._issuers.issuer_of(session, tenant_id, issuer_row_id)
        return issuer, offer_json
