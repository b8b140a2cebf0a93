"""Database round trips per verification, counted with SQLAlchemy's event hooks (no timing).

A round trip is a statement (an executemany counts once), a BEGIN, a COMMIT or a ROLLBACK,
or a connection checkout's liveness ping. The budget is docs/PERFORMANCE.md's: in steady
state (configuration in memory) a verification costs at most ``SEQUENTIAL_BUDGET`` round
trips alone and at most ``CONCURRENT_BUDGET`` when concurrent verifications share a commit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from connector_support import Api
from pavilion.store.idempotency import RecentAnswers
from pavilion.synth.roster import StudentRecord

#: One verification alone. PostgreSQL: BEGIN with set_config, one statement (leaf, head,
#: rows, status binding), COMMIT. SQLite: one hand-off of the whole transaction to the
#: journal's writer thread.
SEQUENTIAL_BUDGET = {"postgres": 3, "sqlite": 1}
#: Twenty at once: the fixed cost of a commit is shared; what remains is per credential.
CONCURRENT_BUDGET = 4


class RoundTrips:
    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.statements: list[str] = []

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


@contextmanager
def counting(api: Api) -> Iterator[RoundTrips]:
    trips = RoundTrips()
    db = api.rt.db
    driver_before = api.rt.journal.driver_round_trips
    engines = {id(e): e for e in (db.engine, db._read_engine)}.values()

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        trips.kinds["statement"] += 1
        trips.statements.append(statement)

    def on(kind: str) -> Any:
        def listener(*_: Any) -> None:
            trips.kinds[kind] += 1

        return listener

    hooks: list[tuple[Any, str, Any]] = []
    for engine in engines:
        sync = engine.sync_engine
        hooks += [
            (sync, "before_cursor_execute", on_statement),
            (sync, "begin", on("begin")),
            (sync, "commit", on("commit")),
            (sync, "rollback", on("rollback")),
        ]
        if db.is_postgres:  # pool_pre_ping: one SELECT 1 per checkout
            hooks.append((sync.pool, "checkout", on("ping")))
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield trips
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
        driver = api.rt.journal.driver_round_trips - driver_before
        if driver:
            trips.kinds["driver"] += driver


async def _verify(api: Api, provider_id: str, record: StudentRecord) -> None:
    answer = await api.verify(
        provider_id, {"type": "student_status"}, {"student_id": record.student_id}
    )
    assert answer.status_code == 201, answer.text


async def test_a_verification_alone_stays_within_its_round_trips(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    current = [r for r in roster if r.enrolment_status == "enrolled"]
    for record in current[:2]:  # warm: configuration, data key, status pool in memory
        await _verify(api, provider["id"], record)
    with counting(api) as trips:
        for record in current[2:7]:
            await _verify(api, provider["id"], record)
    per_verification = trips.total / 5
    backend = "postgres" if api.rt.db.is_postgres else "sqlite"
    assert per_verification <= SEQUENTIAL_BUDGET[backend], dict(trips.kinds)
    # Nothing is read for configuration: no provider, endpoint or adequacy query per request,
    # and no read-only transaction on the way.
    assert trips.kinds["rollback"] == 0
    assert trips.kinds["statement"] == 0


async def test_concurrent_verifications_share_commits(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    current = [r for r in roster if r.enrolment_status == "enrolled"]
    await _verify(api, provider["id"], current[0])
    before = (await api.rt.audit.verify(api.tenant_id)).size
    batch = current[1:21]
    with counting(api) as trips:
        await asyncio.gather(*(_verify(api, provider["id"], r) for r in batch))
    assert trips.total / len(batch) <= CONCURRENT_BUDGET, dict(trips.kinds)
    # Every verification is in the audit log, in one consistent tree.
    report = await api.rt.audit.verify(api.tenant_id)
    assert report.ok, report.problems
    assert report.size == before + len(batch)


async def test_a_replay_on_the_worker_that_answered_touches_no_database(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    record = next(r for r in roster if r.enrolment_status == "enrolled")
    headers = {"idempotency-key": "replay-1"}
    body = {"type": "student_status"}
    ids = {"student_id": record.student_id}
    first = await api.verify(provider["id"], body, ids, headers=headers)
    with counting(api) as trips:
        again = await api.verify(provider["id"], body, ids, headers=headers)
    assert again.json() == first.json()
    assert trips.total == 0
    other = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, ids, headers=headers
    )
    assert other.status_code == 409


async def test_a_replay_on_another_worker_is_answered_from_the_stored_record(
    api: Api, roster: list[StudentRecord]
) -> None:
    provider = await api.register_provider()
    record = next(r for r in roster if r.enrolment_status == "enrolled")
    headers = {"idempotency-key": "replay-2"}
    body = {"type": "student_status"}
    ids = {"student_id": record.student_id}
    first = await api.verify(provider["id"], body, ids, headers=headers)
    before = (await api.rt.audit.verify(api.tenant_id)).size
    api.rt.idempotency = RecentAnswers()  # another worker: nothing in its memory
    again = await api.verify(provider["id"], body, ids, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    report = await api.rt.audit.verify(api.tenant_id)
    assert report.size == before  # the replay wrote no second verification
    api.rt.idempotency = RecentAnswers()
    other = await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, ids, headers=headers
    )
    assert other.status_code == 409
