"""privacy engine: PSI rosters, privacy budget ledger, privacy receipts; AnonCreds issuance

Revision ID: 0401
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import protect_tenant_tables

revision = "0401"
down_revision = "0001"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=36), nullable=False)


def _index_tenant(table: str) -> None:
    op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "psi_roster_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("kid", sa.String(length=100), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_psi_roster_keys")),
        sa.UniqueConstraint(
            "tenant_id", "provider_id", name=op.f("uq_psi_roster_keys_tenant_id_provider_id")
        ),
    )
    _index_tenant("psi_roster_keys")

    op.create_table(
        "psi_rosters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("set_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("tag_bytes", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("fpr", sa.Float(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("activated_at", _TZ, nullable=True),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_psi_rosters")),
        sa.UniqueConstraint(
            "tenant_id",
            "provider_id",
            "set_name",
            "version",
            name=op.f("uq_psi_rosters_tenant_id_provider_id_set_name_version"),
        ),
    )
    _index_tenant("psi_rosters")
    op.create_index("ix_psi_rosters_provider_id", "psi_rosters", ["provider_id"], unique=False)

    op.create_table(
        "psi_roster_chunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("roster_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _tenant(),
        sa.ForeignKeyConstraint(
            ["roster_id"],
            ["psi_rosters.id"],
            name=op.f("fk_psi_roster_chunks_roster_id_psi_rosters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_psi_roster_chunks")),
        sa.UniqueConstraint("roster_id", "seq", name=op.f("uq_psi_roster_chunks_roster_id_seq")),
    )
    _index_tenant("psi_roster_chunks")
    op.create_index(
        "ix_psi_roster_chunks_roster_id", "psi_roster_chunks", ["roster_id"], unique=False
    )

    op.create_table(
        "privacy_budgets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("epsilon_limit", sa.BigInteger(), nullable=False),
        sa.Column("delta_limit", sa.BigInteger(), nullable=False),
        sa.Column("period_start", _TZ, nullable=False),
        sa.Column("spent_epsilon", sa.BigInteger(), nullable=False),
        sa.Column("spent_delta", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_budgets")),
        sa.UniqueConstraint(
            "tenant_id", "dataset", name=op.f("uq_privacy_budgets_tenant_id_dataset")
        ),
    )
    _index_tenant("privacy_budgets")

    op.create_table(
        "privacy_budget_ledger",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("period_start", _TZ, nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=False),
        sa.Column("statistic", sa.String(length=16), nullable=False),
        sa.Column("mechanism", sa.String(length=16), nullable=False),
        sa.Column("epsilon", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("rho", sa.Float(), nullable=True),
        sa.Column("query_sha256", sa.String(length=64), nullable=False),
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_budget_ledger")),
    )
    _index_tenant("privacy_budget_ledger")
    op.create_index(
        "ix_privacy_budget_ledger_dataset", "privacy_budget_ledger", ["dataset"], unique=False
    )

    op.create_table(
        "privacy_receipts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("receipt_sha256", sa.String(length=64), nullable=False),
        sa.Column("audit_index", sa.Integer(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_receipts")),
    )
    _index_tenant("privacy_receipts")
    op.create_index("ix_privacy_receipts_kind", "privacy_receipts", ["kind"], unique=False)

    op.create_table(
        "anoncreds_issuers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("issuer_id", sa.String(length=400), nullable=False),
        sa.Column("schema_id", sa.String(length=500), nullable=False),
        sa.Column("schema_json", sa.Text(), nullable=False),
        sa.Column("cred_def_id", sa.String(length=500), nullable=False),
        sa.Column("cred_def_json", sa.Text(), nullable=False),
        sa.Column("key_proof_json", sa.Text(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anoncreds_issuers")),
        sa.UniqueConstraint(
            "tenant_id", "provider_id", name=op.f("uq_anoncreds_issuers_tenant_id_provider_id")
        ),
    )
    _index_tenant("anoncreds_issuers")
    op.create_index(
        "ix_anoncreds_issuers_cred_def_id", "anoncreds_issuers", ["cred_def_id"], unique=False
    )

    op.create_table(
        "anoncreds_registries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("issuer_row_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rev_reg_def_id", sa.String(length=500), nullable=False),
        sa.Column("rev_reg_def_json", sa.Text(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=False),
        sa.Column("tails_hash", sa.String(length=100), nullable=False),
        sa.Column("tails", sa.LargeBinary(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.ForeignKeyConstraint(
            ["issuer_row_id"],
            ["anoncreds_issuers.id"],
            name=op.f("fk_anoncreds_registries_issuer_row_id_anoncreds_issuers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anoncreds_registries")),
        sa.UniqueConstraint(
            "tenant_id",
            "rev_reg_def_id",
            name=op.f("uq_anoncreds_registries_tenant_id_rev_reg_def_id"),
        ),
        sa.UniqueConstraint(
            "issuer_row_id", "seq", name=op.f("uq_anoncreds_registries_issuer_row_id_seq")
        ),
    )
    _index_tenant("anoncreds_registries")
    op.create_index(
        "ix_anoncreds_registries_tails_hash", "anoncreds_registries", ["tails_hash"], unique=False
    )

    op.create_table(
        "anoncreds_status_lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("list_json", sa.Text(), nullable=False),
        sa.Column("revoked", sa.JSON(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["anoncreds_registries.id"],
            name=op.f("fk_anoncreds_status_lists_registry_id_anoncreds_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anoncreds_status_lists")),
        sa.UniqueConstraint(
            "registry_id", "timestamp", name=op.f("uq_anoncreds_status_lists_registry_id_timestamp")
        ),
    )
    _index_tenant("anoncreds_status_lists")

    op.create_table(
        "anoncreds_offers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("issuer_row_id", sa.String(length=36), nullable=False),
        sa.Column("offer_json", sa.Text(), nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("used_at", _TZ, nullable=True),
        _tenant(),
        sa.ForeignKeyConstraint(
            ["issuer_row_id"],
            ["anoncreds_issuers.id"],
            name=op.f("fk_anoncreds_offers_issuer_row_id_anoncreds_issuers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anoncreds_offers")),
    )
    _index_tenant("anoncreds_offers")

    op.create_table(
        "anoncreds_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=False),
        sa.Column("rev_index", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("revoked_at", _TZ, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        _tenant(),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["anoncreds_registries.id"],
            name=op.f("fk_anoncreds_credentials_registry_id_anoncreds_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anoncreds_credentials")),
        sa.UniqueConstraint(
            "registry_id", "rev_index", name=op.f("uq_anoncreds_credentials_registry_id_rev_index")
        ),
    )
    _index_tenant("anoncreds_credentials")
    op.create_index(
        "ix_anoncreds_credentials_subject_ref",
        "anoncreds_credentials",
        ["subject_ref"],
        unique=False,
    )

    protect_tenant_tables(
        (
            "psi_roster_keys",
            "psi_rosters",
            "psi_roster_chunks",
            "privacy_budgets",
            "privacy_budget_ledger",
            "privacy_receipts",
            "anoncreds_issuers",
            "anoncreds_registries",
            "anoncreds_status_lists",
            "anoncreds_offers",
            "anoncreds_credentials",
        ),
        append_only=("privacy_budget_ledger", "privacy_receipts", "anoncreds_status_lists"),
    )


def downgrade() -> None:
    for table in (
        "anoncreds_credentials",
        "anoncreds_offers",
        "anoncreds_status_lists",
        "anoncreds_registries",
        "anoncreds_issuers",
        "privacy_receipts",
        "privacy_budget_ledger",
        "privacy_budgets",
        "psi_roster_chunks",
        "psi_rosters",
        "psi_roster_keys",
    ):
        op.drop_table(table)
