"""at rest: roster records sealed and keyed by pseudonym; a verification's purpose as a code
plus a sealed note

Revision ID: 1406
Revises: 0301
Create Date: 2026-12-07

Canonical roster records (names, birth dates, ids) were plain JSON keyed by the subject's id,
and a verification's free-text purpose plain text. Now a record is sealed with its tenant's
data key (AES-256-GCM, a random nonce in front; the tenant, table and record as associated
data) and keyed by HMAC-SHA-256 of the trimmed NFC subject id under a key derived from the
data key; a purpose is an enumerated code, and a text that is not one is code ``other`` with
the text sealed as its note. Existing rows are sealed here, which needs the tenants' data keys:
``pavilion db upgrade`` hands the migration a way to unwrap them (``data_keys``); without it,
a database that holds such rows is refused with what to run. The sealing format is written
out here, frozen, rather than imported: tests hold the application to open what this writes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision = "1406"
down_revision = "0301"
branch_labels = None
depends_on = None

DataKeys = Callable[[str, str, bytes], bytes]  # (tenant id, kek id, wrapped key) -> data key

_CODES = frozenset(
    {
        "eligibility",
        "age_verification",
        "student_discount",
        "membership",
        "enrolment",
        "employment",
        "account_opening",
        "fraud_prevention",
        "credential_refresh",
    }
)
_ROSTER = "ingest_roster_records"
_VERIFICATIONS = "verifications"


def _aad(tenant_id: str, table: str, record_id: str) -> bytes:
    return f"pavilion/sealed/v1|{tenant_id}|{table}|{record_id}".encode()


def _code(purpose: str) -> str | None:
    code = purpose.strip().lower().replace("-", "_").replace(" ", "_")
    return code if code in _CODES else None


class _Sealer:
    def __init__(self, key: bytes) -> None:
        self.aead = AESGCM(key)
        self.ref_key = hmac.new(key, b"pavilion/record-ref/v1", hashlib.sha256).digest()

    def seal(self, plain: str, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, plain.encode("utf-8"), aad)

    def open(self, sealed: bytes, aad: bytes) -> str:
        return self.aead.decrypt(sealed[:12], sealed[12:], aad).decode("utf-8")

    def pseudonym(self, identifier: str) -> str:
        data = unicodedata.normalize("NFC", identifier.strip()).encode("utf-8")
        return hmac.new(self.ref_key, data, hashlib.sha256).hexdigest()


def _data_keys() -> DataKeys | None:
    config = op.get_context().config
    keys: DataKeys | None = config.attributes.get("data_keys") if config is not None else None
    return keys


def _tenants(bind: sa.Connection) -> list[tuple[str, str, bytes]]:
    rows = bind.execute(sa.text("SELECT id, kek_id, wrapped_data_key FROM tenants")).all()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


def _as_tenant(bind: sa.Connection, tenant_id: str) -> None:
    """Row-level security shows the migration one tenant's rows at a time (PostgreSQL)."""
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})


def _sealer(tenant: tuple[str, str, bytes], keys: DataKeys | None, what: str) -> _Sealer:
    if keys is None:
        raise RuntimeError(
            f"tenant {tenant[0]} has {what} stored in clear that this migration seals with the "
            "tenant's data key: run `pavilion db upgrade` with the connector's keystore "
            "settings (PAVILION_KEYSTORE_*, PAVILION_DATA_DIR) so that it can unwrap the key"
        )
    return _Sealer(keys(*tenant))


