"""The privacy engine's HTTP API: PSI tag sets and batch PSI, ZK predicate presentations,
differentially private releases and budgets, privacy receipts, and AnonCreds issuance.

Tag sets live under ``/v1/privacy/tag-sets`` (and ``/providers/{id}/tag-sets``,
``/providers/{id}/tag-set-key``); the ``rosters`` and ``roster-key`` paths they had before are
deprecated aliases for one release.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deprecation import RouteOptions, add_alias
from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.base import INT32_MAX, UNIX_TIME_MAX
from pavilion.api.schemas.privacy import (
    AnoncredsCredentialOut,
    AnoncredsOfferOut,
    BatchPsiOut,
    BudgetOut,
    BudgetWithLedgerOut,
    CredentialDefinitionOut,
    Ed25519PublicJwkOut,
    ReceiptBundleOut,
    ReceiptPage,
    RegistryList,
    ReleaseOut,
    RevocationOut,
    StatusListDeltaList,
    TagSetCommitOut,
    TagSetList,
    TagSetOut,
    TagSetUploadOut,
    ZkPresentationOut,
    ZkVerificationOut,
)
from pavilion.errors import InvalidRequest
from pavilion.privacy.budget import Period
from pavilion.privacy.receipts import KINDS, RENAMED_KINDS
from pavilion.privacy.tag_sets import CHUNK_BYTES
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.workflows import anoncreds_issue, private_release, psi, zk_present

router = APIRouter()
psi_router = APIRouter(prefix="/v1/privacy", tags=["privacy: PSI"], responses=AUTHENTICATED)
zkp_router = APIRouter(
    prefix="/v1/privacy/zkp", tags=["privacy: zero-knowledge"], responses=AUTHENTICATED
)
release_router = APIRouter(
    prefix="/v1/privacy", tags=["privacy: differential privacy"], responses=AUTHENTICATED
)
receipts_router = APIRouter(
    prefix="/v1/privacy/receipts", tags=["privacy: receipts"], responses=AUTHENTICATED
)
anoncreds_router = APIRouter(prefix="/v1/anoncreds", tags=["anoncreds"], responses=AUTHENTICATED)

TagSetPusher = Annotated[Principal, Depends(require(Permission.PRIVACY_TAG_SETS))]
PsiUser = Annotated[Principal, Depends(require(Permission.PRIVACY_PSI))]
ZkpUser = Annotated[Principal, Depends(require(Permission.PRIVACY_ZKP))]
Analyst = Annotated[Principal, Depends(require(Permission.PRIVACY_ANALYTICS))]
BudgetAdmin = Annotated[Principal, Depends(require(Permission.PRIVACY_BUDGETS))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
IssueUser = Annotated[Principal, Depends(require(Permission.ANONCREDS_ISSUE))]
Revoker = Annotated[Principal, Depends(require(Permission.CREDENTIALS_STATUS))]
Reader = Annotated[Principal, Depends(require(Permission.CREDENTIALS_VERIFY))]
ProviderId = Annotated[str, Path(min_length=1, max_length=36)]


# --------------------------------------------------------------------------- PSI


class TagSetKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jwk: dict[str, Any] = Field(description="The DP agent's Ed25519 tag-set signing public JWK.")


class TagSetBeginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest: str = Field(
        min_length=10, max_length=20_000, description="The DP's compact JWS over the manifest."
    )


_TAG_SET_KEY_ROUTE: Final[RouteOptions] = {"responses": problem_responses(400, 404)}
_BEGIN_ROUTE: Final[RouteOptions] = {
    "status_code": 201,
    "responses": problem_responses(
        400, 409, notes={409: "No signing key registered, or a replayed or older version"}
    ),
}


@psi_router.put("/providers/{provider_id}/tag-set-key", **_TAG_SET_KEY_ROUTE)
async def register_tag_set_key(
    provider_id: ProviderId, body: TagSetKeyIn, rt: RuntimeDep, who: TagSetPusher
) -> Ed25519PublicJwkOut:
    """Register the public key that signs this DP's tag set manifests (replaces the old one)."""
    await rt.providers.get(who.tenant_id, provider_id)
    public = await rt.privacy.tag_sets.register_key(who.tenant_id, provider_id, body.jwk)
    return Ed25519PublicJwkOut.model_validate(public)


