"""Tag sets on the connector: the OPRF tags a DP pushes for PSI, with signed manifests,
chunked uploads and active versions.

A DP pushes each tag set in three steps, because a million-entry set (8 MB of tags) is larger
than one request body may be:

1. ``begin``: the DP's signed manifest (see :mod:`pavilion.privacy.psi`) is verified with the
   tag-set signing key its administrator registered, and must name this tenant and provider,
   be fresh, and carry a version above every version seen for the set (replays and rollbacks
   are refused);
2. ``put_chunk`` for each 512 KiB chunk (idempotent per sequence number);
3. ``commit``: the chunks must hash to the manifest's SHA-256, hold ``count`` strictly
   ascending tags, and the version must still be the newest; then it becomes the active
   version and the one before is dropped (its tags deleted). Commits of one provider are
   serialised on its signing-key row.

The connector never receives anything it could reverse: the tags are truncated outputs of a
PRF keyed by the DP.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.errors import Conflict, InvalidRequest, NotFound, VerificationFailed
from pavilion.jose import b64url, b64url_decode, jwk_thumbprint, unverified_payload
from pavilion.parsing import loads_json
from pavilion.privacy.errors import TagSetReplay
from pavilion.privacy.models import TagSet, TagSetChunk, TagSetSigningKey
from pavilion.privacy.psi import EncodedSet, TagSetManifest, verify_manifest
from pavilion.store.base import new_id
from pavilion.store.database import Database

CHUNK_BYTES: Final = 512 * 1024
MAX_TAG_SET_BYTES: Final = 512 * 1024 * 1024
MAX_MANIFEST_AGE: Final = timedelta(days=1)
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
_CACHE_SIZE: Final = 64


@dataclass(frozen=True)
class ActiveTagSet:
    """An active set as the membership check needs it."""

    id: str
    provider_id: str
    set_name: str
    version: int
    key_id: str
    public_key: bytes
    fpr: float
    encoded: EncodedSet
    activated_at: datetime


@dataclass(frozen=True)
class TagSetUpload:
    """An opened upload: the DP sends ``chunks`` chunks of ``chunk_bytes``, then commits."""

    upload_id: str
    set: str
    version: int
    chunks: int
    chunk_bytes: int
    bytes: int


@dataclass(frozen=True)
class TagSetSummary:
    """An active set as listed: version, size, key and false-positive rate (no tags)."""

    id: str
    provider_id: str
    set: str
    version: int
    status: str
    key_id: str
    count: int
    tag_bytes: int
    false_positive_rate: float
    activated_at: str | None


@dataclass(frozen=True)
class CommittedTagSet:
    id: str
    manifest: TagSetManifest
    token: str
    previous_version: int | None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_public_jwk(jwk: Mapping[str, Any]) -> dict[str, str]:
    """An Ed25519 public JWK (no private part), returned with its RFC 7638 ``kid``."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidRequest("the tag-set signing key must be an Ed25519 (OKP) JWK", field="jwk")
    if "d" in jwk:
        raise InvalidRequest(
            "send the public key only: this JWK holds the private part 'd'", field="jwk.d"
        )
    x = jwk.get("x")
    if not isinstance(x, str) or len(b64url_decode(x)) != 32:
        raise InvalidRequest("jwk.x must be a 32-byte base64url Ed25519 key", field="jwk.x")
    public = {"kty": "OKP", "crv": "Ed25519", "x": x}
    return {**public, "kid": jwk_thumbprint(public)}


#: What to do when a DP has no tag-set signing key yet: the command and the API call.
_NO_KEY: Final = (
    "provider {provider_id} has no tag-set signing key registered; register the DP's public "
    "key first: pavilion privacy tag-set-key register --tenant <tenant> --provider "
    "{provider_id} --jwk-file <file from 'pavilion privacy dp-keys show'> "
    "(or PUT /v1/privacy/providers/{provider_id}/tag-set-key)"
)


