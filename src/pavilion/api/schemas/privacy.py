"""Responses of the privacy engine's routes: PSI tag sets and batch PSI, zero-knowledge
predicate presentations, differentially private releases and budgets, privacy receipts, and
AnonCreds issuance. AnonCreds objects (offers, credentials, definitions, status lists) and
presentation requests are the AnonCreds specification's JSON, kept open here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from pavilion.api.schemas.audit import AuditIndexOut, AuditLeafRefOut
from pavilion.api.schemas.base import ResponseModel
from pavilion.api.schemas.system import JsonWebKeySet

# --------------------------------------------------------------------------- PSI


class Ed25519PublicJwkOut(ResponseModel):
    """The DP's tag-set signing key as registered, with its RFC 7638 thumbprint as ``kid``."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str


class TagSetUploadOut(ResponseModel):
    """An open tag set upload: PUT ``chunks`` chunks of ``chunk_bytes``, then commit."""

    upload_id: str
    set: str
    version: int
    chunks: int
    chunk_bytes: int
    bytes: int


class TagSetCommitOut(ResponseModel):
    id: str
    provider_id: str
    set: str
    version: int
    count: int
    tag_bytes: int
    false_positive_rate: float
    status: Literal["active"]
    receipt_id: str


class TagSetOut(ResponseModel):
    """An active pushed set: its version, size, OPRF key and false-positive rate (no tags)."""

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


class TagSetList(ResponseModel):
    items: list[TagSetOut]


class TagSetParamsOut(ResponseModel):
    set: str
    version: int
    key_id: str
    count: int
    tag_bytes: int
    false_positive_rate: float


class BatchPsiOut(ResponseModel):
    """A list checked against a DP's tag set; ``intersection`` appears when it was asked for."""

    provider_id: str
    set: TagSetParamsOut
    items: int
    cardinality: int
    expected_false_positives: float
    region: str
    intersection: list[str] | None = Field(default=None, description="The matching items.")
    receipt_id: str
    audit: AuditIndexOut


# --------------------------------------------------------------------------- ZK predicates


class PredicateClaimOut(ResponseModel):
    """The predicate proved; the parameters appear for the kinds that take them."""

    type: str
    threshold: int | None = None
    start: str | None = None
    end: str | None = None
    group: str | None = None


class RevocationReferenceOut(ResponseModel):
    """What a verifier needs to check non-revocation of the one-time credential."""

    schema_id: str
    cred_def_id: str
    rev_reg_def_id: str
    timestamp: int
    credential_id: str


class ZkPresentationOut(ResponseModel):
    decision: bool | None = Field(
        description="true when the predicate holds, false when it does not; null when the DP "
        "does not know the subject."
    )
    outcome: Literal["true", "false", "unknown"] = Field(
        description="The three-way answer as a string. Before 0.2.0 this value was in decision."
    )
    claim: PredicateClaimOut
    presentation: dict[str, Any] | None = Field(
        description="The AnonCreds presentation; null unless the predicate holds."
    )
    presentation_request: dict[str, Any]
    verify_with: RevocationReferenceOut | None
    receipt_id: str
    audit: AuditLeafRefOut


class ZkVerificationOut(ResponseModel):
    verified: bool
    reason: str | None
    identifiers: list[dict[str, Any]] = Field(
        description="The schema, definition and registry ids (and timestamps) it uses."
    )
    revealed: dict[str, Any] = Field(description="Revealed attributes by referent (raw values).")


# --------------------------------------------------------------------------- differential privacy


class BudgetAmountOut(ResponseModel):
    limit: float
    spent: float
    remaining: float


class BudgetOut(ResponseModel):
    """A dataset's privacy budget this period."""

    dataset: str
    period: str
    period_start: str
    epsilon: BudgetAmountOut
    delta: BudgetAmountOut


class LedgerEntryOut(ResponseModel):
    release_id: str
    statistic: str
    mechanism: str
    epsilon: float
    delta: float
    rho: float | None
    period_start: str
    receipt_id: str
    created_at: str


class BudgetWithLedgerOut(BudgetOut):
    ledger: list[LedgerEntryOut] = Field(description="The latest charges, newest first.")


class ReleaseGroupOut(ResponseModel):
    """One group's noisy values; which appear depends on the statistic."""

    key: dict[str, str] = Field(description="The group's value of each grouping dimension.")
    count: int | float | None = None
    sum: int | float | None = None
    mean: float | None = None


class PrivacyLossOut(ResponseModel):
    epsilon: float
    delta: float
    rho: float | None


class ExpectedErrorOut(ResponseModel):
    """With probability ``confidence`` a released value is within ``accuracy`` of the truth."""

    what: str
    alpha: float
    confidence: float
    noise_scale: float
    accuracy: float


class ReleaseOut(ResponseModel):
    statistic: str
    mechanism: str
    group_by: list[str]
    groups: list[ReleaseGroupOut]
    privacy_loss: PrivacyLossOut
    expected_error: list[ExpectedErrorOut]
    release_id: str
    dataset: str
    budget: BudgetOut = Field(description="The budget after this release.")
    receipt_id: str
    audit: AuditLeafRefOut


# --------------------------------------------------------------------------- receipts


class ReceiptSummaryOut(ResponseModel):
    id: str
    kind: str
    audit_index: int
    receipt_sha256: str
    created_at: str


class ReceiptPage(ResponseModel):
    items: list[ReceiptSummaryOut]
    next: str | None = Field(description="The cursor of the next page; null at the end.")


class ReceiptAuditOut(ResponseModel):
    """The receipt's audit leaf, its inclusion proof and the signed checkpoint it leads to."""

    index: int
    leaf_hash: str
    tree_size: int
    inclusion_proof: list[str]
    checkpoint: str
    origin: str
    verifier_key: str


class ReceiptBundleOut(ResponseModel):
    receipt: str = Field(description="The signed receipt (compact JWS).")
    audit: ReceiptAuditOut
    jwks: JsonWebKeySet = Field(description="The keys that verify the receipt's signature.")


# --------------------------------------------------------------------------- AnonCreds


class AnoncredsOfferOut(ResponseModel):
    offer_id: str
    offer: dict[str, Any]
    cred_def_id: str
    credential_definition: dict[str, Any]
    expires_at: str


class AnoncredsCredentialOut(ResponseModel):
    credential_id: str
    credential: dict[str, Any]
    cred_def_id: str
    rev_reg_def_id: str
    rev_reg_index: int
    tails_hash: str
    audit: AuditLeafRefOut


class RevocationDeltaOut(ResponseModel):
    registry_id: str
    rev_reg_def_id: str
    timestamp: int
    revoked_indices: list[int]


class RevocationOut(ResponseModel):
    revoked: list[str]
    deltas: list[RevocationDeltaOut] = Field(description="One published status list per registry.")
    audit: AuditLeafRefOut


class RegistryOut(ResponseModel):
    id: str
    rev_reg_def_id: str
    seq: int
    status: str
    capacity: int
    issued: int
    tails_hash: str
    definition: dict[str, Any]


class RegistryList(ResponseModel):
    items: list[RegistryOut]


class CredentialDefinitionOut(ResponseModel):
    model_config = ConfigDict(populate_by_name=True)

    issuer_id: str
    schema_id: str
    schema_: dict[str, Any] = Field(alias="schema")
    cred_def_id: str
    credential_definition: dict[str, Any]


class StatusListDeltaOut(ResponseModel):
    timestamp: int
    revoked: list[int]
    accumulator: str | None
    status_list: dict[str, Any]


class StatusListDeltaList(ResponseModel):
    items: list[StatusListDeltaOut]
