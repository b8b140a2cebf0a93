"""Fault injection: the connector's tests depend on these misbehaviours being exact."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dpagent_support import DP_KEY
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from pydantic import SecretStr, ValidationError

from pavilion.dpagent.app import create_agent_app
from pavilion.dpagent.config import AgentConfig, FaultConfig
from pavilion.dpagent.faults import GARBAGE_BODIES, FaultDecision, FaultInjector, Outcome
from pavilion.dpagent.records import RecordIndex
from pavilion.synth.roster import ROSTER_RECORD_SCHEMA, StudentRecord

RECORD_VALIDATOR = Draft202012Validator(ROSTER_RECORD_SCHEMA)


async def statuses_and_bodies(app: FastAPI, student_id: str, times: int) -> list[tuple[int, bytes]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://agent.test",
        headers={"X-API-Key": DP_KEY},
    ) as http:
        body = {"identifiers": {"student_id": student_id}}
        return [
            ((r := await http.post("/v1/lookup", json=body)).status_code, r.content)
            for _ in range(times)
        ]


def is_valid_lookup_answer(content: bytes) -> bool:
    """What the connector accepts: JSON, a boolean 'found', and a schema-valid record."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("found"), bool):
        return False
    if not body["found"]:
        return True
    return RECORD_VALIDATOR.is_valid(body.get("record")) and isinstance(body.get("as_of"), str)


async def test_error_rate_one_answers_every_lookup_with_a_500_problem(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    answers = await statuses_and_bodies(make_app(error_rate=1.0), dp_records[0].student_id, 10)
    assert {status for status, _ in answers} == {500}
    problem = json.loads(answers[0][1])
    assert problem["type"] == "https://pavilion.example/problems/injected-fault"
    assert problem["status"] == 500


async def test_garbage_rate_one_never_answers_a_valid_lookup(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    app = make_app(garbage_rate=1.0, seed=5)
    answers = await statuses_and_bodies(app, dp_records[0].student_id, 40)
    assert {status for status, _ in answers} == {200}
    assert not any(is_valid_lookup_answer(body) for _, body in answers)
    assert {body for _, body in answers} == set(GARBAGE_BODIES)


def test_garbage_includes_both_non_json_and_schema_breaking_bodies() -> None:
    def parses(body: bytes) -> bool:
        try:
            json.loads(body)
        except ValueError:
            return False
        return True

    assert any(not parses(body) for body in GARBAGE_BODIES)
    assert any(parses(body) for body in GARBAGE_BODIES)
    assert not any(is_valid_lookup_answer(body) for body in GARBAGE_BODIES)


async def test_the_same_seed_misbehaves_the_same_way(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    student_id = dp_records[0].student_id
    faults = {"error_rate": 0.3, "garbage_rate": 0.3}
    first = await statuses_and_bodies(make_app(seed=9, **faults), student_id, 30)
    second = await statuses_and_bodies(make_app(seed=9, **faults), student_id, 30)
    other = await statuses_and_bodies(make_app(seed=10, **faults), student_id, 30)
    assert first == second
    assert first != other
    assert {status for status, _ in first} == {200, 500}
    assert any(is_valid_lookup_answer(body) for _, body in first)


async def test_an_injected_random_generator_drives_the_faults(
    make_app: Callable[..., FastAPI], dp_index: RecordIndex, dp_records: list[StudentRecord]
) -> None:
    config = AgentConfig(api_key=SecretStr(DP_KEY), faults=FaultConfig(error_rate=0.5))
    injected = create_agent_app(config, dp_index, rng=random.Random(4))
    seeded = make_app(error_rate=0.5, seed=4)
    student_id = dp_records[0].student_id
    first = await statuses_and_bodies(injected, student_id, 20)
    assert first == await statuses_and_bodies(seeded, student_id, 20)
    assert {status for status, _ in first} == {200, 500}


def test_rates_are_roughly_honoured() -> None:
    injector = FaultInjector(FaultConfig(error_rate=0.2, garbage_rate=0.1), random.Random(1))
    outcomes = [injector.decide().outcome for _ in range(5000)]
    assert 0.17 < outcomes.count(Outcome.ERROR) / 5000 < 0.23
    assert 0.08 < outcomes.count(Outcome.GARBAGE) / 5000 < 0.12


async def test_latency_delays_the_answer(
    make_app: Callable[..., FastAPI], dp_records: list[StudentRecord]
) -> None:
    started = time.perf_counter()
    answers = await statuses_and_bodies(make_app(latency_ms=150), dp_records[0].student_id, 2)
    assert time.perf_counter() - started >= 0.3
    assert all(status == 200 for status, _ in answers)


def test_jitter_adds_a_seeded_uniform_delay() -> None:
    config = FaultConfig(latency_ms=100, latency_jitter_ms=50)
    delays = [d.delay_s for d in iter_decisions(config, seed=3, times=200)]
    assert all(0.1 <= delay <= 0.15 for delay in delays)
    assert len(set(delays)) > 100
    assert delays == [d.delay_s for d in iter_decisions(config, seed=3, times=200)]
    assert {d.outcome for d in iter_decisions(config, seed=3, times=200)} == {Outcome.NORMAL}


def iter_decisions(config: FaultConfig, *, seed: int, times: int) -> list[FaultDecision]:
    injector = FaultInjector(config, random.Random(seed))
    return [injector.decide() for _ in range(times)]


async def test_faults_spare_the_health_check(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(error_rate=1.0, latency_ms=5_000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://agent.test"
    ) as http:
        started = time.perf_counter()
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert time.perf_counter() - started < 1


def test_without_faults_every_request_is_normal_and_immediate() -> None:
    decisions = iter_decisions(FaultConfig(), seed=1, times=50)
    assert {(d.delay_s, d.outcome) for d in decisions} == {(0.0, Outcome.NORMAL)}


@pytest.mark.parametrize(
    "settings",
    [
        {"error_rate": 1.5},
        {"garbage_rate": -0.1},
        {"latency_ms": -1},
        {"error_rate": 0.6, "garbage_rate": 0.5},
        {"error_budget": 0.1},
    ],
)
def test_impossible_fault_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        FaultConfig(**settings)
