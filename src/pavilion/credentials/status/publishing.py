"""Publishing: a list's bits derived from its entries, signed, and cached in its row.

The signed list (an IETF Status List Token, or a W3C ``BitstringStatusListCredential`` secured
as ``vc+jwt``) is cached in the list row with the ``version`` it reflects; every status change
bumps the version, and a list is re-signed when its version moved or half of its lifetime has
passed. Every node therefore serves the same bytes (one ETag) until something changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from pavilion.credentials.status.bitstring import (
    BitstringStatusList,
    status_list_credential_subject,
)
from pavilion.credentials.status.models import StatusList
from pavilion.credentials.status.queries import find_list, published_entries
from pavilion.credentials.status.states import (
    check_kind,
    list_value,
)
from pavilion.credentials.status.token_status_list import (
    TokenStatusList,
    status_list_jwt_header,
)
from pavilion.credentials.status.types import (
    BITSTRING_MEDIA_TYPE,
    TOKEN_MEDIA_TYPE,
    VC_V2_CONTEXT,
    PublishedList,
    StatusListConfig,
    list_uri,
    tenant_of_list,
)
from pavilion.errors import NotFound
from pavilion.jose import jws_alg, sign_compact
from pavilion.keystore.base import Keystore
from pavilion.store.database import Database


class ListPublisher:
    """Signs and caches the tenants' status lists."""

    def __init__(
        self,
        db: Database,
        keystore: Keystore,
        config: StatusListConfig,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._config = config
        self._clock = clock
        self._base = config.base_url.rstrip("/")

    async def publish(self, kind: str, list_id: str) -> PublishedList:
        """The signed list (cached while its version holds and half its lifetime is left)."""
        checked = check_kind(kind)
        tenant_id = tenant_of_list(list_id)
        now = self._clock()
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = await find_list(session, tenant_id, list_id, checked)
            if row is None:
                raise NotFound(f"status list {list_id} does not exist")
            signed_expires_at = _aware(row.signed_expires_at or now)
            fresh_until = signed_expires_at - timedelta(seconds=self._config.lifetime_seconds / 2)
            if row.signed_token and row.signed_version == row.version and fresh_until > now:
                return self._published(row, row.signed_token, signed_expires_at, now)
            version = row.version
            values = await published_entries(session, tenant_id, row)
        expires_at = now + timedelta(seconds=self._config.lifetime_seconds)
        if checked == "token":
            token = await self._sign_token_list(row, values, now, expires_at)
        else:
            token = await self._sign_bitstring_list(row, values, now, expires_at)
        async with self._db.transaction(tenant_id) as session:
            await session.execute(
                update(StatusList)
                .where(
                    StatusList.tenant_id == tenant_id,
                    StatusList.id == list_id,
                    StatusList.version == version,
                )
                .values(
                    signed_token=token,
                    signed_version=version,
                    signed_at=now,
                    signed_expires_at=expires_at,
                )
            )
        row.version = version
        return self._published(row, token, expires_at, now)

    def _published(
        self, row: StatusList, token: str, expires_at: datetime, now: datetime
    ) -> PublishedList:
        left = int((expires_at - now).total_seconds())
        return PublishedList(
            list_id=row.id,
            kind=row.kind,  # type: ignore[arg-type]
            token=token,
            media_type=TOKEN_MEDIA_TYPE if row.kind == "token" else BITSTRING_MEDIA_TYPE,
            etag='"' + hashlib.sha256(token.encode("ascii")).hexdigest()[:32] + '"',
            version=row.version,
            expires_at=expires_at,
            max_age=max(0, min(self._config.ttl_seconds, left)),
        )

    async def _sign_token_list(
        self, row: StatusList, values: Any, now: datetime, expires_at: datetime
    ) -> str:
        status_list = TokenStatusList(row.size, row.bits)
        for idx, state in values:
            status_list.set(idx, list_value("token", row.purpose, state))
        claims = status_list.to_jwt_claims(
            sub=list_uri(self._base, "token", row.id),
            iat=int(now.timestamp()),
            exp=int(expires_at.timestamp()),
            ttl_seconds=self._config.ttl_seconds,
        )
        signer = self._keystore.signer("credential-signing")
        header = status_list_jwt_header(jws_alg(signer.algorithm), signer.key_id)
        return await sign_compact(header, claims, signer)

    async def _sign_bitstring_list(
        self, row: StatusList, values: Any, now: datetime, expires_at: datetime
    ) -> str:
        status_list = BitstringStatusList(row.size, row.bits)
        for idx, state in values:
            status_list.set(idx, list_value("bitstring", row.purpose, state))
        uri = list_uri(self._base, "bitstring", row.id)
        credential = {
            "@context": [VC_V2_CONTEXT],
            "id": uri,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": self._config.issuer,
            "validFrom": _xsd(now),
            "validUntil": _xsd(expires_at),
            "credentialSubject": status_list_credential_subject(
                status_list,
                subject_id=f"{uri}#list",
                status_purpose=row.purpose,
                ttl_ms=self._config.ttl_seconds * 1000,
            ),
        }
        signer = self._keystore.signer("credential-signing")
        return await sign_compact({"typ": "vc+jwt", "cty": "vc"}, credential, signer)


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _xsd(moment: datetime) -> str:
    """An XML Schema dateTimeStamp in UTC with a ``Z``, seconds precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
