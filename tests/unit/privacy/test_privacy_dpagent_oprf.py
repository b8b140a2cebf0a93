"""The DP agent's OPRF side: its keys, its per-tenant guessing limit, its endpoint."""

from __future__ import annotations

import json
import math
import stat
from datetime import date
from pathlib import Path

import httpx
import pytest
import structlog

from connector_support import AGENT_KEY
from pavilion.dpagent.oprf_keys import KEYS_FILE, SIGNING_FILE, OprfKeyRing, UnknownOprfKey
from pavilion.dpagent.rate_limit import MAX_TENANTS, TenantRateLimiter
from pavilion.errors import ConfigurationError
from pavilion.jose import b64url, b64url_decode
from pavilion.privacy import oprf, psi
from pavilion.synth.roster import StudentRecord, generate_roster
from privacy_support import agent_app

AUTH = {"authorization": f"Bearer {AGENT_KEY}", "x-pavilion-tenant": "tenant-1"}


@pytest.fixture
def records() -> list[StudentRecord]:
    return generate_roster(10, seed=5, reference_date=date(2026, 1, 1))


def test_keys_are_generated_private_and_rotated(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="dp-keys init"):
        OprfKeyRing.open(tmp_path / "none", create=False)
    ring = OprfKeyRing.open(tmp_path / "keys")
    for name in (KEYS_FILE, SIGNING_FILE):
        mode = (tmp_path / "keys" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    first = ring.current()
    assert oprf.VOPRFServer(first.secret, first.public_key).public_key == first.public_key
    second = ring.rotate()
    assert ring.get(first.key_id).state == "previous"
    assert {k.key_id for k in ring.all_keys()} == {first.key_id, second.key_id}
    ring.rotate()
    with pytest.raises(UnknownOprfKey, match="push its tag sets again"):
        ring.get(first.key_id)
    # Another process (the CLI) rotating the file is seen by a running agent's ring.
    reader = OprfKeyRing.open(tmp_path / "keys", create=False)
    rotated = ring.rotate()
    assert reader.current().key_id == rotated.key_id
    jwk = reader.signing_public_jwk()
    assert "d" not in jwk
    assert jwk["kid"]
    assert jwk["alg"] == "Ed25519"


def test_a_key_file_without_a_current_key_is_refused(tmp_path: Path) -> None:
    ring = OprfKeyRing.open(tmp_path / "keys")
    path = tmp_path / "keys" / KEYS_FILE
    entries = json.loads(path.read_text())
    entries["keys"][0]["state"] = "previous"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigurationError, match="no current"):
        OprfKeyRing.open(tmp_path / "keys")
    del ring
    (tmp_path / "k2").mkdir()
    (tmp_path / "k2" / KEYS_FILE).write_text(json.dumps(entries))
    with pytest.raises(ConfigurationError, match="does not exist"):
        OprfKeyRing.open(tmp_path / "k2", create=False)
    missing = OprfKeyRing(tmp_path / "empty")
    with pytest.raises(ConfigurationError, match="cannot read"):
        missing.refresh()


def test_rate_limiter_counts_elements_per_tenant() -> None:
    now = [0.0]
    limiter = TenantRateLimiter(rate=2.0, burst=10, clock=lambda: now[0])
    assert limiter.take("a", 8) is None
    assert limiter.take("a", 5) == pytest.approx(1.5)  # 3 short at 2 per second
    assert limiter.take("b", 10) is None  # tenants do not share a bucket
    assert math.isinf(limiter.take("c", 11) or 0)  # more than a burst never fits
    now[0] = 10.0
    assert limiter.remaining("a") == 10
    assert limiter.remaining("never-seen") == 10
    with pytest.raises(ValueError, match="positive"):
        TenantRateLimiter(rate=0, burst=1)
    for i in range(MAX_TENANTS + 5):
        limiter.take(f"t{i}", 1)
    assert len(limiter._buckets) == MAX_TENANTS


async def test_evaluate_answers_a_verifiable_batch(
    records: list[StudentRecord], tmp_path: Path
) -> None:
    app = agent_app(records, tmp_path / "keys")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as http:
        keys = (await http.get("/v1/oprf/keys", headers=AUTH)).json()
        current = next(k for k in keys["keys"] if k["state"] == "current")
        assert "d" not in keys["tag_set_signing_key"]
        public_key = b64url_decode(current["public_key"])
        query = psi.blind_inputs(public_key, [b"one", b"two"])
        body = {
            "key_id": current["key_id"],
            "elements": [b64url(e) for e in query.blinded_elements],
        }
        answer = await http.post("/v1/oprf/evaluate", json=body, headers=AUTH)
        assert answer.status_code == 200
        data = answer.json()
        outputs = psi.finalize_outputs(
            query, [b64url_decode(e) for e in data["evaluated"]], b64url_decode(data["proof"])
        )
        assert len(outputs) == 2


