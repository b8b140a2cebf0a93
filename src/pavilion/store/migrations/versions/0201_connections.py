"""connections: endpoint weights and tags, DP auth and TLS settings, residency adequacy

Several endpoints may now share a region (unique per provider, region and URL); endpoints get
a balancing weight and extra jurisdiction tags; providers get TLS settings and one more sealed
secrets column (OAuth2 client secret, client-assertion key, mTLS client key); tenants get
their lists of adequate jurisdictions per residency.

Revision ID: 0201
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pavilion.store.rls import protect_tenant_tables

revision = "0201"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_secrets", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("tls", sa.JSON(), nullable=True))

    with op.batch_alter_table("provider_endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("weight", sa.Float(), nullable=False, server_default=sa.text("1.0"))
        )
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.drop_constraint("uq_provider_endpoints_provider_id_region", type_="unique")
        batch_op.create_unique_constraint(
            "uq_provider_endpoints_provider_id_region_url", ["provider_id", "region", "url"]
        )

    op.create_table(
        "residency_adequacy",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("residency", sa.String(length=16), nullable=False),
        sa.Column("jurisdictions", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residency_adequacy")),
        sa.UniqueConstraint(
            "tenant_id", "residency", name=op.f("uq_residency_adequacy_tenant_id_residency")
        ),
    )
    with op.batch_alter_table("residency_adequacy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_residency_adequacy_tenant_id"), ["tenant_id"], unique=False
        )

    protect_tenant_tables(("residency_adequacy",))


def downgrade() -> None:
    with op.batch_alter_table("residency_adequacy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_residency_adequacy_tenant_id"))
    op.drop_table("residency_adequacy")

    with op.batch_alter_table("provider_endpoints", schema=None) as batch_op:
        batch_op.drop_constraint("uq_provider_endpoints_provider_id_region_url", type_="unique")
        batch_op.create_unique_constraint(
            "uq_provider_endpoints_provider_id_region", ["provider_id", "region"]
        )
        batch_op.drop_column("tags")
        batch_op.drop_column("weight")

    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_column("tls")
        batch_op.drop_column("sealed_secrets")
