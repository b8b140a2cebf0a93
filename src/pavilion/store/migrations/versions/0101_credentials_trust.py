"""credentials: issuer keys (trust chains), accreditations, template defaults, issuances

Revision ID: 0101
Revises: 0001
Create Date: 2026-11-26

All four tables are tenant-owned (row-level security). ``credential_issuances`` is
append-only for the app role: a record of an issued credential is never changed or removed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import protect_tenant_tables

revision = "0101"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = (
    "credential_issuer_keys",
    "credential_accreditations",
    "credential_defaults",
    "credential_issuances",
)


def upgrade() -> None:
    op.create_table(
        "credential_issuer_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=True),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("key_ref", sa.Text(), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_issuer_keys")),
    )
    with op.batch_alter_table("credential_issuer_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credential_issuer_keys_lookup", ["tenant_id", "role", "provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credential_issuer_keys_key_id"), ["key_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credential_issuer_keys_tenant_id"), ["tenant_id"], unique=False
        )
    # One active root per tenant and one active key per provider, whatever the race.
    op.create_index(
        "uq_credential_issuer_keys_active",
        "credential_issuer_keys",
        ["tenant_id", "role", sa.text("coalesce(provider_id, '')")],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
        sqlite_where=sa.text("retired_at IS NULL"),
    )

    op.create_table(
        "credential_accreditations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("issuer_key_row", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("claim_types", sa.JSON(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_accreditations")),
    )
    with op.batch_alter_table("credential_accreditations", schema=None) as batch_op:
        for column in ("key_id", "provider_id", "tenant_id"):
            batch_op.create_index(
                batch_op.f(f"ix_credential_accreditations_{column}"), [column], unique=False
            )
    op.create_index(
        "uq_credential_accreditations_active",
        "credential_accreditations",
        ["tenant_id", "provider_id"],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
        sqlite_where=sa.text("retired_at IS NULL"),
    )

    op.create_table(
        "credential_defaults",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("claim_type", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=60), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_defaults")),
        sa.UniqueConstraint(
            "tenant_id", "claim_type", name=op.f("uq_credential_defaults_tenant_id_claim_type")
        ),
    )
    with op.batch_alter_table("credential_defaults", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_defaults_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "credential_issuances",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=True),
        sa.Column("refreshes", sa.String(length=36), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.String(length=60), nullable=True),
        sa.Column("claim_type", sa.String(length=40), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("vouched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_issuances")),
    )
    with op.batch_alter_table("credential_issuances", schema=None) as batch_op:
        for column in ("digest", "tenant_id", "verification_id"):
            batch_op.create_index(
                batch_op.f(f"ix_credential_issuances_{column}"), [column], unique=False
            )

    protect_tenant_tables(_TABLES, append_only=("credential_issuances",))


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
