"""The per-tenant append-only audit log over the database (I/O edge of the audit domain).

Appends happen inside the caller's transaction, so an audit leaf exists exactly when the
change it records does. The head row holds the compact range, so an append costs O(log n)
hashing and one row lock, whatever the size of the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.checkpoint import (
    Checkpoint,
    sign_checkpoint,
    signed_under,
    verifier_key,
    verify_checkpoint,
)
from pavilion.audit.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)
from pavilion.audit.models import AuditCheckpoint, AuditHead, AuditLeaf
from pavilion.errors import InvalidRequest, NotFound, PavilionError
from pavilion.jose import b64url_decode
from pavilion.keystore.signer import Signer
from pavilion.store.base import new_id, utcnow
from pavilion.store.database import Database

# Portable upsert (PostgreSQL and SQLite >= 3.24 both speak ON CONFLICT DO NOTHING).
_CREATE_HEAD = text(
    "INSERT INTO audit_heads (id, tenant_id, size, compact_range) "
    "VALUES (:id, :tenant_id, 0, :empty) ON CONFLICT (tenant_id) DO NOTHING"
)


def canonical_event(event: dict[str, Any]) -> bytes:
    """The exact bytes a leaf commits to: sorted keys, no whitespace, UTF-8."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(text: str) -> str:
    """SHA-256 hex of a string: how free text (a purpose) enters a leaf without its words."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLeafRef(TypedDict):
    """The audit leaf that records a result, as the result's JSON carries it."""

    index: int
    leaf_hash: str


@dataclass(frozen=True)
class AuditReceipt:
    index: int
    leaf_hash: str

    def ref(self) -> AuditLeafRef:
        return AuditLeafRef(index=self.index, leaf_hash=self.leaf_hash)


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root_hash: str
    note: str


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof between the trees of the first ``first`` and ``second``."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]


class LeafEntry(TypedDict):
    """One stored leaf: its position, hash, and the event it commits to (open JSON)."""

    index: int
    leaf_hash: str
    event: dict[str, Any]


