"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import protect_tenant_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("tenant_id", "size", name=op.f("uq_audit_checkpoints_tenant_id_size")),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_checkpoints_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "audit_heads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("compact_range", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_heads")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_audit_heads_tenant_id")),
    )
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_heads_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "audit_leaves",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_leaves")),
        sa.UniqueConstraint("tenant_id", "idx", name=op.f("uq_audit_leaves_tenant_id_idx")),
    )
    with op.batch_alter_table("audit_leaves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_leaves_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_credentials_verification_id"), ["verification_id"], unique=False
        )

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "tenant_id", "scope", "key", name=op.f("uq_idempotency_records_tenant_id_scope_key")
        ),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "providers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("claim_types", sa.JSON(), nullable=False),
        sa.Column("auth", sa.JSON(), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
        sa.Column("record_schema", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_providers_tenant_id_name")),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_providers_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("claim_type", sa.String(length=40), nullable=False),
        sa.Column("claim", sa.String(length=400), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("residency", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.Column("audit_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_verifications_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_verifications_subject_ref"), ["subject_ref"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_verifications_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "provider_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_endpoints_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_endpoints")),
        sa.UniqueConstraint(
            "provider_id", "region", name=op.f("uq_provider_endpoints_provider_id_region")
        ),
    )
    with op.batch_alter_table("provider_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_endpoints_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_provider_endpoints_tenant_id"), ["tenant_id"], unique=False
        )

    _row_level_security()


def downgrade() -> None:
    with op.batch_alter_table("provider_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_endpoints_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_provider_endpoints_provider_id"))

    op.drop_table("provider_endpoints")
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verifications_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_verifications_subject_ref"))
        batch_op.drop_index(batch_op.f("ix_verifications_provider_id"))

    op.drop_table("verifications")
    op.drop_table("tenants")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_providers_tenant_id"))

    op.drop_table("providers")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_tenant_id"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_verification_id"))
        batch_op.drop_index(batch_op.f("ix_credentials_tenant_id"))

    op.drop_table("credentials")
    with op.batch_alter_table("audit_leaves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_leaves_tenant_id"))

    op.drop_table("audit_leaves")
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_heads_tenant_id"))

    op.drop_table("audit_heads")
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_checkpoints_tenant_id"))

    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_tenant_id"))

    op.drop_table("api_tokens")


def _row_level_security() -> None:
    protect_tenant_tables(
        (
            "api_tokens",
            "providers",
            "provider_endpoints",
            "verifications",
            "credentials",
            "idempotency_records",
            "audit_leaves",
            "audit_heads",
            "audit_checkpoints",
        ),
        append_only=("audit_leaves", "audit_checkpoints"),
        platform_tables=("tenants",),
    )
