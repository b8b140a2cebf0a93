"""Template defaults: per claim type, the template and format a tenant's credentials use.

A request that names neither a template nor a format gets the tenant's default for its claim
type, else the latest template of the type and
:data:`~pavilion.credentials.templates.DEFAULT_FORMAT`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from pavilion.audit.log import AuditLog
from pavilion.credentials.issuer_models import CredentialDefault
from pavilion.credentials.templates import (
    DEFAULT_FORMAT,
    CredentialFormat,
    CredentialTemplate,
    resolve,
)
from pavilion.store.config_cache import ConfigCache
from pavilion.store.database import Database


@dataclass(frozen=True)
class DefaultChoice:
    """The template and format a tenant's verifications of one claim type use by default."""

    claim_type: str
    template: str
    format: CredentialFormat


class TemplateDefaults:
    """A tenant's default template and format per claim type (cached reads)."""

    def __init__(
        self,
        db: Database,
        cache: ConfigCache,
        *,
        clock: Callable[[], datetime],
        audit: AuditLog | None = None,
    ) -> None:
        self._db = db
        self._cache = cache
        self._clock = clock
        self._audit = audit  # every change is a leaf of the tenant's audit log

    async def defaults(self, tenant_id: str) -> dict[str, tuple[str, CredentialFormat]]:

        async def load() -> dict[str, tuple[str, CredentialFormat]]:
            async with self._db.transaction(tenant_id, readonly=True) as session:
                rows = (
                    await session.execute(
                        select(CredentialDefault).where(CredentialDefault.tenant_id == tenant_id)
                    )
                ).scalars()
                return {r.claim_type: (r.template_id, CredentialFormat(r.format)) for r in rows}

        return dict(await self._cache.get(tenant_id, "defaults", load))

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
            if self._audit is not None:
                await self._audit.append(
                    session,
                    tenant_id,
                    {
                        "kind": "credential_default_set",
                        "claim_type": claim_type,
                        "template_id": template.id,
                        "format": fmt.value,
                        "at": self._clock().isoformat(),
                    },
                )
        self._cache.invalidate(tenant_id)
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
