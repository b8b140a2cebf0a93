"""ingest: DP profiles (schema + mapping), upload keys, batches, quarantine, canonical rosters,
lineage events and their dataset links

Revision ID: 0301
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import protect_tenant_tables

revision = "0301"
down_revision = "0001"
branch_labels = None
depends_on = None

_TENANT_TABLES = (
    "ingest_profiles",
    "ingest_upload_keys",
    "ingest_batches",
    "ingest_quarantine",
    "ingest_roster_records",
    "ingest_lineage_events",
    "ingest_lineage_links",
)


def _provider_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["provider_id"],
        ["providers.id"],
        name=op.f(f"fk_{table}_provider_id_providers"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "ingest_profiles",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        _provider_fk("ingest_profiles"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_profiles")),
        sa.UniqueConstraint(
            "tenant_id",
            "provider_id",
            "version",
            name=op.f("uq_ingest_profiles_tenant_id_provider_id_version"),
        ),
    )
    op.create_index(op.f("ix_ingest_profiles_provider_id"), "ingest_profiles", ["provider_id"])
    op.create_index(op.f("ix_ingest_profiles_tenant_id"), "ingest_profiles", ["tenant_id"])

    op.create_table(
        "ingest_upload_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("kid", sa.String(length=100), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        _provider_fk("ingest_upload_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_upload_keys")),
        sa.UniqueConstraint(
            "provider_id", "kid", name=op.f("uq_ingest_upload_keys_provider_id_kid")
        ),
    )
    op.create_index(
        op.f("ix_ingest_upload_keys_provider_id"), "ingest_upload_keys", ["provider_id"]
    )
    op.create_index(op.f("ix_ingest_upload_keys_tenant_id"), "ingest_upload_keys", ["tenant_id"])

    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("profile_version", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("input_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_valid", sa.Integer(), nullable=False),
        sa.Column("rows_invalid", sa.Integer(), nullable=False),
        sa.Column("rows_applied", sa.Integer(), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_jws", sa.Text(), nullable=False),
        sa.Column("dp_signature_kid", sa.String(length=100), nullable=True),
        sa.Column("lineage_run_id", sa.String(length=36), nullable=False),
        sa.Column("audit_index", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        _provider_fk("ingest_batches"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_batches")),
    )
    op.create_index(
        "ix_ingest_batches_provider_received", "ingest_batches", ["provider_id", "received_at"]
    )
    op.create_index(op.f("ix_ingest_batches_tenant_id"), "ingest_batches", ["tenant_id"])

    op.create_table(
        "ingest_quarantine",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
            name=op.f("fk_ingest_quarantine_batch_id_ingest_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_quarantine")),
    )
    op.create_index(op.f("ix_ingest_quarantine_batch_id"), "ingest_quarantine", ["batch_id"])
    op.create_index(op.f("ix_ingest_quarantine_tenant_id"), "ingest_quarantine", ["tenant_id"])

    op.create_table(
        "ingest_roster_records",
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        _provider_fk("ingest_roster_records"),
        sa.PrimaryKeyConstraint(
            "provider_id", "subject_key", name=op.f("pk_ingest_roster_records")
        ),
    )
    op.create_index(
        op.f("ix_ingest_roster_records_batch_id"), "ingest_roster_records", ["batch_id"]
    )
    op.create_index(
        op.f("ix_ingest_roster_records_tenant_id"), "ingest_roster_records", ["tenant_id"]
    )

    op.create_table(
        "ingest_lineage_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_name", sa.String(length=300), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_lineage_events")),
    )
    op.create_index(op.f("ix_ingest_lineage_events_run_id"), "ingest_lineage_events", ["run_id"])
    op.create_index(
        op.f("ix_ingest_lineage_events_tenant_id"), "ingest_lineage_events", ["tenant_id"]
    )

    op.create_table(
        "ingest_lineage_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("job_name", sa.String(length=300), nullable=False),
        sa.Column("dataset", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_lineage_links")),
    )
    op.create_index(
        "ix_ingest_lineage_links_dataset", "ingest_lineage_links", ["tenant_id", "dataset"]
    )
    op.create_index(op.f("ix_ingest_lineage_links_event_id"), "ingest_lineage_links", ["event_id"])
    op.create_index(
        op.f("ix_ingest_lineage_links_tenant_id"), "ingest_lineage_links", ["tenant_id"]
    )

    protect_tenant_tables(
        _TENANT_TABLES, append_only=("ingest_lineage_events", "ingest_lineage_links")
    )


def downgrade() -> None:
    for table in reversed(_TENANT_TABLES):
        op.drop_table(table)
