"""Roster uploads through the running API on SQLite and on PostgreSQL (RLS, non-owner role)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, update

from connector_support import Api
from ingest_support import (
    MEDIA,
    Endless,
    body_of,
    csv_bytes,
    detached_jws,
    ec_key,
    ndjson_bytes,
    profile,
    public_jwk,
    push,
    roster,
    xml_bytes,
)
from pavilion.ingest.models import (
    LineageEvent,
    QuarantinedRow,
    RosterBatch,
    RosterRecord,
)
from pavilion.ingest.roster_store import open_record
from pavilion.tenancy.roles import Role

PROBLEM = "application/problem+json"
RECORDS = roster(40)


async def _setup(api: Api, document: dict[str, Any] | None = None) -> str:
    provider = await api.register_provider()
    response = await api.client.post(
        f"/v1/providers/{provider['id']}/mappings",
        content=yaml.safe_dump(document or profile(), allow_unicode=True),
        headers=api.auth("dp-admin") | {"content-type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 1
    return str(provider["id"])


async def _count(api: Api, model: Any, **where: Any) -> int:
    async with api.rt.db.transaction(api.tenant_id) as session:
        query = select(func.count()).select_from(model).where(model.tenant_id == api.tenant_id)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int((await session.execute(query)).scalar_one())


async def _records(api: Api, provider_id: str) -> dict[str, str]:
    """The stored roster opened: subject id -> canonical JSON."""
    async with api.rt.db.transaction(api.tenant_id) as session:
        sealer = await api.rt.tenant_keys.sealer(session, api.tenant_id)
        rows = await session.execute(
            select(RosterRecord.subject_ref, RosterRecord.sealed).where(
                RosterRecord.tenant_id == api.tenant_id, RosterRecord.provider_id == provider_id
            )
        )
        texts = [open_record(sealer, provider_id, ref, sealed) for ref, sealed in rows.all()]
    return {json.loads(text)["subject_id"]: text for text in texts}


async def test_a_push_is_applied_verified_scored_and_traced(api: Api, tmp_path: Path) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    response = await push(api.client, dp, provider_id, csv_bytes(RECORDS), "csv")
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["status"] == "applied"
    assert batch["rows"] == {"total": 40, "valid": 40, "invalid": 0, "applied": 40}
    assert batch["integrity"] == "signed"
    assert batch["manifest"]["rows_applied"] == 40
    assert batch["manifest_jws"].count(".") == 2
    assert batch["quality"]["score"] >= 80
    stored = await _records(api, provider_id)
    assert set(stored) == {r.student_id for r in RECORDS}
    first = json.loads(stored[RECORDS[0].student_id])
    assert first["given_name"] == RECORDS[0].given_name.casefold()

    read = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch['id']}", headers=dp
    )
    assert read.status_code == 200
    assert read.json()["integrity"] == "verified (manifest and stored records)"
    listing = await api.client.get(f"/v1/providers/{provider_id}/roster-uploads", headers=dp)
    assert [b["id"] for b in listing.json()] == [batch["id"]]

    # the same roster in every other format gives the same canonical roster
    for fmt in ("ndjson", "json", "xml", "parquet"):
        again = await push(api.client, dp, provider_id, body_of(fmt, RECORDS, tmp_path), fmt)
        assert again.status_code == 201, (fmt, again.text)
        assert again.json()["manifest"]["output_sha256"] == batch["manifest"]["output_sha256"]
    old = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{batch['id']}", headers=dp
    )
    assert old.json()["integrity"] == "verified (manifest; records since replaced by a later batch)"

    quality = (await api.client.get(f"/v1/providers/{provider_id}/quality", headers=dp)).json()
    assert len(quality["points"]) == 5
    assert quality["threshold"] == 80
    assert quality["direction"] == "flat"
    assert set(quality["points"][0]["dimensions"]) == {
        "completeness",
        "validity",
        "uniqueness",
        "consistency",
        "timeliness",
    }

    dataset = f"pavilion.rosters.{provider_id}"
    lineage = await api.client.get(f"/v1/lineage/{dataset}", headers=api.auth("auditor"))
    assert lineage.status_code == 200
    graph = lineage.json()["graph"]
    assert {
        "from": f"dp.{provider_id}.roster",
        "to": f"ingest.roster_upload.{provider_id}",
    } in graph["edges"]
    assert len(lineage.json()["events"]) == 5
    dot = await api.client.get(f"/v1/lineage/{dataset}?format=dot", headers=dp)
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    svg = await api.client.get(f"/v1/lineage/{dataset}?format=svg", headers=dp)
    assert svg.headers["x-lineage-format"] in ("svg", "dot")
    if svg.headers["x-lineage-format"] == "svg":
        assert b"<svg" in svg.content
    missing = await api.client.get("/v1/lineage/nothing.here", headers=dp)
    assert missing.status_code == 404


async def test_bad_input_is_reported_and_nothing_partial_is_applied(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    first = await push(api.client, dp, provider_id, csv_bytes(RECORDS), "csv")
    assert first.status_code == 201
    before = await _records(api, provider_id)
    good_csv = csv_bytes(RECORDS[:5]).decode()
    lines = good_csv.splitlines()

    async def refused(body: bytes, fmt: str, status: int = 422, **headers: str) -> dict[str, Any]:
        response = await push(api.client, dp, provider_id, body, fmt, **headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        problem: dict[str, Any] = response.json()
        return problem

    ragged = "\n".join([*lines[:3], lines[3].rsplit(",", 2)[0], *lines[4:]]) + "\n"
    problem = await refused(ragged.encode(), "csv")
    assert problem["type"].endswith("/malformed-upload")
    assert problem["errors"][0]["row"] == 3
    assert problem["errors"][0]["line"] == 4
    assert "has 7 fields, the header has 9" in problem["detail"]
    assert problem["batch_id"]

    latin = good_csv.replace(RECORDS[1].given_name, "José").encode("latin-1", "replace")
    assert "not valid UTF-8 at byte" in (await refused(latin, "csv"))["detail"]
    assert "empty" in (await refused(b"", "csv"))["detail"]
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><roster><r>&a;</r></roster>'
    assert (await refused(bomb, "xml"))["reason"] == "xml-dtd"

    wrong_types = ndjson_bytes(RECORDS[:3]).replace(
        b'"enrolment_status": "', b'"enrolment_status": 5, "x": "', 1
    )
    problem = await refused(wrong_types, "ndjson")
    assert problem["type"].endswith("/batch-rejected")
    assert any(
        e.get("field") == "enrolment_status" and e.get("row") == 1 for e in problem["errors"]
    )

    missing = "\n".join(line.rsplit(",", 1)[0] for line in lines).replace(",memberships", "")
    no_status = "\n".join(
        ",".join(p for i, p in enumerate(line.split(",")) if i != 5) for line in lines
    )
    problem = await refused(no_status.encode(), "csv")
    assert problem["reason"] == "schema"
    assert problem["errors"][0] == {
        "code": "missing-field",
        "message": "enrolment_status is required but the upload has no such field",
        "field": "enrolment_status",
    }
    assert missing  # a shorter header is equally refused above

    future = good_csv.replace(RECORDS[2].birth_date.isoformat(), "2099-01-01")
    duplicate = future + lines[1] + "\n"
    problem = await refused(duplicate.encode(), "csv")
    assert problem["reason"] == "invalid-rows"
    assert problem["rows"]["invalid"] == 3
    found = {(e["row"], e["field"], e["code"]) for e in problem["errors"]}
    assert (3, "birth_date", "future") in found
    assert (1, "student_id", "duplicate") in found
    assert (6, "student_id", "duplicate") in found
    quarantine = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{problem['batch_id']}/quarantine", headers=dp
    )
    items = quarantine.json()["items"]
    assert [i["row"] for i in items] == [1, 3, 6]
    assert {r["code"] for r in items[1]["reasons"]} == {"future"}

    national_id = good_csv.replace("memberships\n", "memberships,ssn\n", 1)
    national_id = "\n".join(
        line + (",123-45-6789" if i else "") for i, line in enumerate(national_id.splitlines())
    )
    problem = await refused(national_id.encode(), "csv", status=403)
    assert problem["type"].endswith("/undeclared-data-category")
    assert problem["fields"] == ["ssn"]
    assert "123-45-6789" not in json.dumps(problem)

    unsupported = await api.client.post(
        f"/v1/providers/{provider_id}/roster-uploads",
        content=b"x",
        headers=dp | {"content-type": "image/png"},
    )
    assert unsupported.status_code == 422
    assert unsupported.json()["errors"][0]["field"] == "content-type"
    future_as_of = await push(
        api.client,
        dp,
        provider_id,
        csv_bytes(RECORDS[:1]),
        "csv",
        **{"x-roster-as-of": "2999-01-01T00:00:00"},
    )
    assert future_as_of.json()["errors"][0]["field"] == "x-roster-as-of"

    assert await _records(api, provider_id) == before  # nothing partial was ever applied
    statuses = [
        b["status"]
        for b in (
            await api.client.get(f"/v1/providers/{provider_id}/roster-uploads", headers=dp)
        ).json()
    ]
    assert statuses.count("applied") == 1
    assert statuses.count("rejected") == 8
    # the duplicate/future batch (3 rows) and the wrongly typed one (1): compliance and
    # malformed pushes keep nothing
    assert await _count(api, QuarantinedRow) == 4
    still = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{first.json()['id']}", headers=dp
    )
    assert still.json()["integrity"] == "verified (manifest and stored records)"
    trend = (await api.client.get(f"/v1/providers/{provider_id}/quality", headers=dp)).json()
    assert len(trend["points"]) == 9


async def test_a_2gb_upload_streams_and_stops_at_the_limit(api: Api) -> None:
    provider_id = await _setup(api)
    limit = 4 * 1024 * 1024
    api.rt.settings = api.rt.settings.model_copy(update={"ingest_max_upload_bytes": limit})
    endless = Endless()  # 2 GiB, never allocated
    response = await api.client.post(
        f"/v1/providers/{provider_id}/roster-uploads",
        content=endless,
        headers=api.auth("dp-admin") | {"content-type": "text/csv"},
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
    assert endless.pulled <= limit + 2 * len(endless.block)
    assert not list((api.rt.settings.data_dir / "spool").rglob("upload-*"))
    assert await _count(api, RosterBatch) == 0
    # other routes keep the buffered 1 MiB limit
    big = await api.client.post(
        f"/v1/providers/{provider_id}/mappings",
        content=b"x" * (api.rt.settings.max_body_bytes + 1),
        headers=api.auth("dp-admin") | {"content-type": "application/yaml"},
    )
    assert big.status_code == 413


async def test_dp_signed_uploads(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    key = ec_key()
    registered = await api.client.post(
        f"/v1/providers/{provider_id}/upload-keys", json={"jwk": public_jwk(key)}, headers=dp
    )
    assert registered.status_code == 201
    kid = registered.json()["kid"]
    again = await api.client.post(
        f"/v1/providers/{provider_id}/upload-keys", json={"jwk": public_jwk(key)}, headers=dp
    )
    assert again.status_code == 409
    private = await api.client.post(
        f"/v1/providers/{provider_id}/upload-keys",
        json={"jwk": key.as_dict(private=True)},
        headers=dp,
    )
    assert private.status_code == 422
    assert private.json()["errors"][0]["field"] == "jwk"

    body = csv_bytes(RECORDS)
    unsigned = await push(api.client, dp, provider_id, body, "csv")
    assert unsigned.status_code == 422
    assert unsigned.json()["reason"] == "signature-required"

    signature = detached_jws(body, key, kid=kid)
    signed = await push(api.client, dp, provider_id, body, "csv", **{"x-jws-signature": signature})
    assert signed.status_code == 201, signed.text
    assert signed.json()["dp_signature_kid"] == kid
    no_kid = await push(
        api.client, dp, provider_id, body, "csv", **{"x-jws-signature": detached_jws(body, key)}
    )
    assert no_kid.status_code == 201

    tampered = body.replace(RECORDS[0].student_id.encode(), b"S0000000")
    problem = (
        await push(api.client, dp, provider_id, tampered, "csv", **{"x-jws-signature": signature})
    ).json()
    assert problem["status"] == 422
    assert problem["reason"] == "dp-signature"
    assert "changed after signing" in problem["detail"]
    assert problem["batch_id"]
    other = detached_jws(body, ec_key(), kid="someone-else")
    unknown = await push(api.client, dp, provider_id, body, "csv", **{"x-jws-signature": other})
    assert unknown.json()["reason"] == "unknown-key"
    records = await _records(api, provider_id)
    assert "S0000000" not in records


async def test_tampering_with_stored_data_is_detected_on_read(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    batch = (await push(api.client, dp, provider_id, csv_bytes(RECORDS), "csv")).json()
    url = f"/v1/providers/{provider_id}/roster-uploads/{batch['id']}"
    async with api.rt.db.transaction(api.tenant_id) as session:
        sealer = await api.rt.tenant_keys.sealer(session, api.tenant_id)
        first, second = (sealer.pseudonym(r.student_id) for r in RECORDS[:2])
        sealed = dict(
            (
                await session.execute(
                    select(RosterRecord.subject_ref, RosterRecord.sealed).where(
                        RosterRecord.subject_ref.in_([first, second])
                    )
                )
            ).all()
        )
        for ref, other in ((first, second), (second, first)):  # two sealed records swapped
            await session.execute(
                update(RosterRecord)
                .where(RosterRecord.tenant_id == api.tenant_id, RosterRecord.subject_ref == ref)
                .values(sealed=sealed[other])
            )
    tampered = await api.client.get(url, headers=dp)
    assert tampered.status_code == 422
    assert tampered.json()["reason"] == "output-digest"
    assert "tampered with" in tampered.json()["detail"]
    async with api.rt.db.transaction(api.tenant_id) as session:
        await session.execute(
            update(RosterBatch).where(RosterBatch.id == batch["id"]).values(rows_applied=41)
        )
    mismatch = await api.client.get(url, headers=dp)
    assert mismatch.json()["reason"] == "manifest-mismatch"
    assert mismatch.json()["fields"] == ["rows_applied"]


async def test_roles_and_tenants(api: Api) -> None:
    provider_id = await _setup(api)
    body = csv_bytes(RECORDS[:3])
    assert (await push(api.client, api.auth("broker"), provider_id, body)).status_code == 403
    assert (await push(api.client, api.auth("auditor"), provider_id, body)).status_code == 403
    pushed = await push(api.client, api.auth("dp-admin"), provider_id, body)
    assert pushed.status_code == 201
    for role in ("tenant-admin", "compliance"):
        quality = await api.client.get(
            f"/v1/providers/{provider_id}/quality", headers=api.auth(role)
        )
        assert quality.status_code == 200
    assert (
        await api.client.get(f"/v1/providers/{provider_id}/quality", headers=api.auth("broker"))
    ).status_code == 403
    other = await api.rt.tenancy.create_tenant("tenant-b")
    token = await api.rt.tenancy.create_token(other.id, "b", Role.DP_ADMIN)
    theirs = {"authorization": f"Bearer {token.secret}"}
    batch_url = f"/v1/providers/{provider_id}/roster-uploads/{pushed.json()['id']}"
    assert (await api.client.get(batch_url, headers=theirs)).status_code == 404
    assert (await push(api.client, theirs, provider_id, body)).status_code == 404
    dataset = f"pavilion.rosters.{provider_id}"
    assert (await api.client.get(f"/v1/lineage/{dataset}", headers=theirs)).status_code == 404
    assert (
        await api.client.get(f"/v1/providers/{provider_id}/quality", headers=theirs)
    ).status_code == 404
    wrong_provider = await api.client.get(
        f"/v1/providers/{provider_id}x/roster-uploads/{pushed.json()['id']}",
        headers=api.auth("dp-admin"),
    )
    assert wrong_provider.status_code == 422


async def test_versioned_mappings_and_dry_runs(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    base = f"/v1/providers/{provider_id}/mappings"
    stricter = profile(quality={"min_score": 99.9})
    second = await api.client.post(base, json=stricter, headers=dp)
    assert second.status_code == 201
    assert second.json()["version"] == 2
    versions = (await api.client.get(base, headers=api.auth("broker"))).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert (await api.client.get(f"{base}/1", headers=dp)).json()["profile"]["quality"][
        "min_score"
    ] == 80
    assert (await api.client.get(f"{base}/9", headers=dp)).status_code == 404
    bad = await api.client.post(base, json={**profile(), "mapping": {"fields": {}}}, headers=dp)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"].startswith("mapping.fields")
    not_json = await api.client.post(
        base, content=b"{", headers=dp | {"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    array = await api.client.post(
        base, content=b"[]", headers=dp | {"content-type": "application/json"}
    )
    assert array.json()["detail"] == "the profile must be a JSON object"
    wrong_media = await api.client.post(
        base, content=b"x", headers=dp | {"content-type": "image/png"}
    )
    assert wrong_media.status_code == 422

    body = csv_bytes(RECORDS)
    refused = await push(api.client, dp, provider_id, body)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/quality-below-threshold")
    older = await api.client.post(
        f"/v1/providers/{provider_id}/roster-uploads?mapping_version=1",
        content=body,
        headers=dp | {"content-type": "text/csv"},
    )
    assert older.status_code == 201
    assert older.json()["profile_version"] == 1

    dry = await api.client.post(
        f"{base}/dry-run",
        json={"records": [r.as_json() for r in RECORDS[:3]], "profile": profile()},
        headers=dp,
    )
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["status"] == "applied"
    assert preview["profile_version"] is None
    assert preview["preview"][0]["subject_id"] == RECORDS[0].student_id
    assert preview["preview"][0]["given_name"] == RECORDS[0].given_name.casefold()
    assert {m["target"] for m in preview["mapping"]} >= {"subject_id", "email"}
    stored = await api.client.post(
        f"{base}/dry-run",
        json={"sample": xml_bytes(RECORDS[:2]).decode(), "format": "xml"},
        headers=dp,
    )
    assert stored.json()["profile_version"] == 2
    assert stored.json()["reason"] == "quality"
    broken = await api.client.post(
        f"{base}/dry-run", json={"sample": "", "format": "csv"}, headers=dp
    )
    assert broken.json()["status"] == "rejected"
    assert broken.json()["reason"] == "malformed-upload"
    both = await api.client.post(f"{base}/dry-run", json={}, headers=dp)
    assert both.status_code == 422
    assert await _count(api, RosterBatch) == 2  # dry runs stored nothing
    assert MEDIA["csv"] == "text/csv"


async def test_a_failed_write_leaves_nothing_behind(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    assert (await push(api.client, dp, provider_id, csv_bytes(RECORDS))).status_code == 201
    before = await _records(api, provider_id)
    events_before = await _count(api, LineageEvent)
    size_before = (await api.rt.audit.checkpoint(api.tenant_id)).size
    original = api.rt.rosters.replace

    async def replace_then_fail(session: Any, *args: Any) -> None:
        await original(session, *args)  # the new rows are written, then the database fails
        from pavilion.errors import StorageUnavailable

        raise StorageUnavailable("database error: disk full")

    monkeypatch.setattr(api.rt.rosters, "replace", replace_then_fail)
    failed = await push(api.client, dp, provider_id, csv_bytes(roster(10, seed=99)))
    assert failed.status_code == 503
    assert await _records(api, provider_id) == before
    assert await _count(api, RosterBatch) == 1
    assert await _count(api, LineageEvent) == events_before
    assert (await api.rt.audit.checkpoint(api.tenant_id)).size == size_before


async def test_the_order_of_things_and_what_is_missing(api: Api) -> None:
    dp = api.auth("dp-admin")
    provider = await api.register_provider()
    provider_id = provider["id"]
    early = await push(api.client, dp, provider_id, csv_bytes(RECORDS[:2]))
    assert early.status_code == 404
    assert f"POST one to /v1/providers/{provider_id}/mappings first" in early.json()["detail"]
    quality = await api.client.get(f"/v1/providers/{provider_id}/quality", headers=dp)
    assert quality.json() == {
        "provider_id": provider_id,
        "threshold": None,
        "points": [],
        "latest": None,
        "change": None,
        "moving_average": None,
        "direction": "none",
    }
    unknown = await api.client.post("/v1/providers/nope/mappings", json=profile(), headers=dp)
    assert unknown.status_code == 404
    assert (await api.client.get("/v1/providers/nope/mappings", headers=dp)).status_code == 404
    assert (
        await api.client.get("/v1/providers/nope/roster-uploads", headers=dp)
    ).status_code == 404
    keyless = await api.client.post(
        "/v1/providers/nope/upload-keys", json={"jwk": public_jwk(ec_key())}, headers=dp
    )
    assert keyless.status_code == 404

    await api.client.post(f"/v1/providers/{provider_id}/mappings", json=profile(), headers=dp)
    body = csv_bytes(RECORDS[:3])
    unregistered = await push(
        api.client,
        dp,
        provider_id,
        body,
        "csv",
        **{"x-jws-signature": detached_jws(body, ec_key())},
    )
    assert unregistered.status_code == 422
    assert "no registered upload key" in unregistered.json()["detail"]
    for _ in range(2):
        added = await api.client.post(
            f"/v1/providers/{provider_id}/upload-keys",
            json={"jwk": public_jwk(ec_key())},
            headers=dp,
        )
        assert added.status_code == 201
    ambiguous = await push(
        api.client,
        dp,
        provider_id,
        body,
        "csv",
        **{"x-jws-signature": detached_jws(body, ec_key())},
    )
    assert ambiguous.json()["detail"] == "the provider has several upload keys: name one with 'kid'"
    bad_as_of = await push(api.client, dp, provider_id, body, "csv", **{"x-roster-as-of": "soon"})
    assert bad_as_of.json()["errors"][0]["field"] == "x-roster-as-of"


async def test_rejected_batches_and_the_roster_store(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    ok = await push(
        api.client,
        dp,
        provider_id,
        csv_bytes(RECORDS),
        "csv",
        **{"x-roster-as-of": "2026-01-01T00:00:00"},
    )
    assert ok.status_code == 201
    assert ok.json()["as_of"].startswith("2026-01-01T00:00:00")
    bad = await push(api.client, dp, provider_id, b"", "csv")
    rejected = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/{bad.json()['batch_id']}", headers=dp
    )
    assert rejected.json()["integrity"] == "verified (manifest; nothing applied)"
    assert rejected.json()["report"]["reason"] == "malformed-upload"
    assert (
        await api.client.get(f"/v1/providers/{provider_id}/roster-uploads/nope", headers=dp)
    ).status_code == 404
    quarantine = await api.client.get(
        f"/v1/providers/{provider_id}/roster-uploads/nope/quarantine", headers=dp
    )
    assert quarantine.status_code == 404
    async with api.rt.db.transaction(api.tenant_id) as session:
        record = await api.rt.rosters.get(
            session, api.tenant_id, provider_id, RECORDS[0].student_id
        )
        nobody = await api.rt.rosters.get(session, api.tenant_id, provider_id, "S0")
    assert record is not None
    assert record["subject_id"] == RECORDS[0].student_id
    assert record["email"] == RECORDS[0].email
    assert nobody is None


async def test_the_old_roster_paths_are_deprecated_aliases(api: Api) -> None:
    provider_id = await _setup(api)
    dp = api.auth("dp-admin")
    new_base = f"/v1/providers/{provider_id}/roster-uploads"
    old = await api.client.post(
        f"/v1/providers/{provider_id}/rosters",
        content=csv_bytes(RECORDS),
        headers=dp | {"content-type": MEDIA["csv"]},
    )
    assert old.status_code == 201, old.text
    assert old.json()["status"] == "applied"
    assert old.headers["deprecation"].startswith("@")
    assert old.headers["link"] == f'<{new_base}>; rel="successor-version"'
    batch_id = old.json()["id"]
    for suffix in ("", f"/{batch_id}", f"/{batch_id}/quarantine"):
        got = await api.client.get(f"/v1/providers/{provider_id}/rosters{suffix}", headers=dp)
        assert got.status_code == 200, (suffix, got.text)
        assert got.headers["link"] == f'<{new_base}{suffix}>; rel="successor-version"'
    current = await api.client.get(f"{new_base}/{batch_id}", headers=dp)
    assert current.status_code == 200
    assert "deprecation" not in current.headers
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert paths["/v1/providers/{provider_id}/rosters"]["post"]["deprecated"] is True
    assert paths["/v1/providers/{provider_id}/rosters/{batch_id}"]["get"]["deprecated"] is True
    assert "deprecated" not in paths["/v1/providers/{provider_id}/roster-uploads"]["post"]
