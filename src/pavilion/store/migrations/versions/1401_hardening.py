"""hardening: API tokens may expire; the app role may no longer change or delete tenants

Revision ID: 1401
Revises: 0001
Create Date: 2026-12-07

A tenant row holds the tenant's wrapped data key. The connector only creates tenants and reads
them, so the app role keeps SELECT and INSERT: a compromised service cannot overwrite or
delete a wrapped key (which would shred the tenant's sealed data) nor rename a tenant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import app_role

revision = "1401"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    role = app_role()
    if op.get_bind().dialect.name == "postgresql" and role is not None:
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON tenants FROM {role}")


def downgrade() -> None:
    role = app_role()
    if op.get_bind().dialect.name == "postgresql" and role is not None:
        op.execute(f"GRANT UPDATE, DELETE ON tenants TO {role}")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