class TagSetService:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._cache: OrderedDict[str, ActiveTagSet] = OrderedDict()

    async def register_key(
        self, tenant_id: str, provider_id: str, jwk: Mapping[str, Any]
    ) -> dict[str, str]:
        """Register (or replace) the DP's tag-set signing public key."""
        public = check_public_jwk(jwk)
        async with self._db.transaction(tenant_id) as session:
            row = await _signing_key(session, tenant_id, provider_id, lock=True)
            if row is None:
                session.add(
                    TagSetSigningKey(
                        id=new_id(),
                        tenant_id=tenant_id,
                        provider_id=provider_id,
                        kid=public["kid"],
                        jwk=public,
                        created_at=self._clock(),
                    )
                )
            else:
                row.kid, row.jwk, row.created_at = public["kid"], public, self._clock()
        return public

    async def get_key(self, tenant_id: str, provider_id: str) -> dict[str, str]:
        """The DP's registered tag-set signing public key; NotFound names how to register it."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            row = await _signing_key(session, tenant_id, provider_id, lock=False)
        if row is None:
            raise NotFound(_NO_KEY.format(provider_id=provider_id))
        return dict(row.jwk)

    async def begin(self, tenant_id: str, provider_id: str, token: str) -> TagSetUpload:
        """Verify a signed manifest and open its upload; returns the upload's id and chunks."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            key = await _signing_key(session, tenant_id, provider_id, lock=False)
        if key is None:
            raise Conflict(_NO_KEY.format(provider_id=provider_id))
        manifest = verify_manifest(token, key.jwk)
        self._check_manifest(manifest, tenant_id, provider_id)
        size = manifest.count * manifest.tag_bytes
        if size > MAX_TAG_SET_BYTES:
            raise InvalidRequest(
                f"a tag set may hold at most {MAX_TAG_SET_BYTES} bytes of tags",
                field="manifest.count",
            )
        chunks = math.ceil(size / CHUNK_BYTES)
        tag_set_id = new_id()
        try:
            async with self._db.transaction(tenant_id) as session:
                newest = await _newest_version(session, tenant_id, provider_id, manifest.set_name)
                if newest is not None and manifest.version <= newest:
                    raise TagSetReplay(_replay_detail(manifest, newest))
                session.add(
                    TagSet(
                        id=tag_set_id,
                        tenant_id=tenant_id,
                        provider_id=provider_id,
                        set_name=manifest.set_name,
                        version=manifest.version,
                        status="receiving",
                        key_id=manifest.key_id,
                        public_key=b64url(manifest.public_key),
                        tag_bytes=manifest.tag_bytes,
                        count=manifest.count,
                        fpr=manifest.fpr,
                        sha256=manifest.sha256,
                        manifest=token,
                        chunks=chunks,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError as exc:  # the same version opened concurrently
            raise TagSetReplay(_replay_detail(manifest, manifest.version)) from exc
        return TagSetUpload(
            upload_id=tag_set_id,
            set=manifest.set_name,
            version=manifest.version,
            chunks=chunks,
            chunk_bytes=CHUNK_BYTES,
            bytes=size,
        )

    def _check_manifest(self, manifest: TagSetManifest, tenant_id: str, provider_id: str) -> None:
        if manifest.tenant_id != tenant_id:
            raise VerificationFailed("the manifest was signed for another tenant")
        if manifest.provider_id != provider_id:
            raise VerificationFailed("the manifest was signed for another provider")
        now = self._clock()
        if manifest.issued_at > now + MAX_CLOCK_SKEW:
            raise InvalidRequest("the manifest is dated in the future", field="manifest.issued_at")
        if manifest.issued_at < now - MAX_MANIFEST_AGE:
            raise InvalidRequest(
                f"the manifest is older than {MAX_MANIFEST_AGE}; sign a fresh one",
                field="manifest.issued_at",
            )

    async def put_chunk(self, tenant_id: str, upload_id: str, seq: int, data: bytes) -> None:
        async with self._db.transaction(tenant_id) as session:
            tag_set = await _receiving(session, tenant_id, upload_id)
            if not 0 <= seq < tag_set.chunks:
                raise InvalidRequest(f"this upload has chunks 0..{tag_set.chunks - 1}", field="seq")
            size = tag_set.count * tag_set.tag_bytes
            expected = min(CHUNK_BYTES, size - seq * CHUNK_BYTES)
            if len(data) != expected:
                raise InvalidRequest(
                    f"chunk {seq} must be {expected} bytes, got {len(data)}", field="body"
                )
            await session.execute(
                delete(TagSetChunk).where(
                    TagSetChunk.tenant_id == tenant_id,
                    TagSetChunk.tag_set_id == upload_id,
                    TagSetChunk.seq == seq,
                )
            )
            session.add(TagSetChunk(tenant_id=tenant_id, tag_set_id=upload_id, seq=seq, data=data))

    async def commit(
        self, session: AsyncSession, tenant_id: str, upload_id: str
    ) -> CommittedTagSet:
        """Check and activate an upload in the caller's transaction (which also writes the
        receipt)."""
        tag_set = await _receiving(session, tenant_id, upload_id)
        # Serialise commits of this provider: two versions must not both become active.
        await _signing_key(session, tenant_id, tag_set.provider_id, lock=True)
        chunks = (
            (
                await session.execute(
                    select(TagSetChunk)
                    .where(
                        TagSetChunk.tenant_id == tenant_id,
                        TagSetChunk.tag_set_id == upload_id,
                    )
                    .order_by(TagSetChunk.seq)
                )
            )
            .scalars()
            .all()
        )
        have = [c.seq for c in chunks]
        if have != list(range(tag_set.chunks)):
            missing = sorted(set(range(tag_set.chunks)) - set(have))
            raise Conflict(
                f"the upload is incomplete: chunks {missing[:10]} are missing",
                extra={"missing": missing},
            )
        data = b"".join(c.data for c in chunks)
        encoded = EncodedSet(tag_set.tag_bytes, data)
        if encoded.sha256 != tag_set.sha256:
            raise VerificationFailed(
                "the uploaded tags do not match the SHA-256 the DP signed; the upload was "
                "altered or corrupted"
            )
        encoded.check_sorted()
        active = (
            await session.execute(
                select(TagSet).where(
                    TagSet.tenant_id == tenant_id,
                    TagSet.provider_id == tag_set.provider_id,
                    TagSet.set_name == tag_set.set_name,
                    TagSet.status == "active",
                )
            )
        ).scalar_one_or_none()
        if active is not None and active.version >= tag_set.version:
            raise TagSetReplay(
                f"version {active.version} of set {tag_set.set_name!r} is already active"
            )
        if active is not None:
            active.status, active.data = "superseded", None
        tag_set.status, tag_set.data, tag_set.activated_at = "active", data, self._clock()
        await session.execute(
            delete(TagSetChunk).where(
                TagSetChunk.tenant_id == tenant_id, TagSetChunk.tag_set_id == upload_id
            )
        )
        manifest = verify_manifest_unchecked(tag_set)
        return CommittedTagSet(
            tag_set.id, manifest, tag_set.manifest, active.version if active else None
        )

    async def active(self, tenant_id: str, provider_id: str, set_name: str) -> ActiveTagSet | None:
        """The active version of a set, its tags cached in memory by tag set id."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            head = (
                await session.execute(
                    select(
                        TagSet.id,
                        TagSet.version,
                        TagSet.key_id,
                        TagSet.public_key,
                        TagSet.fpr,
                        TagSet.tag_bytes,
                        TagSet.activated_at,
                    ).where(
                        TagSet.tenant_id == tenant_id,
                        TagSet.provider_id == provider_id,
                        TagSet.set_name == set_name,
                        TagSet.status == "active",
                    )
                )
            ).one_or_none()
            if head is None:
                return None
            cached = self._cache.get(head.id)
            if cached is not None:
                self._cache.move_to_end(head.id)
                return cached
            data = (
                await session.execute(select(TagSet.data).where(TagSet.id == head.id))
            ).scalar_one()
        tag_set = ActiveTagSet(
            id=head.id,
            provider_id=provider_id,
            set_name=set_name,
            version=head.version,
            key_id=head.key_id,
            public_key=b64url_decode(head.public_key),
            fpr=head.fpr,
            encoded=EncodedSet(head.tag_bytes, data or b""),
            activated_at=_aware(head.activated_at),
        )
        self._cache[tag_set.id] = tag_set
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return tag_set

    async def list(self, tenant_id: str, provider_id: str | None) -> list[TagSetSummary]:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            query = (
                select(
                    TagSet.id,
                    TagSet.provider_id,
                    TagSet.set_name,
                    TagSet.version,
                    TagSet.status,
                    TagSet.key_id,
                    TagSet.count,
                    TagSet.tag_bytes,
                    TagSet.fpr,
                    TagSet.activated_at,
                )
                .where(TagSet.tenant_id == tenant_id, TagSet.status == "active")
                .order_by(TagSet.provider_id, TagSet.set_name)
            )
            if provider_id is not None:
                query = query.where(TagSet.provider_id == provider_id)
            rows = (await session.execute(query)).all()
        return [
            TagSetSummary(
                id=r.id,
                provider_id=r.provider_id,
                set=r.set_name,
                version=r.version,
                status=r.status,
                key_id=r.key_id,
                count=r._mapping["count"],  # Row.count is also tuple.count
                tag_bytes=r.tag_bytes,
                false_positive_rate=r.fpr,
                activated_at=_aware(r.activated_at).isoformat() if r.activated_at else None,
            )
            for r in rows
        ]


def verify_manifest_unchecked(tag_set: TagSet) -> TagSetManifest:
    """The manifest of a stored tag set (its signature was checked when the upload began)."""
    return TagSetManifest.from_claims(loads_json(unverified_payload(tag_set.manifest)))


async def _signing_key(
    session: AsyncSession, tenant_id: str, provider_id: str, *, lock: bool
) -> TagSetSigningKey | None:
    query = select(TagSetSigningKey).where(
        TagSetSigningKey.tenant_id == tenant_id, TagSetSigningKey.provider_id == provider_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def _receiving(session: AsyncSession, tenant_id: str, upload_id: str) -> TagSet:
    tag_set = (
        await session.execute(
            select(TagSet).where(TagSet.tenant_id == tenant_id, TagSet.id == upload_id)
        )
    ).scalar_one_or_none()
    if tag_set is None:
        raise NotFound(f"tag set upload {upload_id} does not exist")
    if tag_set.status != "receiving":
        raise Conflict(f"tag set upload {upload_id} is {tag_set.status}, not receiving")
    return tag_set


async def _newest_version(
    session: AsyncSession, tenant_id: str, provider_id: str, set_name: str
) -> int | None:
    newest = (
        await session.execute(
            select(func.max(TagSet.version)).where(
                TagSet.tenant_id == tenant_id,
                TagSet.provider_id == provider_id,
                TagSet.set_name == set_name,
            )
        )
    ).scalar_one_or_none()
    return None if newest is None else int(newest)


def _replay_detail(manifest: TagSetManifest, newest: int) -> str:
    return (
        f"set {manifest.set_name!r} version {manifest.version} is not newer than version "
        f"{newest} already received; a replayed or rolled-back upload is refused"
    )