@dataclass(frozen=True)
class AuditVerification:
    tenant_id: str
    size: int
    root_hash: str
    checkpoints_checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    def __init__(self, db: Database, signer: Signer, origin_prefix: str) -> None:
        if signer.algorithm != "EdDSA":
            raise PavilionError("audit checkpoints are signed with Ed25519 (EdDSA) keys")
        self._db = db
        self._signer = signer
        self._origin_prefix = origin_prefix
        self._public = Ed25519PublicKey.from_public_bytes(b64url_decode(signer.public_jwk()["x"]))
        #: The key name checkpoints were signed under before it became the origin.
        legacy_name = origin_prefix.split("/", maxsplit=1)[0]
        self._legacy_verifier_key = verifier_key(legacy_name, self._public)

    def origin(self, tenant_id: str) -> str:
        return f"{self._origin_prefix}/{tenant_id}"

    def verifier_key_for(self, tenant_id: str) -> str:
        """The note verifier key of the tenant's checkpoints: the key name is the origin."""
        return verifier_key(self.origin(tenant_id), self._public)

    def verifier_keys(self, tenant_id: str) -> tuple[str, str]:
        """The current verifier key and the legacy one, for checking stored checkpoints."""
        return self.verifier_key_for(tenant_id), self._legacy_verifier_key

    async def append(
        self, session: AsyncSession, tenant_id: str, event: dict[str, Any]
    ) -> AuditReceipt:
        """Add one leaf in the caller's transaction; the head row lock orders appends."""
        return (await self.append_many(session, tenant_id, [event]))[0]

    async def append_many(
        self, session: AsyncSession, tenant_id: str, events: Sequence[dict[str, Any]]
    ) -> list[AuditReceipt]:
        """Add leaves in order in the caller's transaction: one head read and one head write.

        Core statements, not the ORM unit of work: this runs for every verification (and a
        batch of them shares one call, see ``audit.journal``).
        """
        head = await self._lock_head(session, tenant_id)
        if head is None:
            # The first append of a tenant: FOR UPDATE locks nothing when no row exists, so
            # two first appends would both take index 0. Create the row (a no-op when a
            # concurrent first append did) and lock it.
            await session.execute(
                _CREATE_HEAD,
                {"id": new_id(), "tenant_id": tenant_id, "empty": CompactRange().to_json()},
            )
            head = await self._lock_head(session, tenant_id)
            assert head is not None  # the row exists now, created here or by a peer
        receipts, rows, compact = self.plan_leaves(
            tenant_id, CompactRange.from_json(head.compact_range), events
        )
        await session.execute(insert(AuditLeaf), rows)
        await session.execute(
            update(AuditHead)
            .where(AuditHead.id == head.id)
            .values(size=compact.size, compact_range=compact.to_json())
        )
        return receipts

    @staticmethod
    def plan_leaves(
        tenant_id: str, compact: CompactRange, events: Sequence[dict[str, Any]]
    ) -> tuple[list[AuditReceipt], list[dict[str, Any]], CompactRange]:
        """The leaves ``events`` become after the tree ``compact``: receipts, rows, new tree."""
        now = utcnow()
        receipts: list[AuditReceipt] = []
        rows: list[dict[str, Any]] = []
        for event in events:
            data = canonical_event(event)
            hashed = leaf_hash(data)
            receipts.append(AuditReceipt(compact.size, hashed.hex()))
            rows.append(
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "idx": compact.size,
                    "event": data.decode("utf-8"),
                    "leaf_hash": hashed.hex(),
                    "created_at": now,
                }
            )
            compact = compact.append(hashed)
        return receipts, rows, compact

    @staticmethod
    async def _lock_head(session: AsyncSession, tenant_id: str) -> Row[str, str] | None:
        return (
            await session.execute(
                select(AuditHead.id, AuditHead.compact_range)
                .where(AuditHead.tenant_id == tenant_id)
                .with_for_update()
            )
        ).first()

    async def checkpoint(self, tenant_id: str) -> SignedCheckpoint:
        """The latest signed checkpoint, signing a new one when the log has grown since."""
        async with self._db.transaction(tenant_id, readonly=True) as session:
            head = (
                await session.execute(select(AuditHead).where(AuditHead.tenant_id == tenant_id))
            ).scalar_one_or_none()
            compact = CompactRange.from_json(head.compact_range) if head else CompactRange()
            existing = await self._checkpoint_at(session, tenant_id, compact.size)
            if existing is not None and signed_under(existing.note, self.origin(tenant_id)):
                return existing
        root = compact.root()
        note = await sign_checkpoint(
            Checkpoint(self.origin(tenant_id), compact.size, root), None, self._signer
        )
        if existing is not None:  # stored under the legacy key name: answer a fresh note
            return SignedCheckpoint(compact.size, root.hex(), note)
        try:
            async with self._db.transaction(tenant_id) as session:
                session.add(
                    AuditCheckpoint(
                        tenant_id=tenant_id, size=compact.size, root_hash=root.hex(), note=note
                    )
                )
        except IntegrityError:
            pass  # another request signed the same size first; both notes are valid
        return SignedCheckpoint(compact.size, root.hex(), note)

    async def _checkpoint_at(
        self, session: AsyncSession, tenant_id: str, size: int
    ) -> SignedCheckpoint | None:
        row = (
            await session.execute(
                select(AuditCheckpoint).where(
                    AuditCheckpoint.tenant_id == tenant_id, AuditCheckpoint.size == size
                )
            )
        ).scalar_one_or_none()
        return SignedCheckpoint(row.size, row.root_hash, row.note) if row else None

    async def _leaf_hashes(self, session: AsyncSession, tenant_id: str) -> list[bytes]:
        rows = await session.execute(
            select(AuditLeaf.leaf_hash)
            .where(AuditLeaf.tenant_id == tenant_id)
            .order_by(AuditLeaf.idx)
        )
        return [bytes.fromhex(h) for h in rows.scalars()]

    async def inclusion(self, tenant_id: str, index: int, size: int | None) -> InclusionProof:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            hashes = await self._leaf_hashes(session, tenant_id)
        size = len(hashes) if size is None else size
        if not 0 <= index < size <= len(hashes):
            raise InvalidRequest(
                f"need 0 <= index < size <= {len(hashes)} (the log's size); "
                f"got index {index}, size {size}",
                field="index",
            )
        tree = hashes[:size]
        return InclusionProof(
            index=index,
            tree_size=size,
            leaf_hash=tree[index].hex(),
            root_hash=root_from_leaf_hashes(tree).hex(),
            proof=[h.hex() for h in inclusion_proof(index, tree)],
        )

    async def consistency(self, tenant_id: str, first: int, second: int) -> ConsistencyProof:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            hashes = await self._leaf_hashes(session, tenant_id)
        if not 0 <= first <= second <= len(hashes):
            raise InvalidRequest(
                f"need 0 <= first <= second <= {len(hashes)} (the log's size); "
                f"got {first}, {second}",
                field="first",
            )
        return ConsistencyProof(
            first=first,
            second=second,
            first_root=root_from_leaf_hashes(hashes[:first]).hex(),
            second_root=root_from_leaf_hashes(hashes[:second]).hex(),
            proof=[h.hex() for h in consistency_proof(first, hashes[:second])],
        )

    async def leaves(self, tenant_id: str, *, start: int, limit: int) -> list[LeafEntry]:
        async with self._db.transaction(tenant_id, readonly=True) as session:
            rows = (
                await session.execute(
                    select(AuditLeaf)
                    .where(AuditLeaf.tenant_id == tenant_id, AuditLeaf.idx >= start)
                    .order_by(AuditLeaf.idx)
                    .limit(limit)
                )
            ).scalars()
            return [
                LeafEntry(index=r.idx, leaf_hash=r.leaf_hash, event=json.loads(r.event))
                for r in rows
            ]

    async def leaf(self, tenant_id: str, index: int) -> LeafEntry:
        found = await self.leaves(tenant_id, start=index, limit=1)
        if not found or found[0]["index"] != index:
            raise NotFound(f"audit leaf {index} does not exist")
        return found[0]

    async def verify(self, tenant_id: str) -> AuditVerification:
        """Recompute the whole tree from storage and check the head and every checkpoint."""
        problems: list[str] = []
        async with self._db.transaction(tenant_id, readonly=True) as session:
            leaves = (
                (
                    await session.execute(
                        select(AuditLeaf)
                        .where(AuditLeaf.tenant_id == tenant_id)
                        .order_by(AuditLeaf.idx)
                    )
                )
                .scalars()
                .all()
            )
            head = (
                await session.execute(select(AuditHead).where(AuditHead.tenant_id == tenant_id))
            ).scalar_one_or_none()
            checkpoints = (
                (
                    await session.execute(
                        select(AuditCheckpoint)
                        .where(AuditCheckpoint.tenant_id == tenant_id)
                        .order_by(AuditCheckpoint.size)
                    )
                )
                .scalars()
                .all()
            )
        # One pass: fold the leaves into a compact range and note the root at every size a
        # checkpoint claims, so verification is O(n) however many checkpoints there are.
        wanted = {row.size for row in checkpoints}
        roots_at: dict[int, bytes] = {0: CompactRange().root()} if 0 in wanted else {}
        compact = CompactRange()
        for position, leaf in enumerate(leaves):
            if leaf.idx != position:
                problems.append(f"leaf index {leaf.idx} found where {position} was expected")
            recomputed = leaf_hash(leaf.event.encode("utf-8"))
            if recomputed.hex() != leaf.leaf_hash:
                problems.append(f"leaf {leaf.idx}: stored hash does not match its event")
            compact = compact.append(recomputed)
            if compact.size in wanted:
                roots_at[compact.size] = compact.root()
        if head is not None and head.compact_range != compact.to_json():
            problems.append(_head_mismatch(head.size, head.compact_range, compact))
        for row in checkpoints:
            try:
                checkpoint = verify_checkpoint(
                    row.note, self.verifier_keys(tenant_id), origin=self.origin(tenant_id)
                )
            except PavilionError as exc:
                problems.append(f"checkpoint at size {row.size}: {exc.detail}")
                continue
            if checkpoint.size not in roots_at:
                problems.append(f"checkpoint at size {row.size} is beyond the log's end")
            elif roots_at[checkpoint.size] != checkpoint.root_hash:
                problems.append(
                    f"checkpoint at size {row.size} signs a root the leaves do not give"
                )
        return AuditVerification(
            tenant_id, compact.size, compact.root().hex(), len(checkpoints), problems
        )


def _head_mismatch(size: int, stored: str, recomputed: CompactRange) -> str:
    """Where the leaves stop matching the head: the first leaf, or the span it lies in."""
    try:
        span = CompactRange.from_json(stored).first_difference(recomputed)
    except PavilionError:
        return f"head (size {size}) is unreadable; the leaves give size {recomputed.size}"
    if span is None or span[0] == span[1]:
        return f"head says size {size}, but the leaves give size {recomputed.size}"
    start, end = span
    if size != recomputed.size:
        return (
            f"head says size {size}, but the leaves give size {recomputed.size}: "
            f"leaves {start}..{end - 1} are missing or extra"
        )
    where = f"leaf {start}" if end - start == 1 else f"one of leaves {start}..{end - 1}"
    return (
        f"{where} was rewritten (its event and stored hash both changed): the leaves "
        f"{start}..{end - 1} no longer give the head's subtree root"
    )
