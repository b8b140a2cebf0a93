"""The agent's logs say how many lookups and how they ended, never about whom."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import structlog
from dpagent_support import DP_KEY
from fastapi import FastAPI

from pavilion.synth.roster import StudentRecord

AUTH = {"Authorization": f"Bearer {DP_KEY}"}


def personal_values(records: list[StudentRecord]) -> list[str]:
    return [
        value
        for record in records
        for value in (
            record.student_id,
            record.email,
            record.email.upper(),
            record.given_name,
            record.family_name,
            record.birth_date.isoformat(),
        )
    ]


async def exercise(app: FastAPI, found: StudentRecord, other: StudentRecord) -> None:
    """Every kind of request the agent logs: found, not found, invalid, rejected."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agent.test"
    ) as http:
        for _ in range(4):
            body = {"identifiers": {"student_id": found.student_id}}
            await http.post("/v1/lookup", json=body, headers=AUTH)
            body = {"identifiers": {"email": other.email.upper()}}
            await http.post("/v1/lookup", json=body, headers=AUTH)
        body = {"identifiers": {"student_id": "S0000000"}}
        await http.post("/v1/lookup", json=body, headers=AUTH)
        body = {"identifiers": {"student_id": found.student_id, "dob": "2001-01-01"}}
        await http.post("/v1/lookup", json=body, headers=AUTH)
        wrong_key = {"Authorization": f"Bearer {found.email}-not-the-key"}
        await http.post(
            "/v1/lookup", json={"identifiers": {"email": other.email}}, headers=wrong_key
        )


async def test_logs_carry_outcomes_but_no_personal_data(
    make_app: Callable[..., FastAPI],
    dp_records: list[StudentRecord],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    found, other = dp_records[0], dp_records[1]
    caplog.set_level("DEBUG")
    with structlog.testing.capture_logs() as events:
        await exercise(make_app(), found, other)
        await exercise(make_app(garbage_rate=0.3, error_rate=0.3, seed=1), found, other)

    outcomes = {event.get("outcome") for event in events}
    assert {"found", "not_found", "invalid", "unauthenticated"} <= outcomes
    assert {"injected_error", "injected_garbage"} <= outcomes
    assert [event["lookup"] for event in events if "lookup" in event][:9] == list(range(1, 10))

    captured = capsys.readouterr()
    everything = "\n".join([repr(events), caplog.text, captured.out, captured.err])
    for value in [*personal_values([found, other]), "S0000000", "2001-01-01", DP_KEY]:
        assert value not in everything