async def test_evaluate_refuses_bad_requests_by_field(
    records: list[StudentRecord], tmp_path: Path
) -> None:
    app = agent_app(records, tmp_path / "keys", rate=0.01, burst=4, max_batch=3)
    ring = app.state.oprf.ring
    key_id = ring.current().key_id
    point = b64url(oprf.VOPRFClient(ring.current().public_key).blind(b"x").blinded_element)
    not_point = b64url(b"\xff" * 32)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as http:

        async def call(elements: list[str], **headers: str) -> httpx.Response:
            return await http.post(
                "/v1/oprf/evaluate",
                json={"key_id": headers.pop("key_id", key_id), "elements": elements},
                headers=AUTH | headers,
            )

        no_auth = await http.post("/v1/oprf/evaluate", json={}, headers={"x-pavilion-tenant": "t"})
        assert no_auth.status_code == 401
        no_tenant = await http.post(
            "/v1/oprf/evaluate",
            json={"key_id": key_id, "elements": [point]},
            headers={"authorization": AUTH["authorization"]},
        )
        assert no_tenant.status_code == 422
        too_many = await call([point] * 4)
        assert too_many.status_code == 422
        assert too_many.json()["errors"][0]["field"] == "elements"
        bad = await call([point, not_point])
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "elements.1"
        garbled = await call([point, "!" * 43])
        assert garbled.json()["errors"][0]["field"] == "elements.1"
        unknown = await call([point], key_id="nope")
        assert unknown.status_code == 409
        assert unknown.json()["type"].endswith("unknown-oprf-key")
        assert (await call([point])).status_code == 200
        limited = await call([point, point])
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        other_tenant = await call([point, point], **{"x-pavilion-tenant": "tenant-2"})
        assert other_tenant.status_code == 200


async def test_agent_logs_counts_not_elements(records: list[StudentRecord], tmp_path: Path) -> None:
    app = agent_app(records, tmp_path / "keys")
    ring = app.state.oprf.ring
    blinded = oprf.VOPRFClient(ring.current().public_key).blind(records[0].email.encode())
    element = b64url(blinded.blinded_element)
    transport = httpx.ASGITransport(app=app)
    with structlog.testing.capture_logs() as events:
        async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as http:
            body = {"key_id": ring.current().key_id, "elements": [element]}
            await http.post("/v1/oprf/evaluate", json=body, headers=AUTH)
    logged = json.dumps(events)
    assert element not in logged
    assert records[0].email not in logged
    assert events[-1]["elements"] == 1
    assert events[-1]["outcome"] == "evaluated"


async def test_evaluate_refuses_non_canonical_base64url(
    records: list[StudentRecord], tmp_path: Path
) -> None:
    """RFC 4648 section 3.5: the pad bits of the last character must be zero; an element
    whose trailing bits are not is another spelling of the same 32 bytes, and is refused."""
    app = agent_app(records, tmp_path / "keys")
    ring = app.state.oprf.ring
    canonical = b64url(oprf.VOPRFClient(ring.current().public_key).blind(b"x").blinded_element)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(canonical[-1])
    # 43 characters carry 258 bits for 256: the last character's two low bits are unused.
    variants = [canonical[:-1] + alphabet[last | bits] for bits in (1, 2, 3)]
    assert all(b64url_decode(v) == b64url_decode(canonical) for v in variants)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent.test") as http:
        body = {"key_id": ring.current().key_id, "elements": [canonical]}
        assert (await http.post("/v1/oprf/evaluate", json=body, headers=AUTH)).status_code == 200
        for variant in [v for v in variants if v != canonical]:
            body = {"key_id": ring.current().key_id, "elements": [canonical, variant]}
            refused = await http.post("/v1/oprf/evaluate", json=body, headers=AUTH)
            assert refused.status_code == 422
            problem = refused.json()
            assert problem["errors"][0]["field"] == "elements.1"
            assert "non-canonical" in problem["errors"][0]["message"]
        padded = {"key_id": ring.current().key_id, "elements": [canonical[:-1] + "="]}
        refused = await http.post("/v1/oprf/evaluate", json=padded, headers=AUTH)
        assert refused.status_code == 422
