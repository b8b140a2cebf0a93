"""AnonCreds issuance state in the database: issuers, registries, published states, offers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from connector_support import Api
from pavilion.credentials.anoncreds import engine
from pavilion.credentials.anoncreds.models import AnoncredsIssuer
from pavilion.credentials.anoncreds.service import AnoncredsService
from pavilion.errors import Conflict, CryptoError, InvalidRequest, NotFound
from privacy_support import fixture_material, use_fixture_issuer


async def test_issuers_are_created_once_and_secrets_stay_sealed(api: Api) -> None:
    use_fixture_issuer(api.rt, capacity=3)
    provider = await api.register_provider()
    service = api.rt.privacy.anoncreds
    first, second = await asyncio.gather(
        service.ensure_issuer(api.tenant_id, provider["id"]),
        AnoncredsService(
            api.rt.db,
            api.rt.tenant_keys,
            service.config,
            clock=api.rt.clock,
            material_factory=fixture_material,
        ).ensure_issuer(api.tenant_id, provider["id"]),
    )
    assert first.row_id == second.row_id  # one credential definition per DP
    fresh = AnoncredsService(
        api.rt.db, api.rt.tenant_keys, service.config, clock=api.rt.clock
    )  # a new process: loads and unseals from the database, no new key generation
    loaded = await fresh.ensure_issuer(api.tenant_id, provider["id"])
    assert loaded.material == first.material
    async with api.rt.db.transaction(api.tenant_id) as session:
        row = (await session.execute(select(AnoncredsIssuer))).scalar_one()
        assert first.material.cred_def_private_json.encode() not in row.sealed_private
        await session.execute(
            update(AnoncredsIssuer).values(
                sealed_private=row.sealed_private[:-1] + bytes([row.sealed_private[-1] ^ 1])
            )
        )
    tampered = AnoncredsService(api.rt.db, api.rt.tenant_keys, service.config, clock=api.rt.clock)
    with pytest.raises(CryptoError, match="does not open"):
        await tampered.ensure_issuer(api.tenant_id, provider["id"])


async def test_published_states_and_their_errors(api: Api, tmp_path: Path) -> None:
    use_fixture_issuer(api.rt, capacity=3)
    provider = await api.register_provider()
    service = api.rt.privacy.anoncreds
    issuer = await service.ensure_issuer(api.tenant_id, provider["id"])
    slots = [
        await service.allocate(
            api.tenant_id, issuer, subject_ref="ab" * 32, purpose="one-time", details={}
        )
        for _ in range(2)
    ]
    now = int(api.rt.clock().timestamp())
    # Inside an interval that includes the registry's first state: that state.
    stamp, _ = await service.status_list_within(api.tenant_id, slots[0].registry_id, None, now + 5)
    # An interval starting later than any state: a timestamp-only state is published.
    later, listed = await service.status_list_within(
        api.tenant_id, slots[0].registry_id, now + 2, now + 60
    )
    assert later >= now + 2 > stamp
    assert engine.revocation_list(listed) == [0] * 4
    with pytest.raises(InvalidRequest, match="has ended"):
        await service.status_list_within(api.tenant_id, slots[0].registry_id, 0, now - 1000)
    with pytest.raises(InvalidRequest, match="ends before"):
        await service.status_list_within(
            api.tenant_id, slots[0].registry_id, later + 50, later + 10
        )

    assert await service.revoke_subject(api.tenant_id, provider["id"], "ab" * 32) == 2
    assert await service.revoke_subject(api.tenant_id, provider["id"], "ab" * 32) == 0
    deltas = await service.deltas(api.tenant_id, slots[0].registry_id, since=later)
    assert [d["revoked"] for d in deltas] == [[1, 2]]
    with pytest.raises(NotFound):
        await service.deltas(api.tenant_id, "missing")
    with pytest.raises(NotFound):
        await service.tails(api.tenant_id, "missing")
    with pytest.raises(InvalidRequest):
        await service.revoke(api.tenant_id, [])
    with pytest.raises(NotFound):
        await service.verification_material(api.tenant_id, [{"cred_def_id": "x", "schema_id": "y"}])
    with pytest.raises(NotFound, match="no revocation state"):
        await service.verification_material(
            api.tenant_id,
            [
                {
                    "cred_def_id": issuer.material.cred_def_id,
                    "schema_id": issuer.material.schema_id,
                    "rev_reg_id": slots[0].rev_reg_def_id,
                    "timestamp": 1,
                }
            ],
        )
    material = await service.verification_material(
        api.tenant_id,
        [{"cred_def_id": issuer.material.cred_def_id, "schema_id": issuer.material.schema_id}],
    )
    assert material["rev_reg_defs"] == {}
    path = service.tails_path(slots[0].tails_hash, b"tails")  # already on disk: kept as is
    assert path.read_bytes() != b"tails"


async def test_offers_answer_one_request_and_expire(api: Api) -> None:
    use_fixture_issuer(api.rt)
    provider = await api.register_provider()
    service = api.rt.privacy.anoncreds
    offer = await service.offer(api.tenant_id, provider["id"])
    assert json.loads(json.dumps(offer["offer"]))["cred_def_id"] == offer["cred_def_id"]
    await service.take_offer(api.tenant_id, offer["offer_id"])
    with pytest.raises(Conflict):
        await service.take_offer(api.tenant_id, offer["offer_id"])
    with pytest.raises(NotFound):
        await service.take_offer(api.tenant_id, "missing")
    stale = await service.offer(api.tenant_id, provider["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    api.rt.clock = lambda: later
    with pytest.raises(Conflict, match="expired"):
        await service.take_offer(api.tenant_id, stale["offer_id"])
