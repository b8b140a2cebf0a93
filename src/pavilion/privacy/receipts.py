"""Privacy receipts: a signed statement of every PSI run, differentially private release and ZK
presentation.

A receipt says which mechanism ran with which parameters, what privacy budget it spent, the
SHA-256 of its inputs and outputs and the policy version in force; it holds ids and hashes,
never personal data. It is a compact JWS (``typ`` ``pavilion-privacy-receipt+jwt``) signed by
the connector's audit key, and its SHA-256 is appended to the tenant's audit log in the same
transaction as the work it describes, so a receipt exists exactly when the work does.

Anyone holding a receipt bundle (``GET /v1/privacy/receipts/{id}``) can check it offline with
:func:`verify_bundle`: the signature against the published keys, the audit leaf recomputed
from the receipt, its RFC 9162 inclusion proof, and the signed checkpoint the proof ends in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypedDict

from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pavilion.audit.checkpoint import verify_checkpoint
from pavilion.audit.log import AuditLog, canonical_event
from pavilion.audit.merkle import leaf_hash, verify_inclusion
from pavilion.errors import NotFound, PavilionError
from pavilion.jose import ALLOWED_ALGORITHMS, import_key_set, quiet_eddsa, sign_compact
from pavilion.keystore.signer import Signer
from pavilion.parsing import loads_json
from pavilion.privacy.errors import ReceiptInvalid
from pavilion.privacy.models import PrivacyReceipt
from pavilion.store.base import new_id
from pavilion.store.database import Database

RECEIPT_TYP: Final = "pavilion-privacy-receipt+jwt"
AUDIT_KIND: Final = "privacy_receipt"
KINDS: Final = (
    "psi.tag_set",
    "psi.lookup",
    "psi.batch",
    "differential.release",
    "zkp.presentation",
)
#: Kinds of receipts issued before the rename (deprecated; their receipts keep them): a
#: filter by the new kind finds them too, and the old names still filter.
RENAMED_KINDS: Final = {"psi.roster": "psi.tag_set", "dp.release": "differential.release"}


def kinds_matching(kind: str) -> list[str]:
    """The stored kinds a filter by ``kind`` (a current or a renamed name) matches."""
    current = RENAMED_KINDS.get(kind, kind)
    return [current, *(old for old, new in RENAMED_KINDS.items() if new == current)]


def sha256_hex(value: bytes | str | Mapping[str, Any] | list[Any]) -> str:
    """SHA-256 hex of bytes, of UTF-8 text, or of canonical JSON."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReceiptDraft:
    """What the caller knows about the work; the service adds ids, time and policy."""

    kind: str
    mechanism: str
    parameters: dict[str, Any]
    inputs_sha256: str
    outputs_sha256: str
    budget: dict[str, Any] | None = None
    receipt_id: str | None = None


@dataclass(frozen=True)
class IssuedReceipt:
    id: str
    jws: str
    payload: dict[str, Any]
    audit_index: int
    leaf_hash: str


class ReceiptSummary(TypedDict):
    id: str
    kind: str
    audit_index: int
    receipt_sha256: str
    created_at: str


class JwkSet(TypedDict):
    keys: list[dict[str, str]]


class BundledProof(TypedDict):
    """A receipt's audit leaf, its inclusion proof and the signed checkpoint it ends in."""

    index: int
    leaf_hash: str
    tree_size: int
    inclusion_proof: list[str]
    checkpoint: str
    origin: str
    verifier_key: str


class ReceiptBundle(TypedDict):
    """Everything needed to verify a receipt offline."""

    receipt: str
    audit: BundledProof
    jwks: JwkSet


def audit_event(receipt_id: str, kind: str, token: str) -> dict[str, Any]:
    """The audit leaf's event for a receipt: ids and the receipt's hash only."""
    return {
        "kind": AUDIT_KIND,
        "receipt_id": receipt_id,
        "receipt_kind": kind,
        "receipt_sha256": sha256_hex(token),
    }