@psi_router.get("/providers/{provider_id}/tag-set-key", responses=problem_responses(404))
async def get_tag_set_key(
    provider_id: ProviderId, rt: RuntimeDep, who: TagSetPusher
) -> Ed25519PublicJwkOut:
    """The DP's registered tag-set signing key (404 until one is registered): the DP agent
    checks it before computing any tag."""
    await rt.providers.get(who.tenant_id, provider_id)
    public = await rt.privacy.tag_sets.get_key(who.tenant_id, provider_id)
    return Ed25519PublicJwkOut.model_validate(public)


@psi_router.post("/providers/{provider_id}/tag-sets", **_BEGIN_ROUTE)
async def begin_tag_set(
    provider_id: ProviderId, body: TagSetBeginIn, rt: RuntimeDep, who: TagSetPusher
) -> TagSetUploadOut:
    """Open a tag set upload from a signed manifest; then PUT its chunks and commit."""
    upload = await rt.privacy.tag_sets.begin(who.tenant_id, provider_id, body.manifest)
    return TagSetUploadOut.model_validate(upload)


_CHUNK_ROUTE: Final[RouteOptions] = {
    "status_code": 204,
    "responses": problem_responses(404, 409, 413),
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            "description": f"Chunk {{seq}} of the sorted tags: {CHUNK_BYTES} bytes, the last "
            "one shorter.",
        }
    },
}


@psi_router.put("/tag-sets/{upload_id}/chunks/{seq}", **_CHUNK_ROUTE)
async def put_tag_set_chunk(
    upload_id: Annotated[str, Path(max_length=36)],
    seq: Annotated[int, Path(ge=0, le=INT32_MAX)],
    request: Request,
    rt: RuntimeDep,
    who: TagSetPusher,
) -> None:
    await rt.privacy.tag_sets.put_chunk(who.tenant_id, upload_id, seq, await request.body())


_COMMIT_ROUTE: Final[RouteOptions] = {
    "responses": problem_responses(
        404, 409, notes={409: "Chunks missing, or a newer version was committed meanwhile"}
    )
}


@psi_router.post("/tag-sets/{upload_id}/commit", **_COMMIT_ROUTE)
async def commit_tag_set(
    upload_id: Annotated[str, Path(max_length=36)], rt: RuntimeDep, who: TagSetPusher
) -> TagSetCommitOut:
    """Check the chunks against the signed hash and make this version the active one."""
    return TagSetCommitOut.model_validate(await psi.commit_tag_set(rt, who.tenant_id, upload_id))


@psi_router.get("/tag-sets")
async def list_tag_sets(
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))],
    provider_id: Annotated[str | None, Query(max_length=36)] = None,
) -> TagSetList:
    """Active pushed sets: version, size, OPRF key and false-positive rate (no tags)."""
    found = await rt.privacy.tag_sets.list(who.tenant_id, provider_id)
    return TagSetList(items=[TagSetOut.model_validate(t) for t in found])


@psi_router.post(
    "/psi/batch",
    response_model_exclude_unset=True,
    responses=problem_responses(400, 404, 409, 502, 503),
)
async def batch_psi(body: psi.BatchPsiRequest, rt: RuntimeDep, who: PsiUser) -> BatchPsiOut:
    """A list against a DP's pushed tag set: the cardinality, or the matching items."""
    return BatchPsiOut.model_validate(await psi.run_batch_psi(rt, who.tenant_id, body))


# --------------------------------------------------------------------------- ZK predicates


@zkp_router.post(
    "/presentations",
    response_model_exclude_unset=True,
    responses=problem_responses(400, 404, 502, 503),
)
async def create_presentation(
    body: zk_present.PresentationIn, rt: RuntimeDep, who: ZkpUser
) -> ZkPresentationOut:
    """Prove a predicate (age over N, birth date in a range, membership, student status) to a
    relying party with a one-time AnonCreds credential; reveals nothing else."""
    presented = await zk_present.run_zk_presentation(rt, who.tenant_id, body)
    return ZkPresentationOut.model_validate(presented)


@zkp_router.post("/verify", responses=problem_responses(400, 404))
async def verify_presentation(
    body: zk_present.PresentationCheckIn, rt: RuntimeDep, who: ZkpUser
) -> ZkVerificationOut:
    """Verify a presentation (predicates and non-revocation) with this tenant's objects."""
    checked = await zk_present.verify_zk_presentation(rt, who.tenant_id, body)
    return ZkVerificationOut.model_validate(checked)


