"""The connector while its HSM loses its keys: readiness says so, verifications answer 503
with Retry-After (not 500), and service comes back on its own when the token does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from connector_support import Api
from keys_support import hide_token_objects, restore_token_objects
from pavilion.synth.roster import StudentRecord, pick_examples

pytestmark = pytest.mark.softhsm


async def test_verifications_answer_503_while_the_hsm_cannot_sign_and_recover(
    hsm_api: Api, roster: list[StudentRecord], tmp_path: Path
) -> None:
    api = hsm_api
    provider = await api.register_provider()
    student = pick_examples(roster).current

    async def verify() -> int:
        response = await api.verify(
            provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
        )
        if response.status_code == 503:
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
            problem = response.json()
            assert problem["type"].endswith("/pkcs11-unavailable")
            assert problem["status"] == 503
        return response.status_code

    assert await verify() == 201
    assert (await api.client.get("/readyz")).status_code == 200

    tokens = tmp_path / "hsm" / "tokens"
    hide_token_objects(tokens, tmp_path / "stash")
    assert await verify() == 503
    assert await verify() == 503  # fails fast until the next recovery attempt
    await asyncio.sleep(1.1)  # the readiness cache and the first backoff
    ready = await api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["keystore"] == "failing: Pkcs11Unavailable"
    assert ready.json()["checks"]["database"] == "ok"

    restore_token_objects(tokens, tmp_path / "stash")
    deadline = time.monotonic() + 20
    while (await api.client.get("/readyz")).status_code != 200:  # readiness drives recovery
        assert time.monotonic() < deadline, "the keystore did not recover"
        await asyncio.sleep(0.2)
    assert await verify() == 201  # no restart
