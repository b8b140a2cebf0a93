"""Personal data at rest is sealed with the tenant's data key (SQLite and PostgreSQL): roster
records keyed by pseudonym, a verification's free-text purpose as ``other`` plus a sealed
note; the migration seals what older versions stored in clear, and undoes it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from sqlalchemy import delete, select, text

from connector_support import Api
from ingest_support import csv_bytes, profile, push
from pavilion.cli.main import migrate
from pavilion.errors import CryptoError
from pavilion.ingest.models import RosterRecord
from pavilion.store.migrate import downgrade, upgrade
from pavilion.synth.roster import StudentRecord
from pavilion.tenancy.sealing import record_aad
from pavilion.tenancy.service import data_key_context
from pavilion.verification.models import Verification

FREE_TEXT = "checking Jane Doe's discount claim"


async def _quarantined(api: Api, provider_id: str, records: list[StudentRecord]) -> str:
    """An upload refused for an invalid row (a birth date in the future): its batch id."""
    body = csv_bytes(records).decode().replace(records[1].birth_date.isoformat(), "2099-01-01")
    refused = await push(api.client, api.auth("dp-admin"), provider_id, body.encode(), "csv")
    assert refused.status_code == 422, refused.text
    return str(refused.json()["batch_id"])


async def _quarantine_items(api: Api, provider_id: str, batch_id: str) -> list[dict[str, Any]]:
    got = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch_id}/quarantine",
        headers=api.auth("dp-admin"),
    )
    assert got.status_code == 200, got.text
    items: list[dict[str, Any]] = got.json()["items"]
    return items


async def _provider_with_roster(api: Api, records: list[StudentRecord]) -> tuple[str, str]:
    provider = await api.register_provider()
    dp = api.auth("dp-admin")
    mapping = await api.client.post(
        f"/v1/providers/{provider['id']}/mappings",
        content=yaml.safe_dump(profile(), allow_unicode=True),
        headers=dp | {"content-type": "application/yaml"},
    )
    assert mapping.status_code == 201, mapping.text
    upload = await push(api.client, dp, provider["id"], csv_bytes(records), "csv")
    assert upload.status_code == 201, upload.text
    return str(provider["id"]), str(upload.json()["id"])


async def _verify(api: Api, provider_id: str, student: StudentRecord, purpose: str) -> str:
    response = await api.client.post(
        "/v1/verifications",
        json={
            "provider_id": provider_id,
            "claim": {"type": "student_status"},
            "subject": {"identifiers": {"student_id": student.student_id}, "residency": "EU"},
            "purpose": purpose,
            "format": "jwt_vc",
        },
        headers=api.auth("broker"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _raw(api: Api, statement: str) -> list[Any]:
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        return list((await session.execute(text(statement))).all())


async def test_records_and_purposes_are_sealed_and_still_read(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider_id, batch_id = await _provider_with_roster(api, roster[:30])
    coded = await _verify(api, provider_id, roster[0], "Student-Discount")
    noted = await _verify(api, provider_id, roster[0], FREE_TEXT)
    stored = await _raw(api, "SELECT * FROM ingest_roster_records")
    assert len(stored) == 30
    dump = repr(stored)
    for student in roster[:30]:
        assert student.student_id not in dump
        assert student.family_name.casefold() not in dump.casefold()
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        sealer = await api.rt.tenant_keys.sealer(session, api.tenant_id)
        refs = set((await session.execute(select(RosterRecord.subject_ref))).scalars())
        record = await api.rt.rosters.get(session, api.tenant_id, provider_id, roster[3].student_id)
        padded = await api.rt.rosters.get(
            session, api.tenant_id, provider_id, f"  {roster[3].student_id} "
        )
        nobody = await api.rt.rosters.get(session, api.tenant_id, provider_id, "S0")
        rows = {
            v.id: v
            for v in (
                await session.execute(
                    select(Verification).where(Verification.id.in_([coded, noted]))
                )
            ).scalars()
        }
    assert refs == {sealer.pseudonym(s.student_id) for s in roster[:30]}
    assert record is not None
    assert record["subject_id"] == roster[3].student_id
    assert padded == record
    assert nobody is None
    assert (rows[coded].purpose_code, rows[coded].purpose_note) == ("student_discount", None)
    assert rows[noted].purpose_code == "other"
    note = rows[noted].purpose_note
    assert note is not None
    assert b"Jane" not in note
    aad = record_aad(api.tenant_id, "verifications", noted)
    assert sealer.open(note, aad).decode() == FREE_TEXT
    with pytest.raises(CryptoError):  # bound to its row: another verification's id fails
        sealer.open(note, record_aad(api.tenant_id, "verifications", coded))
    check = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch_id}", headers=api.auth("dp-admin")
    )
    assert check.json()["integrity"] == "verified (manifest and stored records)"

    rejected = await _quarantined(api, provider_id, roster[40:44])
    dump = repr(await _raw(api, "SELECT * FROM ingest_quarantine"))
    assert roster[41].student_id not in dump
    assert "2099-01-01" not in dump
    items = await _quarantine_items(api, provider_id, rejected)
    assert [i["row"] for i in items] == [2]
    assert items[0]["record"]["student_id"] == roster[41].student_id
    assert {r["code"] for r in items[0]["reasons"]} == {"future"}

    async with api.rt.db.transaction(api.tenant_id) as session:  # a record removed
        await session.execute(
            delete(RosterRecord).where(
                RosterRecord.subject_ref == sealer.pseudonym(roster[7].student_id)
            )
        )
    check = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch_id}", headers=api.auth("dp-admin")
    )
    assert check.status_code == 422
    assert "29 records stored, 30 signed" in check.json()["detail"]


async def test_the_migration_seals_rows_stored_in_clear_and_undoes_it(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider_id, batch_id = await _provider_with_roster(api, roster[:12])
    rejected = await _quarantined(api, provider_id, roster[40:44])
    items = await _quarantine_items(api, provider_id, rejected)
    noted = await _verify(api, provider_id, roster[1], FREE_TEXT)
    coded = await _verify(api, provider_id, roster[1], "eligibility")
    url = api.rt.settings.database_migration_url
    keystore = api.rt.keystore

    def data_keys(tenant_id: str, kek_id: str, wrapped: bytes) -> bytes:
        return keystore.unwrap_key(kek_id, wrapped, data_key_context(tenant_id))

    await asyncio.to_thread(downgrade, url, "0301", data_keys=data_keys)
    clear = dict(await _raw(api, "SELECT subject_key, record FROM ingest_roster_records"))
    assert set(clear) == {s.student_id for s in roster[:12]}
    assert json.loads(clear[roster[5].student_id])["subject_id"] == roster[5].student_id
    assert roster[41].student_id in repr(await _raw(api, "SELECT record FROM ingest_quarantine"))
    purposes = dict(await _raw(api, "SELECT id, purpose FROM verifications"))
    assert purposes[noted] == FREE_TEXT
    assert purposes[coded] == "eligibility"

    with pytest.raises(RuntimeError, match="pavilion db upgrade"):  # no keys: refused, undone
        await asyncio.to_thread(upgrade, url)
    assert len(await _raw(api, "SELECT record FROM ingest_roster_records")) == 12

    # `pavilion db upgrade`: it opens the keystore the settings name to unwrap the keys
    report = await asyncio.to_thread(migrate, api.rt.settings)
    assert [r for r, _ in report.applied] == ["1406", "1407"]
    dump = repr(await _raw(api, "SELECT * FROM ingest_roster_records"))
    assert roster[5].student_id not in dump
    assert roster[41].student_id not in repr(await _raw(api, "SELECT * FROM ingest_quarantine"))
    assert await _quarantine_items(api, provider_id, rejected) == items
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        record = await api.rt.rosters.get(session, api.tenant_id, provider_id, roster[5].student_id)
        rows = {v.id: v for v in (await session.execute(select(Verification))).scalars()}
    assert record is not None
    assert record["subject_id"] == roster[5].student_id
    assert rows[coded].purpose_code == "eligibility"
    assert rows[coded].purpose_note is None
    assert rows[noted].purpose_code == "other"
    check = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch_id}", headers=api.auth("dp-admin")
    )
    assert check.json()["integrity"] == "verified (manifest and stored records)"
    refreshed = await api.client.post(  # the sealed purpose is repeated by a refresh
        f"/v1/verifications/{noted}/refresh",
        json={"identifiers": {"student_id": roster[1].student_id}},
        headers=api.auth("broker"),
    )
    assert refreshed.status_code == 201, refreshed.text
    async with api.rt.db.transaction(api.tenant_id, readonly=True) as session:
        again = await session.get(Verification, refreshed.json()["id"])
        sealer = await api.rt.tenant_keys.sealer(session, api.tenant_id)
    assert again is not None
    assert again.purpose_note is not None
    aad = record_aad(api.tenant_id, "verifications", again.id)
    assert sealer.open(again.purpose_note, aad).decode() == FREE_TEXT
    coded_again = await api.client.post(
        f"/v1/verifications/{coded}/refresh",
        json={"identifiers": {"student_id": roster[1].student_id}},
        headers=api.auth("broker"),
    )
    assert coded_again.status_code == 201, coded_again.text
