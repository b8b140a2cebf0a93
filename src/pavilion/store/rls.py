"""Row-level security DDL shared by migrations (PostgreSQL only; a no-op elsewhere).

Each migration that adds tenant-owned tables calls :func:`protect_tenant_tables` with the
tables it adds, so the policy, FORCE and the app role's grants never drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from alembic import op

_POLICY = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def app_role() -> str | None:
    """The non-owner role the service connects as, handed over by ``pavilion db upgrade``."""
    config = op.get_context().config
    role = config.attributes.get("app_role") if config is not None else None
    if role is not None and not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"app role {role!r} must be a plain lowercase PostgreSQL identifier")
    return role


def protect_tenant_tables(
    tables: Iterable[str], *, append_only: Iterable[str] = (), platform_tables: Iterable[str] = ()
) -> None:
    """ENABLE and FORCE row-level security with the NULL-safe tenant policy, then grant.

    ``append_only`` tables get SELECT and INSERT only; ``platform_tables`` (no tenant_id, no
    RLS) are granted to the app role as they are.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    tables = list(tables)
    append_only = set(append_only)
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({_POLICY}) WITH CHECK ({_POLICY})"
        )
    role = app_role()
    if role is None:
        return
    # The role name is validated above: DDL takes no bind parameters.
    create_role = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') "
        "THEN CREATE ROLE %s LOGIN; END IF; END $$"
    )
    op.execute(create_role % (role, role))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    for table in [*platform_tables, *tables]:
        privileges = "SELECT, INSERT" if table in append_only else "SELECT, INSERT, UPDATE, DELETE"
        op.execute(f"GRANT {privileges} ON {table} TO {role}")
