"""The DP side of a tag set push: encode the sets of the DP's roster as OPRF tags (tag sets),
sign their manifests, upload them to the connector.

Tag sets published from a roster:

* ``roster``: every subject (lets the connector answer "false" rather than "unknown");
* ``student_status``: subjects currently enrolled;
* ``membership:<club>``: the members of each club.

Each subject enters a set once per non-empty combination of its identifiers (student id,
e-mail, both), so a connector asking with both identifiers matches only when they belong to
the same person, as a lookup would. One scalar multiplication per entry is the cost;
libsodium runs it without the GIL, so evaluation is spread over a thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from pavilion.dpagent.oprf_keys import OprfKey, OprfKeyRing
from pavilion.errors import PavilionError, ProviderUnavailable
from pavilion.privacy import psi
from pavilion.privacy.psi import EncodedSet, TagSetManifest
from pavilion.synth.roster import StudentRecord
from pavilion.verification.claims import CURRENT_ENROLMENT


def tag_set_inputs(records: Iterable[StudentRecord]) -> dict[str, list[bytes]]:
    """The OPRF inputs of every set the roster publishes."""
    sets: dict[str, list[bytes]] = {psi.ROSTER_SET: [], psi.STUDENT_SET: []}
    for record in records:
        subsets = psi.identifier_subsets({"student_id": record.student_id, "email": record.email})
        names = [psi.ROSTER_SET]
        if record.enrolment_status in CURRENT_ENROLMENT:
            names.append(psi.STUDENT_SET)
        names += [psi.membership_set(club) for club in record.memberships]
        for name in names:
            sets.setdefault(name, []).extend(psi.oprf_input(name, ids) for ids in subsets)
    return sets


def encode_sets(
    sets: Mapping[str, list[bytes]], key: OprfKey, *, tag_bytes: int, workers: int
) -> dict[str, EncodedSet]:
    """Evaluate every input of every set in one pool run, then split them back per set."""
    names = sorted(sets)
    flat = [x for name in names for x in sets[name]]
    tags = psi.evaluate_tags(key.secret, flat, tag_bytes, workers=workers)
    out: dict[str, EncodedSet] = {}
    start = 0
    for name in names:
        end = start + len(sets[name])
        out[name] = EncodedSet.from_tags(tags[start:end], tag_bytes)
        start = end
    return out


def manifest_for(
    set_name: str,
    encoded: EncodedSet,
    key: OprfKey,
    *,
    tenant_id: str,
    provider_id: str,
    version: int,
    issued_at: datetime,
) -> TagSetManifest:
    return TagSetManifest(
        tenant_id=tenant_id,
        provider_id=provider_id,
        set_name=set_name,
        version=version,
        issued_at=issued_at.replace(microsecond=0),
        key_id=key.key_id,
        public_key=key.public_key,
        tag_bytes=encoded.tag_bytes,
        count=encoded.count,
        sha256=encoded.sha256,
    )


class TagSetPushFailed(PavilionError):
    code = "tag-set-push-failed"
    title = "Tag set push failed"


@dataclass(frozen=True)
class PushTarget:
    """Where and as whom the DP agent pushes: the connector, its tenant, the DP's id there."""

    base_url: str
    token: str
    tenant_id: str
    provider_id: str


class TagSetPusher:
    def __init__(
        self,
        target: PushTarget,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.target = target
        self._client = httpx.AsyncClient(
            base_url=target.base_url.rstrip("/"),
            transport=transport,
            timeout=timeout_seconds,
            headers={"authorization": f"Bearer {target.token}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check_key(self, expected: Mapping[str, str]) -> None:
        """Before any tag is computed: the connector must hold this agent's signing key, or
        every manifest would be refused after the expensive part (the connector's answer
        names the command that registers it)."""
        registered = await self._call(
            "GET", f"/v1/privacy/providers/{self.target.provider_id}/tag-set-key"
        )
        if registered.get("kid") != expected["kid"]:
            raise TagSetPushFailed(
                f"the connector holds tag-set signing key {registered.get('kid')} for provider "
                f"{self.target.provider_id}, but this agent signs with {expected['kid']}: "
                "register the current one (pavilion privacy dp-keys show, then pavilion "
                "privacy tag-set-key register)"
            )

    async def upload(self, token: str, encoded: EncodedSet) -> dict[str, Any]:
        """Begin with the signed manifest, send every chunk, commit."""
        begun = await self._call(
            "POST",
            f"/v1/privacy/providers/{self.target.provider_id}/tag-sets",
            json={"manifest": token},
        )
        size = begun["chunk_bytes"]
        for seq in range(begun["chunks"]):
            await self._call(
                "PUT",
                f"/v1/privacy/tag-sets/{begun['upload_id']}/chunks/{seq}",
                content=encoded.data[seq * size : (seq + 1) * size],
                headers={"content-type": "application/octet-stream"},
            )
        return await self._call("POST", f"/v1/privacy/tag-sets/{begun['upload_id']}/commit")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"the connector at {self.target.base_url} is unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:200]
            raise TagSetPushFailed(
                f"{method} {path}: HTTP {response.status_code}: {detail}",
                extra={"status": response.status_code},
            )
        if response.status_code == 204:
            return {}
        body: dict[str, Any] = response.json()
        return body


async def push_tag_sets(
    records: Iterable[StudentRecord],
    ring: OprfKeyRing,
    target: PushTarget,
    *,
    tag_bytes: int = psi.DEFAULT_TAG_BYTES,
    workers: int = 2,
    version: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[dict[str, Any]]:
    """Check the connector holds the signing key, then encode, sign and push every tag set of
    a roster under the ring's current key."""
    key = ring.current()
    pusher = TagSetPusher(target, transport=transport)
    results = []
    try:
        await pusher.check_key(ring.signing_public_jwk())
        sets = tag_set_inputs(records)
        encoded = await asyncio.to_thread(
            encode_sets, sets, key, tag_bytes=tag_bytes, workers=workers
        )
        issued_at = datetime.now(UTC)
        version = version if version is not None else time.time_ns() // 1_000_000
        for name in sorted(encoded):
            manifest = manifest_for(
                name,
                encoded[name],
                key,
                tenant_id=target.tenant_id,
                provider_id=target.provider_id,
                version=version,
                issued_at=issued_at,
            )
            token = psi.sign_manifest(manifest, ring.signing_key())
            results.append(await pusher.upload(token, encoded[name]))
    finally:
        await pusher.aclose()
    return results
