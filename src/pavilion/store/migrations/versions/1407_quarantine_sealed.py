"""at rest: quarantined rows (an upload's invalid rows and their reasons) sealed

Revision ID: 1407
Revises: 1406
Create Date: 2026-12-07

A quarantined row kept the invalid row as sent (names, birth dates, ids) and its reasons
(which may quote values) as plain JSON. Now both are one JSON object sealed with the tenant's
data key (AES-256-GCM, a random nonce in front; the tenant, ``ingest_quarantine`` and the row
id as associated data). Existing rows are sealed here with the keys ``pavilion db upgrade``
hands over (``data_keys``), as in revision 1406; without them a database holding such rows is
refused before any change. The format is written out here, frozen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision = "1407"
down_revision = "1406"
branch_labels = None
depends_on = None

DataKeys = Callable[[str, str, bytes], bytes]


def _aad(tenant_id: str, row_id: str) -> bytes:
    return f"pavilion/sealed/v1|{tenant_id}|ingest_quarantine|{row_id}".encode()


def _data_keys() -> DataKeys | None:
    config = op.get_context().config
    keys: DataKeys | None = config.attributes.get("data_keys") if config is not None else None
    return keys


def _as_tenant(bind: sa.Connection, tenant_id: str) -> None:
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})


def _tenants_with_rows(bind: sa.Connection) -> list[tuple[str, str, bytes]]:
    tenants = bind.execute(sa.text("SELECT id, kek_id, wrapped_data_key FROM tenants")).all()
    found = []
    for tenant_id, kek_id, wrapped in tenants:
        _as_tenant(bind, tenant_id)
        any_row = bind.execute(
            sa.text("SELECT 1 FROM ingest_quarantine WHERE tenant_id = :t LIMIT 1"),
            {"t": tenant_id},
        ).first()
        if any_row is not None:
            found.append((tenant_id, kek_id, bytes(wrapped)))
    _as_tenant(bind, "")
    return found


def _aead(tenant: tuple[str, str, bytes]) -> AESGCM:
    keys = _data_keys()
    if keys is None:
        raise RuntimeError(
            f"tenant {tenant[0]} has quarantined rows stored in clear that this migration seals "
            "with the tenant's data key: run `pavilion db upgrade` with the connector's "
            "keystore settings (PAVILION_KEYSTORE_*, PAVILION_DATA_DIR) so that it can unwrap it"
        )
    return AESGCM(keys(*tenant))


def _loaded(value: object) -> object:
    return json.loads(value) if isinstance(value, str | bytes) else value


def upgrade() -> None:
    bind = op.get_bind()
    tenants = _tenants_with_rows(bind)
    ciphers = [(tenant, _aead(tenant)) for tenant in tenants]  # refused before any DDL
    with op.batch_alter_table("ingest_quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
    for (tenant_id, _kek, _wrapped), aead in ciphers:
        _as_tenant(bind, tenant_id)
        rows = bind.execute(
            sa.text("SELECT id, reasons, record FROM ingest_quarantine WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).all()
        for row_id, reasons, record in rows:
            body = json.dumps(
                {"reasons": _loaded(reasons), "record": _loaded(record)}, ensure_ascii=False
            )
            nonce = os.urandom(12)
            sealed = nonce + aead.encrypt(nonce, body.encode("utf-8"), _aad(tenant_id, row_id))
            bind.execute(
                sa.text(
                    "UPDATE ingest_quarantine SET sealed = :s WHERE tenant_id = :t AND id = :i"
                ),
                {"s": sealed, "t": tenant_id, "i": row_id},
            )
    _as_tenant(bind, "")
    with op.batch_alter_table("ingest_quarantine", schema=None) as batch_op:
        batch_op.drop_column("reasons")
        batch_op.drop_column("record")
        batch_op.alter_column("sealed", existing_type=sa.LargeBinary(), nullable=False)


def downgrade() -> None:
    """Back to rows in clear (the tenants' data keys are needed again)."""
    bind = op.get_bind()
    ciphers = [(tenant, _aead(tenant)) for tenant in _tenants_with_rows(bind)]
    with op.batch_alter_table("ingest_quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reasons", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("record", sa.JSON(), nullable=True))
    for (tenant_id, _kek, _wrapped), aead in ciphers:
        _as_tenant(bind, tenant_id)
        rows = bind.execute(
            sa.text("SELECT id, sealed FROM ingest_quarantine WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).all()
        for row_id, sealed in rows:
            raw = bytes(sealed)
            body = json.loads(aead.decrypt(raw[:12], raw[12:], _aad(tenant_id, row_id)))
            bind.execute(
                sa.text(
                    "UPDATE ingest_quarantine SET reasons = :reasons, record = :record "
                    "WHERE tenant_id = :t AND id = :i"
                ).bindparams(
                    sa.bindparam("reasons", type_=sa.JSON()),
                    sa.bindparam("record", type_=sa.JSON()),
                ),
                {"reasons": body["reasons"], "record": body["record"], "t": tenant_id, "i": row_id},
            )
    _as_tenant(bind, "")
    with op.batch_alter_table("ingest_quarantine", schema=None) as batch_op:
        batch_op.drop_column("sealed")
        batch_op.alter_column("reasons", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("record", existing_type=sa.JSON(), nullable=False)
