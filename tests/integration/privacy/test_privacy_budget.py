"""Differentially private releases through the API, against the persistent budget ledger.

The central property: however many releases race, the ledger never spends more than the
limit (SQLite and PostgreSQL, through the app role with row-level security)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connector_support import Api
from pavilion.privacy.models import EPSILON_UNITS
from pavilion.privacy.receipts import verify_bundle
from pavilion.synth.roster import StudentRecord


async def seed_verifications(api: Api, roster: list[StudentRecord]) -> str:
    provider = await api.register_provider()
    for record in roster[:6]:
        response = await api.verify(
            provider["id"], {"type": "student_status"}, {"student_id": record.student_id}
        )
        assert response.status_code == 201
    await api.verify(
        provider["id"], {"type": "age_over", "threshold": 18}, {"student_id": "S0000000"}
    )
    return str(provider["id"])


async def release(api: Api, **body: Any) -> httpx.Response:
    payload = {"statistic": "count", "epsilon": 0.3, "group_by": ["claim_type", "outcome"]} | body
    return await api.client.post(
        "/v1/privacy/releases", json=payload, headers=api.auth("compliance")
    )


async def test_concurrent_releases_never_overspend(api: Api, roster: list[StudentRecord]) -> None:
    await seed_verifications(api, roster)
    not_yet = await release(api)
    assert not_yet.status_code == 409
    assert not_yet.json()["type"].endswith("privacy-budget-not-configured")

    budget = await api.client.put(
        "/v1/privacy/budgets/verifications",
        json={"epsilon": 1.0, "delta": 0, "period": "month"},
        headers=api.auth("tenant-admin"),
    )
    assert budget.status_code == 200, budget.text
    assert budget.json()["epsilon"]["remaining"] == 1.0

    answers = await asyncio.gather(*(release(api) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [409] * 9, [a.text for a in answers if a.status_code >= 500]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["type"].endswith("privacy-budget-exhausted")
    assert refused.json()["budget"]["epsilon"]["remaining"] < 0.3

    state = await api.client.get(
        "/v1/privacy/budgets/verifications?ledger=50", headers=api.auth("compliance")
    )
    body = state.json()
    assert body["epsilon"]["spent"] <= body["epsilon"]["limit"]
    assert body["epsilon"]["spent"] == 0.9
    assert len(body["ledger"]) == 3
    ledger_sum = await api.rt.privacy.budgets.spent_in_ledger(
        api.rt.db, api.tenant_id, "verifications", datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert ledger_sum == (round(0.9 * EPSILON_UNITS), 0)

    ok = next(a for a in answers if a.status_code == 201).json()
    groups = {(g["key"]["claim_type"], g["key"]["outcome"]): g["count"] for g in ok["groups"]}
    assert len(groups) == 3 * 6 + 1
    assert ok["privacy_loss"]["epsilon"] == 0.3
    assert ok["expected_error"][0]["accuracy"] > 0

    bundle = await api.client.get(
        f"/v1/privacy/receipts/{ok['receipt_id']}", headers=api.auth("auditor")
    )
    verified = verify_bundle(
        bundle.json(),
        jwks=api.rt.privacy.receipts.jwks(),
        verifier_key=api.rt.audit.verifier_key_for(api.tenant_id),
        origin=api.rt.audit.origin(api.tenant_id),
    )
    assert verified.payload["kind"] == "differential.release"
    assert verified.payload["budget"]["epsilon"] == 0.3


async def test_budget_resets_each_period_and_limits_can_change(
    api: Api, roster: list[StudentRecord]
) -> None:
    await seed_verifications(api, roster)
    await api.client.put(
        "/v1/privacy/budgets/verifications",
        json={"epsilon": 0.5, "delta": 1e-6, "period": "day"},
        headers=api.auth("tenant-admin"),
    )
    first = await release(api, epsilon=0.4, mechanism="gaussian", delta=5e-7)
    assert first.status_code == 201, first.text
    assert first.json()["privacy_loss"]["rho"] > 0
    assert (await release(api, epsilon=0.4)).status_code == 409

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    api.rt.clock = lambda: tomorrow
    state = await api.client.get(
        "/v1/privacy/budgets/verifications", headers=api.auth("compliance")
    )
    assert state.json()["epsilon"]["spent"] == 0
    assert (await release(api, epsilon=0.4)).status_code == 201

    raised = await api.client.put(
        "/v1/privacy/budgets/verifications",
        json={"epsilon": 2.0, "period": "day"},
        headers=api.auth("tenant-admin"),
    )
    assert raised.json()["epsilon"]["spent"] == 0.4  # what was spent stays spent
    assert (await release(api, statistic="mean", value="approved", epsilon=1.0)).status_code == 201


async def test_release_rules_and_roles(api: Api, roster: list[StudentRecord]) -> None:
    await seed_verifications(api, roster)
    as_broker = await api.client.post(
        "/v1/privacy/releases",
        json={"statistic": "count", "epsilon": 0.1},
        headers=api.auth("broker"),
    )
    assert as_broker.status_code == 403
    budget_by_compliance = await api.client.put(
        "/v1/privacy/budgets/verifications", json={"epsilon": 1}, headers=api.auth("compliance")
    )
    assert budget_by_compliance.status_code == 403
    unknown = await api.client.put(
        "/v1/privacy/budgets/patients", json={"epsilon": 1}, headers=api.auth("tenant-admin")
    )
    assert unknown.status_code == 422
    await api.client.put(
        "/v1/privacy/budgets/verifications", json={"epsilon": 5}, headers=api.auth("tenant-admin")
    )
    bad = await release(api, statistic="sum", value="approved", bounds=[0, 7])
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "bounds"
    window = await release(
        api, since=(datetime.now(UTC) + timedelta(days=1)).isoformat(), group_by=[]
    )
    assert window.status_code == 201
    assert abs(window.json()["groups"][0]["count"]) < 40  # no events in the future window