# --------------------------------------------------------------------------- differential privacy


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(gt=0, le=1000, description="Total epsilon per period.")
    delta: float = Field(default=0.0, ge=0, lt=1, description="Total delta per period.")
    period: Period = Period.MONTH


Dataset = Annotated[str, Path(pattern=r"^[a-z_]{1,64}$")]


@release_router.put("/budgets/{dataset}", responses=problem_responses(400))
async def set_budget(
    dataset: Dataset, body: BudgetIn, rt: RuntimeDep, who: BudgetAdmin
) -> BudgetOut:
    """Set a dataset's privacy budget: limits per period; what was spent stays spent."""
    state = await rt.privacy.budgets.configure(
        rt.db,
        who.tenant_id,
        dataset,
        epsilon=body.epsilon,
        delta=body.delta,
        period=body.period,
        now=rt.clock(),
        audit=rt.audit,
    )
    return BudgetOut.model_validate(state.as_dict())


@release_router.get("/budgets/{dataset}", responses=problem_responses(404))
async def read_budget(
    dataset: Dataset,
    rt: RuntimeDep,
    who: Analyst,
    ledger: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> BudgetWithLedgerOut:
    """Limits, spent and remaining this period, and the latest ledger entries."""
    state = await rt.privacy.budgets.state(rt.db, who.tenant_id, dataset, rt.clock())
    entries = await rt.privacy.budgets.entries(rt.db, who.tenant_id, dataset, limit=ledger)
    return BudgetWithLedgerOut.model_validate({**state.as_dict(), "ledger": entries})


@release_router.post(
    "/releases",
    status_code=201,
    response_model_exclude_unset=True,
    responses=problem_responses(
        400, 404, 409, notes={409: "The budget cannot cover the release; nothing is released"}
    ),
)
async def create_release(
    body: private_release.ReleaseIn, rt: RuntimeDep, who: Analyst
) -> ReleaseOut:
    """A differentially private count, sum or mean of verification events, charged to the
    budget; 409 when the budget cannot cover it (nothing is released then)."""
    return ReleaseOut.model_validate(await private_release.run_release(rt, who.tenant_id, body))


# --------------------------------------------------------------------------- receipts


@receipts_router.get("")
async def list_receipts(
    rt: RuntimeDep,
    who: Auditor,
    kind: Annotated[
        str | None,
        Query(description=", ".join(KINDS) + " (deprecated: " + ", ".join(RENAMED_KINDS) + ")"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,12}$")] = None,
) -> ReceiptPage:
    if kind is not None and kind not in KINDS and kind not in RENAMED_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", field="kind")
    items = await rt.privacy.receipts.list(
        rt.db, who.tenant_id, kind=kind, limit=limit, after=after
    )
    following = str(items[-1]["audit_index"]) if len(items) == limit else None
    return ReceiptPage.model_validate({"items": items, "next": following})


@receipts_router.get("/{receipt_id}", responses=problem_responses(404))
async def receipt_bundle(
    receipt_id: Annotated[str, Path(max_length=36)], rt: RuntimeDep, who: Auditor
) -> ReceiptBundleOut:
    """The receipt with its audit inclusion proof and signed checkpoint, to verify offline
    (``pavilion privacy receipts verify --bundle``)."""
    bundle = await rt.privacy.receipts.bundle(rt.db, who.tenant_id, receipt_id)
    return ReceiptBundleOut.model_validate(bundle)


# --------------------------------------------------------------------------- AnonCreds


@anoncreds_router.post("/offers", status_code=201, responses=problem_responses(400, 404))
async def create_offer(
    body: anoncreds_issue.OfferIn, rt: RuntimeDep, who: IssueUser
) -> AnoncredsOfferOut:
    """A credential offer from the DP's credential definition (created on first use)."""
    return AnoncredsOfferOut.model_validate(await anoncreds_issue.offer(rt, who.tenant_id, body))


@anoncreds_router.post(
    "/credentials", status_code=201, responses=problem_responses(400, 404, 409, 502, 503)
)
async def issue_credential(
    body: anoncreds_issue.IssueIn, rt: RuntimeDep, who: IssueUser
) -> AnoncredsCredentialOut:
    """Answer a wallet's credential request for a subject the DP knows."""
    issued = await anoncreds_issue.issue(rt, who.tenant_id, body)
    return AnoncredsCredentialOut.model_validate(issued)


@anoncreds_router.post("/revocations", responses=problem_responses(400, 404))
async def revoke_credentials(
    body: anoncreds_issue.RevokeIn, rt: RuntimeDep, who: Revoker
) -> RevocationOut:
    """Revoke credentials; one status-list delta is published per registry."""
    return RevocationOut.model_validate(await anoncreds_issue.revoke(rt, who.tenant_id, body))


@anoncreds_router.get("/providers/{provider_id}/registries", responses=problem_responses(404))
async def list_registries(provider_id: ProviderId, rt: RuntimeDep, who: Reader) -> RegistryList:
    """The DP's revocation registries in rollover order (definitions are public); 404 for a
    provider this tenant does not have, as everywhere else."""
    await rt.providers.get(who.tenant_id, provider_id)
    found = await rt.privacy.anoncreds.registries(who.tenant_id, provider_id)
    return RegistryList.model_validate({"items": found})


@anoncreds_router.get(
    "/providers/{provider_id}/credential-definition", responses=problem_responses(404)
)
async def credential_definition(
    provider_id: ProviderId, rt: RuntimeDep, who: Reader
) -> CredentialDefinitionOut:
    """The DP's schema and credential definition (created once, on first use)."""
    await rt.providers.get(who.tenant_id, provider_id)
    material = (await rt.privacy.anoncreds.ensure_issuer(who.tenant_id, provider_id)).material
    return CredentialDefinitionOut(
        issuer_id=material.issuer_id,
        schema_id=material.schema_id,
        schema_=json.loads(material.schema_json),
        cred_def_id=material.cred_def_id,
        credential_definition=json.loads(material.cred_def_json),
    )


@anoncreds_router.get(
    "/tails/{tails_hash}",
    response_class=Response,
    responses={
        200: {
            "description": "The tails file",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **problem_responses(404),
    },
)
async def tails_file(
    tails_hash: Annotated[str, Path(pattern=r"^[1-9A-HJ-NP-Za-km-z]{20,60}$")],
    rt: RuntimeDep,
    who: Reader,
) -> Response:
    """A registry's tails file, which holders need to prove non-revocation."""
    data = await rt.privacy.anoncreds.tails(who.tenant_id, tails_hash)
    return Response(data, media_type="application/octet-stream")


@anoncreds_router.get("/registries/{registry_id}/deltas", responses=problem_responses(404))
async def registry_deltas(
    registry_id: Annotated[str, Path(max_length=36)],
    rt: RuntimeDep,
    who: Reader,
    since: Annotated[int, Query(ge=0, le=UNIX_TIME_MAX, description="Unix time.")] = 0,
) -> StatusListDeltaList:
    """Status lists published after ``since`` (Unix time): revoked indices and accumulator."""
    items = await rt.privacy.anoncreds.deltas(who.tenant_id, registry_id, since=since)
    return StatusListDeltaList.model_validate({"items": items})


# Deprecated aliases (one release): tag sets were served as "rosters".
add_alias(
    psi_router,
    "/providers/{provider_id}/roster-key",
    "/providers/{provider_id}/tag-set-key",
    register_tag_set_key,
    methods=["PUT"],
    **_TAG_SET_KEY_ROUTE,
)
add_alias(
    psi_router,
    "/providers/{provider_id}/rosters",
    "/providers/{provider_id}/tag-sets",
    begin_tag_set,
    methods=["POST"],
    **_BEGIN_ROUTE,
)
add_alias(
    psi_router,
    "/rosters/{upload_id}/chunks/{seq}",
    "/tag-sets/{upload_id}/chunks/{seq}",
    put_tag_set_chunk,
    methods=["PUT"],
    **_CHUNK_ROUTE,
)
add_alias(
    psi_router,
    "/rosters/{upload_id}/commit",
    "/tag-sets/{upload_id}/commit",
    commit_tag_set,
    methods=["POST"],
    **_COMMIT_ROUTE,
)
add_alias(psi_router, "/rosters", "/tag-sets", list_tag_sets, methods=["GET"])

for _sub in (psi_router, zkp_router, release_router, receipts_router, anoncreds_router):
    router.include_router(_sub)
