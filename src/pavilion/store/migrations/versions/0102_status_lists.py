"""status lists: published lists and their allocated indices

Revision ID: 0102
Revises: 0001
Create Date: 2026-12-01

Both tables are tenant-owned (row-level security). The app role may not DELETE from either:
an allocated index is never handed out again, and a published list never disappears.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import app_role, protect_tenant_tables

revision = "0102"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("status_lists", "status_list_entries")


def upgrade() -> None:
    op.create_table(
        "status_lists",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signed_token", sa.Text(), nullable=True),
        sa.Column("signed_version", sa.Integer(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_lists")),
    )
    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_lists_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_status_lists_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_status_lists_tenant_kind_state", ["tenant_id", "kind", "state"], unique=False
        )

    op.create_table(
        "status_list_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_list_entries")),
        sa.UniqueConstraint("group_id", "idx", name=op.f("uq_status_list_entries_group_id_idx")),
    )
    with op.batch_alter_table("status_list_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_list_entries_credential_id"), ["credential_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_status_list_entries_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_status_list_entries_group_state", ["group_id", "state"], unique=False
        )

    protect_tenant_tables(_TABLES)
    role = app_role()
    if role is not None and op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"REVOKE DELETE ON {table} FROM {role}")


def downgrade() -> None:
    with op.batch_alter_table("status_list_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_status_list_entries_group_state")
        batch_op.drop_index(batch_op.f("ix_status_list_entries_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_status_list_entries_credential_id"))
    op.drop_table("status_list_entries")
    with op.batch_alter_table("status_lists", schema=None) as batch_op:
        batch_op.drop_index("ix_status_lists_tenant_kind_state")
        batch_op.drop_index(batch_op.f("ix_status_lists_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_status_lists_group_id"))
    op.drop_table("status_lists")