class ReceiptService:
    def __init__(
        self,
        signer: Signer,
        audit: AuditLog,
        *,
        policy_version: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._signer = signer
        self._audit = audit
        self.policy_version = policy_version
        self._clock = clock

    def jwks(self) -> JwkSet:
        return JwkSet(keys=[self._signer.public_jwk()])

    async def issue(
        self, session: AsyncSession, tenant_id: str, draft: ReceiptDraft
    ) -> IssuedReceipt:
        """Sign the receipt and append its hash to the audit log, in the caller's transaction."""
        if draft.kind not in KINDS:
            raise PavilionError(f"unknown receipt kind {draft.kind!r}")
        receipt_id = draft.receipt_id or new_id()
        payload = {
            "id": receipt_id,
            "tenant_id": tenant_id,
            "kind": draft.kind,
            "mechanism": draft.mechanism,
            "parameters": draft.parameters,
            "budget": draft.budget,
            "inputs_sha256": draft.inputs_sha256,
            "outputs_sha256": draft.outputs_sha256,
            "policy_version": self.policy_version,
            "iat": int(self._clock().timestamp()),
        }
        token = await sign_compact({"typ": RECEIPT_TYP}, payload, self._signer)
        appended = await self._audit.append(
            session, tenant_id, audit_event(receipt_id, draft.kind, token)
        )
        session.add(
            PrivacyReceipt(
                id=receipt_id,
                tenant_id=tenant_id,
                kind=draft.kind,
                jws=token,
                receipt_sha256=sha256_hex(token),
                audit_index=appended.index,
                leaf_hash=appended.leaf_hash,
                created_at=self._clock(),
            )
        )
        return IssuedReceipt(receipt_id, token, payload, appended.index, appended.leaf_hash)

    async def list(
        self, db: Database, tenant_id: str, *, kind: str | None, limit: int, after: str | None
    ) -> list[ReceiptSummary]:
        async with db.transaction(tenant_id, readonly=True) as session:
            query = (
                select(PrivacyReceipt)
                .where(PrivacyReceipt.tenant_id == tenant_id)
                .order_by(PrivacyReceipt.audit_index)
                .limit(limit)
            )
            if kind is not None:
                query = query.where(PrivacyReceipt.kind.in_(kinds_matching(kind)))
            if after is not None:
                query = query.where(PrivacyReceipt.audit_index > int(after))
            rows = (await session.execute(query)).scalars().all()
        return [
            ReceiptSummary(
                id=r.id,
                kind=r.kind,
                audit_index=r.audit_index,
                receipt_sha256=r.receipt_sha256,
                created_at=r.created_at.isoformat(),
            )
            for r in rows
        ]

    async def bundle(self, db: Database, tenant_id: str, receipt_id: str) -> ReceiptBundle:
        """Everything needed to verify the receipt offline, against a signed checkpoint."""
        async with db.transaction(tenant_id, readonly=True) as session:
            row = (
                await session.execute(
                    select(PrivacyReceipt).where(
                        PrivacyReceipt.tenant_id == tenant_id, PrivacyReceipt.id == receipt_id
                    )
                )
            ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"privacy receipt {receipt_id} does not exist")
        checkpoint = await self._audit.checkpoint(tenant_id)
        proof = await self._audit.inclusion(tenant_id, row.audit_index, checkpoint.size)
        return ReceiptBundle(
            receipt=row.jws,
            audit=BundledProof(
                index=row.audit_index,
                leaf_hash=row.leaf_hash,
                tree_size=proof.tree_size,
                inclusion_proof=proof.proof,
                checkpoint=checkpoint.note,
                origin=self._audit.origin(tenant_id),
                verifier_key=self._audit.verifier_key_for(tenant_id),
            ),
            jwks=self.jwks(),
        )


def verify_receipt_signature(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt's claims, once its signature verifies with one of ``jwks``."""
    try:
        keys = import_key_set(jwks)
        with quiet_eddsa():  # receipts signed before 0.2.0 say "EdDSA"
            result = jws.deserialize_compact(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
        payload = loads_json(result.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise ReceiptInvalid(f"the receipt's signature does not verify: {exc}") from exc
    if result.protected.get("typ") != RECEIPT_TYP:
        raise ReceiptInvalid(f"the receipt's typ is not {RECEIPT_TYP}")
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise ReceiptInvalid("the receipt's payload has no id")
    return payload


@dataclass(frozen=True)
class VerifiedReceipt:
    payload: dict[str, Any]
    audit_index: int
    tree_size: int
    root_hash: str


def verify_bundle(
    bundle: Mapping[str, Any],
    *,
    jwks: Mapping[str, Any],
    verifier_key: str | Sequence[str],
    origin: str | None = None,
) -> VerifiedReceipt:
    """Check a receipt bundle against keys the verifier trusts (not the bundle's own).

    Raises :class:`ReceiptInvalid` naming the first check that fails: signature, leaf,
    checkpoint signature, or Merkle inclusion.
    """
    try:
        token = str(bundle["receipt"])
        audit = bundle["audit"]
        index = int(audit["index"])
        tree_size = int(audit["tree_size"])
        proof = [bytes.fromhex(h) for h in audit["inclusion_proof"]]
        note = str(audit["checkpoint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptInvalid(f"the receipt bundle is malformed: {exc}") from exc
    payload = verify_receipt_signature(token, jwks)
    event = audit_event(payload["id"], str(payload.get("kind")), token)
    leaf = leaf_hash(canonical_event(event))
    if audit.get("leaf_hash") not in (None, leaf.hex()):
        raise ReceiptInvalid("the audit leaf in the bundle is not the receipt's leaf")
    try:
        checkpoint = verify_checkpoint(note, verifier_key, origin=origin)
    except PavilionError as exc:
        raise ReceiptInvalid(f"the checkpoint does not verify: {exc.detail}") from exc
    if checkpoint.size != tree_size:
        raise ReceiptInvalid(
            f"the inclusion proof is for size {tree_size}, the checkpoint for {checkpoint.size}"
        )
    try:
        verify_inclusion(leaf, index, tree_size, proof, checkpoint.root_hash)
    except PavilionError as exc:
        raise ReceiptInvalid(f"the receipt is not in the audit log: {exc.detail}") from exc
    return VerifiedReceipt(payload, index, tree_size, checkpoint.root_hash.hex())
