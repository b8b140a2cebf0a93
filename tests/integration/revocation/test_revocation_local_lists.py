"""A verifier reads this connector's own status lists from memory, on both databases.

Each list is read once per ``cache_seconds`` whatever the rate of verifications; a status
changed through this worker applies at once, one changed through another worker within
``cache_seconds``; with ``cache_seconds`` 0 every status is read from the database.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pavilion.credentials.status.local_lists import LocalLists
from pavilion.credentials.status.resolver import StatusUnavailable
from pavilion.credentials.status.service import StatusListConfig, StatusListService
from pavilion.runtime import Runtime

TENANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
BASE = "https://issuer.example"


def worker(rt: Runtime, cache_seconds: float, **config: int) -> StatusListService:
    """A status-list service as one worker process holds it (its own memory)."""
    return StatusListService(
        rt.db,
        rt.keystore,
        rt.audit,
        StatusListConfig(base_url=BASE, issuer=BASE, cache_seconds=cache_seconds, **config),
    )


async def bound(svc: StatusListService, rt: Runtime, kind: str = "token") -> tuple[str, int, str]:
    reservation = await svc.reserve(TENANT, kind)
    credential_id = str(uuid.uuid4())
    async with rt.db.transaction(TENANT) as session:
        await svc.bind(session, TENANT, reservation, credential_id)
    return credential_id, reservation.idx, reservation.lists[0].uri


async def test_a_list_is_read_once_and_a_change_here_applies_at_once(runtime: Runtime) -> None:
    svc = worker(runtime, 60, token_size=64)
    credential, idx, uri = await bound(svc, runtime)
    other, other_idx, _ = await bound(svc, runtime)
    assert await asyncio.gather(*(svc.resolve_status(uri, idx) for _ in range(50))) == [0] * 50
    assert svc._lists.reads == 1  # fifty verifications, one read
    await svc.change_status(TENANT, credential, "revoke", actor="test")
    assert await svc.resolve_status(uri, idx) == 1  # this worker: at once
    assert await svc.resolve_status(uri, other_idx) == 0
    await svc.change_status(TENANT, other, "suspend", actor="test")
    assert await svc.resolve_status(uri, other_idx) == 2
    await svc.change_status(TENANT, other, "reinstate", actor="test")
    assert await svc.resolve_status(uri, other_idx) == 0
    with pytest.raises(StatusUnavailable, match="outside the status list"):
        await svc.resolve_status(uri, 64)
    with pytest.raises(StatusUnavailable, match="does not exist"):
        await svc.resolve_status(uri[:-8] + "00000000", 0)


async def test_another_worker_sees_a_change_within_the_cache_time(runtime: Runtime) -> None:
    here = worker(runtime, 60, token_size=64)
    credential, idx, uri = await bound(here, runtime)
    now = [0.0]
    there = LocalLists(runtime.db, 2.0, timer=lambda: now[0])
    list_id = uri.rsplit("/", 1)[1]
    assert (await there.view(TENANT, "token", list_id, uri)).value(idx) == 0
    await here.change_status(TENANT, credential, "revoke", actor="test")
    now[0] = 1.9  # within the cache time: the other worker still answers what it read
    assert (await there.view(TENANT, "token", list_id, uri)).value(idx) == 0
    now[0] = 2.1
    assert (await there.view(TENANT, "token", list_id, uri)).value(idx) == 1
    assert there.reads == 2


async def test_bitstring_lists_read_their_own_purpose(runtime: Runtime) -> None:
    svc = worker(runtime, 60)
    credential, idx, revocation = await bound(svc, runtime, "bitstring")
    suspension = (await svc.reserve(TENANT, "bitstring")).lists[1].uri
    await svc.change_status(TENANT, credential, "suspend", actor="test")
    assert await svc.resolve_status(revocation, idx) == 0
    assert await svc.resolve_status(suspension, idx) == 1
    await svc.change_status(TENANT, credential, "revoke", actor="test")
    assert await svc.resolve_status(revocation, idx) == 1
    assert await svc.resolve_status(suspension, idx) == 0


async def test_no_cache_time_reads_every_status(runtime: Runtime) -> None:
    svc = worker(runtime, 0, token_size=64)
    _, idx, uri = await bound(svc, runtime)
    for _ in range(3):
        assert await svc.resolve_status(uri, idx) == 0
    assert svc._lists.reads == 3
