"""Tag set pushes through the connector's API: signatures, replays, alterations, chunking."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey

from connector_support import Api
from pavilion.dpagent.oprf_keys import OprfKeyRing
from pavilion.dpagent.tag_set_push import (
    PushTarget,
    TagSetPusher,
    TagSetPushFailed,
    encode_sets,
    manifest_for,
    tag_set_inputs,
)
from pavilion.jose import b64url, b64url_decode
from pavilion.privacy import psi
from pavilion.privacy.tag_sets import CHUNK_BYTES
from pavilion.synth.roster import StudentRecord
from privacy_support import problem_field


class Dp:
    """A DP with keys, registered at the connector, that can sign and push sets."""

    def __init__(self, api: Api, ring: OprfKeyRing, provider_id: str) -> None:
        self.api, self.ring, self.provider_id = api, ring, provider_id
        self.version = 0

    def manifest(self, encoded: psi.EncodedSet, **changes: Any) -> psi.TagSetManifest:
        self.version += 1
        values: dict[str, Any] = {
            "tenant_id": self.api.tenant_id,
            "provider_id": self.provider_id,
            "version": self.version,
            "issued_at": datetime.now(UTC),
        } | changes
        return manifest_for("roster", encoded, self.ring.current(), **values)

    def sign(self, manifest: psi.TagSetManifest, key: OKPKey | None = None) -> str:
        return psi.sign_manifest(manifest, key or self.ring.signing_key())

    def pusher(self) -> TagSetPusher:
        return TagSetPusher(
            PushTarget("http://connector.test", self.api.tokens["dp-admin"], "", ""),
            transport=httpx.ASGITransport(app=self.api.client._transport.app),  # type: ignore[attr-defined]
        )

    async def begin(self, token: str) -> httpx.Response:
        return await self.api.client.post(
            f"/v1/privacy/providers/{self.provider_id}/tag-sets",
            json={"manifest": token},
            headers=self.api.auth("dp-admin"),
        )


@pytest.fixture
async def dp(api: Api, tmp_path: Path) -> Dp:
    ring = OprfKeyRing.open(tmp_path / "keys")
    provider = await api.register_provider()
    response = await api.client.put(
        f"/v1/privacy/providers/{provider['id']}/tag-set-key",
        json={"jwk": ring.signing_public_jwk()},
        headers=api.auth("dp-admin"),
    )
    assert response.status_code == 200
    return Dp(api, ring, provider["id"])


def encode(dp: Dp, roster: list[StudentRecord]) -> psi.EncodedSet:
    sets = tag_set_inputs(roster)
    return encode_sets({"roster": sets["roster"]}, dp.ring.current(), tag_bytes=8, workers=1)[
        "roster"
    ]


async def upload(dp: Dp, token: str, data: bytes) -> httpx.Response:
    begun = await dp.begin(token)
    assert begun.status_code == 201, begun.text
    upload_id = begun.json()["upload_id"]
    for seq in range(begun.json()["chunks"]):
        put = await dp.api.client.put(
            f"/v1/privacy/tag-sets/{upload_id}/chunks/{seq}",
            content=data[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES],
            headers=dp.api.auth("dp-admin") | {"content-type": "application/octet-stream"},
        )
        assert put.status_code == 204, put.text
    return await dp.api.client.post(
        f"/v1/privacy/tag-sets/{upload_id}/commit", headers=dp.api.auth("dp-admin")
    )


async def test_replayed_roster_upload_is_rejected(dp: Dp, roster: list[StudentRecord]) -> None:
    encoded = encode(dp, roster)
    token = dp.sign(dp.manifest(encoded))
    first = await upload(dp, token, encoded.data)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1

    replay = await dp.begin(token)
    assert replay.status_code == 409
    assert replay.json()["type"].endswith("tag-set-replay")

    newer = dp.sign(dp.manifest(encoded))
    assert (await upload(dp, newer, encoded.data)).status_code == 200
    dp.version = 0  # a rollback to an older version
    rollback = await dp.begin(dp.sign(dp.manifest(encoded)))
    assert rollback.status_code == 409


async def test_altered_roster_upload_is_rejected(dp: Dp, roster: list[StudentRecord]) -> None:
    encoded = encode(dp, roster)
    token = dp.sign(dp.manifest(encoded))
    tampered = bytearray(encoded.data)
    tampered[5] ^= 0x01
    response = await upload(dp, token, bytes(tampered))
    assert response.status_code == 422
    assert "SHA-256" in response.json()["detail"]
    listing = await dp.api.client.get("/v1/privacy/tag-sets", headers=dp.api.auth("broker"))
    assert listing.json()["items"] == []  # nothing became active

    # An altered manifest (more entries claimed) no longer matches its signature.
    header, payload, signature = dp.sign(dp.manifest(encoded)).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["count"] += 1
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert (await dp.begin(forged)).status_code == 422

    # Signed by someone else's key.
    other = dp.sign(dp.manifest(encoded), OKPKey.generate_key("Ed25519"))
    assert (await dp.begin(other)).status_code == 422


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tenant_id": "00000000-0000-0000-0000-000000000000"}, None),
        ({"provider_id": "another-provider"}, None),
        ({"issued_at": datetime.now(UTC) - timedelta(days=2)}, "manifest.issued_at"),
        ({"issued_at": datetime.now(UTC) + timedelta(hours=1)}, "manifest.issued_at"),
    ],
)
async def test_manifest_must_be_for_this_tenant_provider_and_fresh(
    dp: Dp, roster: list[StudentRecord], changes: dict[str, Any], field: str | None
) -> None:
    encoded = encode(dp, roster[:5])
    response = await dp.begin(dp.sign(dp.manifest(encoded, **changes)))
    assert response.status_code == 422
    if field:
        assert problem_field(response) == field


async def test_chunks_are_checked_and_uploads_complete(dp: Dp, roster: list[StudentRecord]) -> None:
    # A large set (synthetic tags) spans several chunks.
    tags = [i.to_bytes(8, "big") for i in range(1, 3 * CHUNK_BYTES // 8 + 100)]
    encoded = psi.EncodedSet.from_tags(tags, 8)
    token = dp.sign(dp.manifest(encoded))
    begun = await dp.begin(token)
    body = begun.json()
    assert body["chunks"] == 4
    upload_id = body["upload_id"]
    auth = dp.api.auth("dp-admin") | {"content-type": "application/octet-stream"}
    url = f"/v1/privacy/tag-sets/{upload_id}/chunks"
    short = await dp.api.client.put(f"{url}/0", content=b"xx", headers=auth)
    assert short.status_code == 422
    assert problem_field(short) == "body"
    beyond = await dp.api.client.put(f"{url}/9", content=b"xx", headers=auth)
    assert problem_field(beyond) == "seq"
    for seq in (0, 1):
        piece = encoded.data[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
        assert (
            await dp.api.client.put(f"{url}/{seq}", content=piece, headers=auth)
        ).status_code == 204
    # Resending a chunk is harmless.
    piece = encoded.data[:CHUNK_BYTES]
    assert (await dp.api.client.put(f"{url}/0", content=piece, headers=auth)).status_code == 204
    commit_url = f"/v1/privacy/tag-sets/{upload_id}/commit"
    incomplete = await dp.api.client.post(commit_url, headers=dp.api.auth("dp-admin"))
    assert incomplete.status_code == 409
    assert incomplete.json()["missing"] == [2, 3]
    for seq in (2, 3):
        piece = encoded.data[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES]
        assert (
            await dp.api.client.put(f"{url}/{seq}", content=piece, headers=auth)
        ).status_code == 204
    done = await dp.api.client.post(commit_url, headers=dp.api.auth("dp-admin"))
    assert done.status_code == 200, done.text
    assert done.json()["count"] == len(tags)
    again = await dp.api.client.post(commit_url, headers=dp.api.auth("dp-admin"))
    assert again.status_code == 409  # no longer receiving


async def test_unsorted_tags_are_refused(dp: Dp) -> None:
    data = (2).to_bytes(8, "big") + (1).to_bytes(8, "big")
    encoded = psi.EncodedSet(8, data)
    response = await upload(dp, dp.sign(dp.manifest(encoded)), data)
    assert response.status_code == 422
    assert problem_field(response) == "data"


async def test_only_dp_admins_push_and_keys_must_be_public(
    api: Api, dp: Dp, roster: list[StudentRecord]
) -> None:
    encoded = encode(dp, roster[:3])
    token = dp.sign(dp.manifest(encoded))
    as_broker = await api.client.post(
        f"/v1/privacy/providers/{dp.provider_id}/tag-sets",
        json={"manifest": token},
        headers=api.auth("broker"),
    )
    assert as_broker.status_code == 403
    private = dp.ring.signing_key().as_dict(private=True)
    response = await api.client.put(
        f"/v1/privacy/providers/{dp.provider_id}/tag-set-key",
        json={"jwk": private},
        headers=api.auth("dp-admin"),
    )
    assert response.status_code == 422
    assert problem_field(response) == "jwk.d"
    not_ed25519 = await api.client.put(
        f"/v1/privacy/providers/{dp.provider_id}/tag-set-key",
        json={"jwk": {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}},
        headers=api.auth("dp-admin"),
    )
    assert problem_field(not_ed25519) == "jwk"
    other = await api.register_provider(name="No Key University")
    no_key = await api.client.post(
        f"/v1/privacy/providers/{other['id']}/tag-sets",
        json={"manifest": token},
        headers=api.auth("dp-admin"),
    )
    assert no_key.status_code == 409
    assert "tag-set signing key" in no_key.json()["detail"]


async def test_pusher_reports_connector_errors(dp: Dp, roster: list[StudentRecord]) -> None:
    encoded = encode(dp, roster[:3])
    pusher = TagSetPusher(
        PushTarget("http://connector.test", "pav_not-a-token", "", dp.provider_id),
        transport=httpx.ASGITransport(app=dp.api.client._transport.app),  # type: ignore[attr-defined]
    )
    with pytest.raises(TagSetPushFailed, match="HTTP 401"):
        await pusher.upload(dp.sign(dp.manifest(encoded)), encoded)
    await pusher.aclose()


async def test_the_old_roster_paths_are_deprecated_aliases(
    dp: Dp, roster: list[StudentRecord]
) -> None:
    auth = dp.api.auth("dp-admin")
    successor = 'rel="successor-version"'
    key = await dp.api.client.put(
        f"/v1/privacy/providers/{dp.provider_id}/roster-key",
        json={"jwk": dp.ring.signing_public_jwk()},
        headers=auth,
    )
    assert key.status_code == 200
    assert key.headers["link"] == (
        f"</v1/privacy/providers/{dp.provider_id}/tag-set-key>; {successor}"
    )
    encoded = encode(dp, roster)
    begun = await dp.api.client.post(
        f"/v1/privacy/providers/{dp.provider_id}/rosters",
        json={"manifest": dp.sign(dp.manifest(encoded))},
        headers=auth,
    )
    assert begun.status_code == 201, begun.text
    assert begun.headers["deprecation"].startswith("@")
    upload_id = begun.json()["upload_id"]
    for seq in range(begun.json()["chunks"]):
        put = await dp.api.client.put(
            f"/v1/privacy/rosters/{upload_id}/chunks/{seq}",
            content=encoded.data[seq * CHUNK_BYTES : (seq + 1) * CHUNK_BYTES],
            headers=auth | {"content-type": "application/octet-stream"},
        )
        assert put.status_code == 204, put.text
        assert put.headers["link"] == (
            f"</v1/privacy/tag-sets/{upload_id}/chunks/{seq}>; {successor}"
        )
    committed = await dp.api.client.post(f"/v1/privacy/rosters/{upload_id}/commit", headers=auth)
    assert committed.status_code == 200, committed.text
    assert committed.json()["version"] == 1
    old = await dp.api.client.get("/v1/privacy/rosters", headers=dp.api.auth("broker"))
    new = await dp.api.client.get("/v1/privacy/tag-sets", headers=dp.api.auth("broker"))
    assert old.json() == new.json()
    assert len(new.json()["items"]) == 1
    assert old.headers["link"] == f"</v1/privacy/tag-sets>; {successor}"
    assert "deprecation" not in new.headers


async def test_a_push_without_a_registered_key_fails_before_any_tag_is_computed(
    api: Api, tmp_path: Path, roster: list[StudentRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pavilion.dpagent import tag_set_push

    ring = OprfKeyRing.open(tmp_path / "keys")
    provider = await api.register_provider()
    computed: list[object] = []
    monkeypatch.setattr(tag_set_push, "encode_sets", lambda *a, **k: computed.append(a))
    target = PushTarget(
        "http://connector.test", api.tokens["dp-admin"], api.tenant_id, provider["id"]
    )
    transport = httpx.ASGITransport(app=api.client._transport.app)  # type: ignore[attr-defined]
    with pytest.raises(TagSetPushFailed) as missing:
        await tag_set_push.push_tag_sets(roster, ring, target, workers=1, transport=transport)
    assert computed == []  # refused before the expensive part
    assert missing.value.extra["status"] == 404
    assert "pavilion privacy tag-set-key register" in missing.value.detail
    assert f"--provider {provider['id']}" in missing.value.detail

    other = OprfKeyRing.open(tmp_path / "other-keys")
    registered = await api.client.put(
        f"/v1/privacy/providers/{provider['id']}/tag-set-key",
        json={"jwk": other.signing_public_jwk()},
        headers=api.auth("dp-admin"),
    )
    assert registered.status_code == 200
    shown = await api.client.get(
        f"/v1/privacy/providers/{provider['id']}/tag-set-key", headers=api.auth("dp-admin")
    )
    assert shown.json()["kid"] == other.signing_public_jwk()["kid"]
    with pytest.raises(TagSetPushFailed) as stale:
        await tag_set_push.push_tag_sets(roster, ring, target, workers=1, transport=transport)
    assert computed == []
    assert ring.signing_public_jwk()["kid"] in stale.value.detail
    assert "tag-set-key register" in stale.value.detail
