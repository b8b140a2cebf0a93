"""Responses of the audit routes: signed checkpoints, Merkle proofs and leaves."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pavilion.api.schemas.base import ResponseModel


class CheckpointOut(ResponseModel):
    origin: str = Field(description="The log's origin line (C2SP tlog-checkpoint).")
    size: int
    root_hash: str = Field(description="Hex SHA-256 Merkle root (RFC 9162).")
    note: str = Field(description="The checkpoint as an Ed25519 signed note.")
    verifier_key: str = Field(description="The note verifier key that checks the signature.")


class InclusionProofOut(ResponseModel):
    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str] = Field(description="Hex hashes from the leaf up (RFC 9162 2.1.3).")


class ConsistencyProofOut(ResponseModel):
    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str] = Field(description="Hex hashes (RFC 9162 2.1.4).")


class LeafOut(ResponseModel):
    index: int
    leaf_hash: str
    event: dict[str, Any] = Field(description="What the leaf commits to: ids and hashes only.")


class LeafPage(ResponseModel):
    items: list[LeafOut]
    next: int | None = Field(description="The index to start the next page at; null at the end.")


class AuditIndexOut(ResponseModel):
    """The audit leaf that records the operation."""

    index: int


class AuditLeafRefOut(ResponseModel):
    """The audit leaf that records the operation, with its hash (for an inclusion proof)."""

    index: int
    leaf_hash: str
