"""Index allocation against the real databases: random, distinct under concurrency, never reused,
rolling over to a new list when one fills; W3C bitstring groups served and decoded."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import delete, func, select

from connector_support import Api
from keys_support import (
    spec_bitstring_length,
    spec_bitstring_status,
    spec_token_status,
    unverified,
    verify_with_pyjwt,
)
from pavilion.credentials.status.models import StatusList, StatusListEntry
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.errors import Conflict, InvalidRequest, StorageError
from pavilion.runtime import Runtime
from pavilion.synth.roster import StudentRecord, pick_examples

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"


def service(rt: Runtime, **config: int) -> StatusListService:
    return StatusListService(
        rt.db,
        rt.keystore,
        rt.audit,
        StatusListConfig(
            base_url="https://issuer.example", issuer="https://issuer.example", **config
        ),
    )


async def bound(svc: StatusListService, rt: Runtime, kind: str = "token") -> tuple[str, int, str]:
    """Reserve an index and bind it to a new credential id, as issuance does."""
    reservation = await svc.reserve(TENANT, kind)
    credential_id = str(uuid.uuid4())
    async with rt.db.transaction(TENANT) as session:
        await svc.bind(session, TENANT, reservation, credential_id)
    return credential_id, reservation.idx, reservation.lists[0].uri


async def entries(rt: Runtime) -> list[StatusListEntry]:
    async with rt.db.transaction(TENANT) as session:
        rows = await session.execute(
            select(StatusListEntry).where(StatusListEntry.tenant_id == TENANT)
        )
        return list(rows.scalars())


async def test_parallel_reservations_in_two_processes_never_collide(runtime: Runtime) -> None:
    # Two service instances are two processes: separate memories, one database. Each reserves
    # its next batch before its pool runs dry, so the list is large enough for both to do so.
    first, second = service(runtime, token_size=2048), service(runtime, token_size=2048)
    await first.reserve(TENANT)  # opens the list both will share
    results = await asyncio.gather(
        *(svc.reserve(TENANT) for _ in range(100) for svc in (first, second))
    )
    await asyncio.gather(first.aclose(), second.aclose())  # their refills behind are in
    indices = [r.idx for r in results]
    assert len(set(indices)) == len(indices) == 200
    assert len({r.group_id for r in results}) == 1
    stored = await entries(runtime)
    assert len({(e.group_id, e.idx) for e in stored}) == len(stored)
    handed_out = {(r.group_id, r.idx): r.entry_id for r in results}
    assert {e.id for e in stored} >= set(handed_out.values())  # each one a stored reservation
    # Random, not sequential: 200 draws from 2048 indices are not the first 200 in order.
    assert sorted(indices) != list(range(min(indices), min(indices) + 200))


async def test_parallel_issuances_through_the_api_get_distinct_indices(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    student = pick_examples(roster).current
    # One first, alone: the audit log's very first append for a tenant has no head row to
    # lock yet (concurrent first appends race in audit/log.py, outside this feature).
    first = await api.verify(
        provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
    )
    responses = [
        first,
        *list(
            await asyncio.gather(
                *(
                    api.verify(
                        provider["id"],
                        {"type": "student_status"},
                        {"student_id": student.student_id},
                    )
                    for _ in range(15)
                )
            )
        ),
    ]
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    statuses = [unverified(r.json()["credential"])[1]["status"]["status_list"] for r in responses]
    assert len({(s["uri"], s["idx"]) for s in statuses}) == 16
    async with api.rt.db.transaction(api.tenant_id) as session:
        bound_count = (
            await session.execute(
                select(func.count())
                .select_from(StatusListEntry)
                .where(StatusListEntry.tenant_id == api.tenant_id, StatusListEntry.state == "valid")
            )
        ).scalar_one()
    assert bound_count == 16  # every issued credential got its entry, in its own transaction


async def test_the_next_batch_is_reserved_behind_before_the_pool_runs_dry(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(runtime, token_size=4096, reserve_batch=8, reserve_batch_max=8)
    allocator = svc._allocator
    real_insert = allocator._insert_reserved
    release = asyncio.Event()
    batches = 0

    async def slow_second_batch(group: Any, indices: list[int]) -> list[tuple[int, str]]:
        nonlocal batches
        batches += 1
        if batches == 2:
            await release.wait()  # a database slow to take the next batch
        return await real_insert(group, indices)

    monkeypatch.setattr(allocator, "_insert_reserved", slow_second_batch)
    # The first batch of 8: once fewer than half are left the next batch is asked for in the
    # background, and the pool keeps serving every caller while that insert waits.
    handed = [await asyncio.wait_for(svc.reserve(TENANT), 5) for _ in range(8)]
    assert batches == 2
    release.set()
    await allocator.aclose()
    reserved = [e for e in await entries(runtime) if e.state == "reserved"]
    assert len(reserved) == 16  # the second batch is in, before anyone waited for it
    handed += [await asyncio.wait_for(svc.reserve(TENANT), 5) for _ in range(8)]
    assert len({(r.group_id, r.idx) for r in handed}) == 16
    assert {r.entry_id for r in handed} <= {e.id for e in reserved}


async def test_a_full_list_rolls_over_and_no_index_is_ever_reused(runtime: Runtime) -> None:
    svc = service(runtime, token_size=16, token_bits=2)
    revoked_id, revoked_idx, first_uri = await bound(svc, runtime)
    await svc.change_status(TENANT, revoked_id, "revoke", actor="test")
    first_group = [(await svc.reserve(TENANT)) for _ in range(15)]
    assert {r.idx for r in first_group} | {revoked_idx} == set(range(16))
    assert revoked_idx not in {r.idx for r in first_group}

    rolled = await svc.reserve(TENANT)  # the list is full: a new one opens
    assert rolled.lists[0].uri != first_uri
    lists = {row.id: row for row in await _lists(runtime)}
    assert lists[urlsplit(first_uri).path.rsplit("/", 1)[1]].state == "full"
    assert lists[rolled.lists[0].list_id].state == "open"

    # A fresh process (empty memory) never hands out an index that is already taken, in the
    # old list or in the open one (where the first process still holds a batch in memory).
    taken = {(e.group_id, e.idx) for e in await entries(runtime)}
    restarted = service(runtime, token_size=16, token_bits=2)
    more = [await restarted.reserve(TENANT) for _ in range(20)]
    assert not {(r.group_id, r.idx) for r in more} & taken
    assert all(r.group_id != first_group[0].group_id for r in more)
    stored = await entries(runtime)
    assert len({(e.group_id, e.idx) for e in stored}) == len(stored)

    # The full list is still published and still changes.
    published = await svc.publish("token", first_group[0].group_id)
    _, claims = unverified(published.token)
    assert spec_token_status(claims["status_list"], revoked_idx) == 1
    assert await svc.resolve_status(first_uri, revoked_idx) == 1
    assert await svc.resolve_status(first_uri, first_group[0].idx) == 0  # reserved: a decoy


async def test_the_app_role_cannot_delete_an_entry_on_postgres(runtime: Runtime) -> None:
    svc = service(runtime, token_size=64)
    await bound(svc, runtime)
    if not runtime.db.is_postgres:
        pytest.skip("SQLite has no roles; PostgreSQL enforces it")
    await svc.aclose()  # the next batch, reserved in the background, is in
    before = len(await entries(runtime))
    with pytest.raises(StorageError):
        async with runtime.db.transaction(TENANT) as session:
            await session.execute(
                delete(StatusListEntry).where(StatusListEntry.tenant_id == TENANT)
            )
    assert len(await entries(runtime)) == before > 0


async def test_bind_refuses_a_spent_or_foreign_reservation(runtime: Runtime) -> None:
    svc = service(runtime, token_size=64)
    reservation = await svc.reserve(TENANT)
    async with runtime.db.transaction(TENANT) as session:
        await svc.bind(session, TENANT, reservation, str(uuid.uuid4()))
    with pytest.raises(Conflict, match="not reserved"):
        async with runtime.db.transaction(TENANT) as session:
            await svc.bind(session, TENANT, reservation, str(uuid.uuid4()))
    with pytest.raises(InvalidRequest, match="another tenant"):
        async with runtime.db.transaction(TENANT) as session:
            await svc.bind(session, "1f8fad5b-d9cb-469f-a165-70867728950e", reservation, "x")


async def test_one_bit_lists_cannot_suspend(runtime: Runtime) -> None:
    svc = service(runtime, token_size=64, token_bits=1)
    credential_id, idx, uri = await bound(svc, runtime)
    with pytest.raises(Conflict, match="1-bit token status list"):
        await svc.change_status(TENANT, credential_id, "suspend", actor="test")
    await svc.change_status(TENANT, credential_id, "revoke", actor="test")
    assert await svc.resolve_status(uri, idx) == 1
    with pytest.raises(InvalidRequest, match="at most 500"):
        await svc.change_status(TENANT, credential_id, "revoke", actor="t", reason="x" * 501)


async def test_bitstring_lists_are_served_as_signed_vc_and_decode(runtime: Runtime) -> None:
    svc = service(runtime)
    credential_id, idx, revocation_uri = await bound(svc, runtime, "bitstring")
    status = await svc.credential_status(TENANT, credential_id)
    uris = {item["purpose"]: item["uri"] for item in status["lists"]}
    assert uris["revocation"] == revocation_uri
    suspension_uri = uris["suspension"]

    await svc.change_status(TENANT, credential_id, "suspend", actor="test")
    jwks = {"keys": runtime.keystore.public_jwks()}
    for uri, expected in ((revocation_uri, 0), (suspension_uri, 1)):
        published = await svc.publish("bitstring", uri.rsplit("/", 1)[1])
        assert published.media_type == "application/vc+jwt"
        header, _ = unverified(published.token)
        assert (header["typ"], header["cty"]) == ("vc+jwt", "vc")
        credential = verify_with_pyjwt(published.token, jwks)
        assert (
            json.loads(
                jws.deserialize_compact(published.token, KeySet.import_key_set(jwks)).payload
            )
            == credential
        )
        assert credential["@context"] == ["https://www.w3.org/ns/credentials/v2"]
        assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
        assert credential["id"] == uri
        assert credential["issuer"] == "https://issuer.example"
        valid_from = datetime.fromisoformat(credential["validFrom"].replace("Z", "+00:00"))
        valid_until = datetime.fromisoformat(credential["validUntil"].replace("Z", "+00:00"))
        assert valid_until - valid_from == timedelta(seconds=86_400)
        subject = credential["credentialSubject"]
        assert subject["id"] == f"{uri}#list"
        assert subject["type"] == "BitstringStatusList"
        assert subject["ttl"] == 300_000  # milliseconds in the W3C list
        assert spec_bitstring_length(subject["encodedList"]) >= 131_072
        assert spec_bitstring_status(subject["encodedList"], idx) == expected
        assert await svc.resolve_status(uri, idx) == expected
    assert subject["statusPurpose"] == "suspension"

    await svc.change_status(TENANT, credential_id, "revoke", actor="test")
    assert await svc.resolve_status(revocation_uri, idx) == 1
    assert await svc.resolve_status(suspension_uri, idx) == 0
    with pytest.raises(InvalidRequest, match="token or bitstring"):
        await svc.reserve(TENANT, "csv")


async def test_published_lists_are_reused_until_they_change_or_age(runtime: Runtime) -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    svc = StatusListService(
        runtime.db,
        runtime.keystore,
        runtime.audit,
        StatusListConfig(
            base_url="https://issuer.example", issuer="https://issuer.example", token_size=64
        ),
        clock=lambda: now[0],
    )
    credential_id, _, uri = await bound(svc, runtime)
    list_id = uri.rsplit("/", 1)[1]
    first = await svc.publish("token", list_id)
    assert (await svc.publish("token", list_id)).token == first.token
    now[0] += timedelta(hours=11)
    cached = await svc.publish("token", list_id)
    assert cached.token == first.token
    assert cached.max_age == 300
    now[0] += timedelta(hours=2)  # past half its lifetime: signed again
    resigned = await svc.publish("token", list_id)
    assert resigned.token != first.token
    await svc.change_status(TENANT, credential_id, "revoke", actor="test")
    changed = await svc.publish("token", list_id)
    assert changed.version == resigned.version + 1
    assert changed.etag != resigned.etag
    now[0] += timedelta(hours=23, minutes=58)  # about to expire: max-age shrinks with it
    assert (await svc.publish("token", list_id)).max_age == 300
    with pytest.raises(InvalidRequest, match="non-negative"):
        await svc.resolve_status(uri, -1)


async def _lists(rt: Runtime) -> list[StatusList]:
    async with rt.db.transaction(TENANT) as session:
        return list(
            (
                await session.execute(select(StatusList).where(StatusList.tenant_id == TENANT))
            ).scalars()
        )


async def test_reservation_gives_up_with_a_clear_error_after_losing_every_race(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    opener = service(runtime, token_size=4096)
    assert opener.config.token_size == 4096
    await opener.reserve(TENANT)  # the open list, and a batch this other process holds
    svc = service(runtime, token_size=4096, reserve_batch_max=32)  # batches stay at 32
    resyncs = 0
    real_resync = svc._allocator._resync

    async def counting_resync(group: object) -> None:
        nonlocal resyncs
        resyncs += 1
        await real_resync(group)  # type: ignore[arg-type]

    async def always_taken(group: object, indices: list[int]) -> list[tuple[int, str]]:
        return []  # another process won every draw

    monkeypatch.setattr(svc._allocator, "_insert_reserved", always_taken)
    monkeypatch.setattr(svc._allocator, "_resync", counting_resync)
    with pytest.raises(StorageError, match="could not reserve a status list index after 64"):
        await svc.reserve(TENANT)
    assert resyncs == 64  # each lost batch of 32 re-reads the used indices
    with pytest.raises(Exception, match="no status list entry"):
        await svc.credential_status(TENANT, str(uuid.uuid4()))