def _seal_existing(bind: sa.Connection) -> None:
    keys = _data_keys()
    for tenant in _tenants(bind):
        tenant_id = tenant[0]
        _as_tenant(bind, tenant_id)
        records = bind.execute(
            sa.text(
                "SELECT provider_id, subject_key, record FROM ingest_roster_records "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ).all()
        purposes = bind.execute(
            sa.text("SELECT id, purpose FROM verifications WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).all()
        notes = [(vid, text) for vid, text in purposes if _code(text) is None]
        sealer = _sealer(tenant, keys, "roster records or purposes") if records or notes else None
        for vid, text in purposes:
            code = _code(text)
            note = None
            if code is None:
                assert sealer is not None
                note = sealer.seal(text, _aad(tenant_id, _VERIFICATIONS, vid))
            bind.execute(
                sa.text(
                    "UPDATE verifications SET purpose_code = :code, purpose_note = :note "
                    "WHERE tenant_id = :t AND id = :id"
                ),
                {"code": code or "other", "note": note, "t": tenant_id, "id": vid},
            )
        for provider_id, subject_key, record in records:
            assert sealer is not None
            ref = sealer.pseudonym(subject_key)
            sealed = sealer.seal(record, _aad(tenant_id, _ROSTER, f"{provider_id}/{ref}"))
            bind.execute(
                sa.text(
                    "UPDATE ingest_roster_records "
                    "SET subject_key = :ref, sealed = :sealed, record = NULL "
                    "WHERE tenant_id = :t AND provider_id = :p AND subject_key = :k"
                ),
                {"ref": ref, "sealed": sealed, "t": tenant_id, "p": provider_id, "k": subject_key},
            )
    _as_tenant(bind, "")


def _refuse_without_keys(bind: sa.Connection) -> None:
    """Before any DDL (SQLite's is not undone by a rollback): rows in clear need the keys."""
    if _data_keys() is not None:
        return
    for tenant in _tenants(bind):
        _as_tenant(bind, tenant[0])
        clear = bind.execute(
            sa.text("SELECT 1 FROM ingest_roster_records WHERE tenant_id = :t LIMIT 1"),
            {"t": tenant[0]},
        ).first()
        purposes = bind.execute(
            sa.text("SELECT purpose FROM verifications WHERE tenant_id = :t"), {"t": tenant[0]}
        ).scalars()
        if clear is not None or any(_code(p) is None for p in purposes):
            _sealer(tenant, None, "roster records or purposes")
    _as_tenant(bind, "")


def upgrade() -> None:
    _refuse_without_keys(op.get_bind())
    with op.batch_alter_table(_ROSTER, schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("record", existing_type=sa.Text(), nullable=True)
    with op.batch_alter_table(_VERIFICATIONS, schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("purpose_note", sa.LargeBinary(), nullable=True))
    _seal_existing(op.get_bind())
    with op.batch_alter_table(_ROSTER, schema=None) as batch_op:
        batch_op.drop_column("record")
        batch_op.alter_column("sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column(
            "subject_key",
            new_column_name="subject_ref",
            existing_type=sa.String(length=200),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table(_VERIFICATIONS, schema=None) as batch_op:
        batch_op.drop_column("purpose")
        batch_op.alter_column("purpose_code", existing_type=sa.String(length=40), nullable=False)


def _open_existing(bind: sa.Connection) -> None:
    keys = _data_keys()
    for tenant in _tenants(bind):
        tenant_id = tenant[0]
        _as_tenant(bind, tenant_id)
        records = bind.execute(
            sa.text(
                "SELECT provider_id, subject_ref, sealed FROM ingest_roster_records "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ).all()
        purposes = bind.execute(
            sa.text(
                "SELECT id, purpose_code, purpose_note FROM verifications WHERE tenant_id = :t"
            ),
            {"t": tenant_id},
        ).all()
        sealed_notes = any(note is not None for _, _, note in purposes)
        sealer = _sealer(tenant, keys, "sealed rows") if records or sealed_notes else None
        for vid, code, note in purposes:
            text = code
            if note is not None:
                assert sealer is not None
                text = sealer.open(bytes(note), _aad(tenant_id, _VERIFICATIONS, vid))
            bind.execute(
                sa.text("UPDATE verifications SET purpose = :p WHERE tenant_id = :t AND id = :id"),
                {"p": text, "t": tenant_id, "id": vid},
            )
        for provider_id, ref, sealed in records:
            assert sealer is not None
            record = sealer.open(bytes(sealed), _aad(tenant_id, _ROSTER, f"{provider_id}/{ref}"))
            subject_id = json.loads(record)["subject_id"]
            bind.execute(
                sa.text(
                    "UPDATE ingest_roster_records SET subject_ref = :k, record = :r "
                    "WHERE tenant_id = :t AND provider_id = :p AND subject_ref = :ref"
                ),
                {"k": subject_id, "r": record, "t": tenant_id, "p": provider_id, "ref": ref},
            )
    _as_tenant(bind, "")


def downgrade() -> None:
    """Back to records and purposes in clear (the tenants' data keys are needed again)."""
    with op.batch_alter_table(_ROSTER, schema=None) as batch_op:
        batch_op.alter_column(
            "subject_ref",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("record", sa.Text(), nullable=True))
    with op.batch_alter_table(_VERIFICATIONS, schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=200), nullable=True))
    _open_existing(op.get_bind())
    with op.batch_alter_table(_ROSTER, schema=None) as batch_op:
        batch_op.drop_column("sealed")
        batch_op.alter_column("record", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column(
            "subject_ref",
            new_column_name="subject_key",
            existing_type=sa.String(length=200),
            existing_nullable=False,
        )
    with op.batch_alter_table(_VERIFICATIONS, schema=None) as batch_op:
        batch_op.drop_column("purpose_note")
        batch_op.drop_column("purpose_code")
        batch_op.alter_column("purpose", existing_type=sa.String(length=200), nullable=False)
