"""The connector while its HSM loses its keys: readiness says so, verifications answer 503
with Retry-After (not 500), and service comes back on its own when the token does; with a
standby token holding the same keys, verifications go on, signed by the standby."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from connector_support import Api, connector_api, connector_runtime
from keys_support import (
    Token,
    hide_token_objects,
    restore_token_objects,
    unverified,
    verify_with_pyjwt,
)
from pavilion.config.settings import Settings
from pavilion.keystore.factory import hsm_config, hsm_standby_config
from pavilion.keystore.pkcs11 import Pkcs11Token
from pavilion.keystore.replication import replicate
from pavilion.synth.roster import StudentRecord, pick_examples
from pavilion.tenancy.roles import Role

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


async def test_verifications_fail_over_to_the_standby_token(
    hsm_settings: Settings,
    hsm_token: Token,
    agent_app: Any,
    roster: list[StudentRecord],
    tmp_path: Path,
) -> None:
    pin = secrets.token_hex(6)
    so_pin = secrets.token_hex(6)
    command = ["softhsm2-util", "--init-token", "--free", "--label", "standby", "--so-pin", so_pin]
    subprocess.run([*command, "--pin", pin], check=True, capture_output=True)
    pin_file = tmp_path / "standby-pin"
    pin_file.write_text(pin, encoding="utf-8")
    settings = hsm_settings.model_copy(
        update={"hsm_standby_token_label": "standby", "hsm_standby_pin_file": pin_file}
    )
    async with (
        connector_runtime(settings, agent_app) as rt,
        connector_api(rt, tenant="tenant-failover", roles=(Role.DP_ADMIN, Role.BROKER)) as api,
    ):
        standby = hsm_standby_config(settings)
        assert standby is not None
        with Pkcs11Token(hsm_config(settings)) as primary, Pkcs11Token(standby) as copy:
            replicate(primary, copy)  # what `pavilion keys replicate` does
        provider = await api.register_provider()
        student = pick_examples(roster).current

        async def credential() -> str:
            response = await api.verify(
                provider["id"], {"type": "student_status"}, {"student_id": student.student_id}
            )
            assert response.status_code == 201, response.text
            token: str = response.json()["credential"]
            return token

        before = await credential()
        hide_token_objects(tmp_path / "hsm" / "tokens", tmp_path / "stash", only=hsm_token.label)
        after = await credential()  # signed by the standby: no 503
        assert unverified(after)[0]["kid"] == unverified(before)[0]["kid"]
        jwks = (await api.client.get("/.well-known/jwks.json")).json()
        assert verify_with_pyjwt(after, jwks)["vc"]["credentialSubject"] == {
            "studentStatus": {"current": True}
        }
        await asyncio.sleep(1.05)  # past the readiness cache
        ready = await api.client.get("/readyz")
        assert ready.json()["checks"]["keystore"] == "ok"
        restore_token_objects(tmp_path / "hsm" / "tokens", tmp_path / "stash")
