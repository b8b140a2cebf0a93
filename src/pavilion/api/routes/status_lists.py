"""Status lists: the public, signed lists, and revocation for a tenant's administrators."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.status_lists import CredentialStatusOut, StatusChangeOut
from pavilion.credentials.status.service import PublishedList
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal

router = APIRouter(tags=["status lists"])
ListId = Annotated[str, Path(min_length=1, max_length=200)]
CredentialId = Annotated[str, Path(min_length=1, max_length=100)]


def _published_as(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    """A public list's responses: the signed list itself, or 304 when the ETag matches."""
    return {
        200: {"description": what, "content": {media_type: {"schema": {"type": "string"}}}},
        304: {"description": "Not modified: the If-None-Match ETag is current"},
        **problem_responses(404, 422),
    }


class StatusChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["revoke", "suspend", "reinstate"]
    reason: str | None = Field(
        default=None, max_length=500, description="Kept only as a SHA-256 in the audit leaf."
    )


def _serve(published: PublishedList, if_none_match: str | None) -> Response:
    headers = {
        "Cache-Control": f"public, max-age={published.max_age}",
        "ETag": published.etag,
    }
    if if_none_match is not None and published.etag in (
        tag.strip() for tag in if_none_match.split(",")
    ):
        return Response(status_code=304, headers=headers)
    return Response(published.token, media_type=published.media_type, headers=headers)


@router.get(
    "/status/v1/token/{list_id}",
    response_class=Response,
    responses=_published_as("application/statuslist+jwt", "An IETF Status List Token"),
)
async def token_status_list(
    list_id: ListId,
    rt: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """An IETF Status List Token (``typ: statuslist+jwt``); public, cacheable for ``ttl``."""
    return _serve(await rt.status_lists.publish("token", list_id), if_none_match)


@router.get(
    "/status/v1/bitstring/{list_id}",
    response_class=Response,
    responses=_published_as("application/vc+jwt", "A BitstringStatusListCredential (vc+jwt)"),
)
async def bitstring_status_list(
    list_id: ListId,
    rt: RuntimeDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A W3C BitstringStatusListCredential secured as ``vc+jwt``; public and cacheable."""
    return _serve(await rt.status_lists.publish("bitstring", list_id), if_none_match)


@router.post(
    "/v1/credentials/{credential_id}/status",
    tags=["credentials"],
    responses={**AUTHENTICATED, **problem_responses(400, 404, 409)},
)
async def change_credential_status(
    credential_id: CredentialId,
    body: StatusChangeIn,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.CREDENTIALS_STATUS))],
) -> StatusChangeOut:
    """Revoke, suspend or reinstate one of the tenant's credentials (audited).

    The change reaches the published lists at once; verifiers that cached a list see it
    within the list's ``ttl``.
    """
    change = await rt.status_lists.change_status(
        who.tenant_id,
        credential_id,
        body.action,
        actor=f"token:{who.token_id}",
        reason=body.reason,
    )
    return StatusChangeOut.model_validate(change)


@router.get(
    "/v1/credentials/{credential_id}/status",
    tags=["credentials"],
    responses={**AUTHENTICATED, **problem_responses(404)},
)
async def read_credential_status(
    credential_id: CredentialId,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require(Permission.VERIFICATIONS_READ))],
) -> CredentialStatusOut:
    """The credential's state and the lists (and indices) that publish it."""
    found = await rt.status_lists.credential_status(who.tenant_id, credential_id)
    return CredentialStatusOut.model_validate(found)
