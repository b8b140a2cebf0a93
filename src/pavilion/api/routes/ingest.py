"""The data pipeline over HTTP: roster uploads, DP profiles (schema + mapping), dry runs,
upload keys, quality trends and lineage. The HTTP layer only translates.

Roster uploads live under ``/v1/providers/{id}/roster-uploads``; the ``/rosters`` paths they
had before are deprecated aliases for one release.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from pavilion.api import problems
from pavilion.api.deprecation import RouteOptions, add_alias
from pavilion.api.deps import RuntimeDep, require
from pavilion.api.problems import AUTHENTICATED, problem_responses
from pavilion.api.schemas.base import INT32_MAX
from pavilion.api.schemas.ingest import (
    BatchOut,
    DryRunOut,
    LineageOut,
    ProfileOut,
    QualityTrendOut,
    QuarantineOut,
    UploadKeyOut,
)
from pavilion.errors import InvalidRequest, PayloadTooLarge
from pavilion.ingest.formats import CONTENT_TYPES
from pavilion.ingest.lineage.graph import render
from pavilion.parsing import loads_json
from pavilion.tenancy.roles import Permission
from pavilion.tenancy.service import Principal
from pavilion.workflows import roster_dry_run, roster_profiles, roster_reports, roster_upload

router = APIRouter(prefix="/v1", tags=["data"], responses=AUTHENTICATED)
Uploader = Annotated[Principal, Depends(require(Permission.ROSTERS_UPLOAD))]
RosterReader = Annotated[Principal, Depends(require(Permission.ROSTERS_READ))]
Author = Annotated[Principal, Depends(require(Permission.PROVIDERS_WRITE))]
Reader = Annotated[Principal, Depends(require(Permission.PROVIDERS_READ))]
LineageReader = Annotated[Principal, Depends(require(Permission.LINEAGE_READ))]

#: Paths whose bodies stream past the buffering body-limit middleware (they enforce
#: ``PAVILION_INGEST_MAX_UPLOAD_BYTES`` themselves).
STREAMED_PATHS: Final = (r"/v1/providers/[^/]+/roster-uploads", r"/v1/providers/[^/]+/rosters")
UPLOADS: Final = "/providers/{provider_id}/roster-uploads"
_OLD_UPLOADS: Final = "/providers/{provider_id}/rosters"
_CLOCK_SKEW: Final = timedelta(minutes=5)

_UPLOAD_BODY: Final = {
    "requestBody": {
        "required": True,
        "description": "The roster, streamed. The Content-Type selects the format; text "
        "formats may declare a charset (CSV only; JSON is UTF-8).",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in sorted(CONTENT_TYPES)
        },
    }
}
_PROFILE_BODY: Final = {
    "requestBody": {
        "required": True,
        "description": "A DP profile: schema (fields, types, formats, constraints, data "
        "categories), mapping to the canonical model, quality policy. YAML or JSON.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            "X-Roster-As-Of must be an ISO 8601 date-time", field="x-roster-as-of"
        ) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed > datetime.now(UTC) + _CLOCK_SKEW:
        raise InvalidRequest("X-Roster-As-Of is in the future", field="x-roster-as-of")
    return parsed


_UPLOAD_ROUTE: Final[RouteOptions] = {
    "status_code": 201,
    "openapi_extra": _UPLOAD_BODY,
    "summary": "Upload a roster (CSV, NDJSON, JSON, XML or Parquet), applied whole or not at all",
    "response_model": BatchOut,
    "response_model_exclude_unset": True,
    "responses": problem_responses(
        404,
        409,
        notes={
            413: "The upload is over PAVILION_INGEST_MAX_UPLOAD_BYTES.",
            403: "The upload carries a data category the DP did not declare.",
            422: "Malformed upload, rejected batch, low quality or bad signature.",
        },
    ),
}


@router.post(UPLOADS, **_UPLOAD_ROUTE)
async def upload_roster(
    provider_id: str,
    *,
    request: Request,
    rt: RuntimeDep,
    who: Uploader,
    content_type: Annotated[str | None, Header()] = None,
    x_jws_signature: Annotated[
        str | None,
        Header(description="Detached JWS (RFC 7515 Appendix F) over the body, by the DP's key."),
    ] = None,
    x_roster_as_of: Annotated[
        str | None, Header(description="When the DP's data was current (ISO 8601).")
    ] = None,
    mapping_version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> Any:
    try:
        batch = await roster_upload.upload_roster(
            rt,
            who.tenant_id,
            provider_id,
            request.stream(),
            roster_upload.UploadRequest(
                content_type=content_type,
                signature=x_jws_signature,
                as_of=_as_of(x_roster_as_of),
                mapping_version=mapping_version,
            ),
        )
        return BatchOut.model_validate(batch)
    except PayloadTooLarge as exc:
        # Close the connection: otherwise the server would drain the rest of the body (2 GB)
        # to keep the connection alive.
        return problems.problem(
            413,
            exc.title,
            exc.detail,
            code=exc.code,
            instance=request.url.path,
            headers={"connection": "close"},
            **exc.extra,
        )


_BATCHES_ROUTE: Final[RouteOptions] = {
    "summary": "Roster upload batches, newest first",
    "response_model_exclude_unset": True,
    "responses": problem_responses(404),
}
_BATCH_ROUTE: Final[RouteOptions] = {
    "summary": "One batch, its integrity checked (signed manifest and stored records)",
    "response_model_exclude_unset": True,
    "responses": problem_responses(404),
}
_QUARANTINE_ROUTE: Final[RouteOptions] = {
    "summary": "A batch's invalid rows with their reasons",
    "response_model_exclude_unset": True,
    "responses": problem_responses(404),
}


@router.get(UPLOADS, **_BATCHES_ROUTE)
async def list_batches(
    provider_id: str,
    rt: RuntimeDep,
    who: RosterReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[BatchOut]:
    found = await roster_reports.list_batches(rt, who.tenant_id, provider_id, limit=limit)
    return [BatchOut.model_validate(batch) for batch in found]


@router.get(UPLOADS + "/{batch_id}", **_BATCH_ROUTE)
async def get_batch(provider_id: str, batch_id: str, rt: RuntimeDep, who: RosterReader) -> BatchOut:
    batch = await roster_reports.get_batch(rt, who.tenant_id, batch_id)
    if batch["provider_id"] != provider_id:
        raise InvalidRequest(f"batch {batch_id} belongs to another provider", field="batch_id")
    return BatchOut.model_validate(batch)


@router.get(UPLOADS + "/{batch_id}/quarantine", **_QUARANTINE_ROUTE)
async def get_quarantine(
    provider_id: str,
    batch_id: str,
    *,
    rt: RuntimeDep,
    who: RosterReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_row: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> QuarantineOut:
    found = await roster_reports.quarantine(
        rt, who.tenant_id, batch_id, limit=limit, after_row=after_row
    )
    return QuarantineOut.model_validate(found)


async def _document(request: Request) -> str | dict[str, Any]:
    raw = await request.body()
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media == "application/json":
        try:
            document = loads_json(raw, what="the profile")
        except ValueError as exc:
            raise InvalidRequest("the profile is not valid JSON", field="body") from exc
        if not isinstance(document, dict):
            raise InvalidRequest("the profile must be a JSON object", field="body")
        return document
    if media in ("application/yaml", "application/x-yaml", "text/yaml", "text/plain", ""):
        return raw.decode("utf-8", errors="replace")
    raise InvalidRequest(
        "send the profile as application/json or application/yaml", field="content-type"
    )


@router.post(
    "/providers/{provider_id}/mappings",
    status_code=201,
    openapi_extra=_PROFILE_BODY,
    summary="Add the next version of a DP's schema and mapping",
    responses=problem_responses(404),
)
async def add_mapping(
    provider_id: str, request: Request, rt: RuntimeDep, who: Author
) -> ProfileOut:
    document = await _document(request)
    return ProfileOut.model_validate(
        await roster_profiles.add_profile(rt, who.tenant_id, provider_id, document)
    )


@router.get(
    "/providers/{provider_id}/mappings",
    summary="Every version of a DP's profile",
    responses=problem_responses(404),
)
async def list_mappings(provider_id: str, rt: RuntimeDep, who: Reader) -> list[ProfileOut]:
    found = await roster_profiles.list_profiles(rt, who.tenant_id, provider_id)
    return [ProfileOut.model_validate(profile) for profile in found]


@router.get(
    "/providers/{provider_id}/mappings/{version}",
    summary="One version of a profile",
    responses=problem_responses(404),
)
async def get_mapping(
    provider_id: str,
    version: Annotated[int, Path(ge=1, le=INT32_MAX)],
    rt: RuntimeDep,
    who: Reader,
) -> ProfileOut:
    found = await roster_profiles.get_profile(rt, who.tenant_id, provider_id, version)
    return ProfileOut.model_validate(found)


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: dict[str, Any] | None = Field(
        default=None, description="A profile to try; the provider's latest when omitted."
    )
    records: list[dict[str, Any]] | None = Field(
        default=None, max_length=10_000, description="Sample records as JSON objects."
    )
    sample: str | None = Field(default=None, description="A sample in the given format's text.")
    format: Literal["csv", "ndjson", "json", "xml"] = "json"
    as_of: datetime | None = None


_FORMAT_MEDIA: Final = {
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "xml": "application/xml",
}


@router.post(
    "/providers/{provider_id}/mappings/dry-run",
    summary="Run validation, quality and mapping on a sample; nothing is stored",
    response_model_exclude_unset=True,
    responses=problem_responses(400, 404),
)
async def dry_run(provider_id: str, body: DryRunIn, rt: RuntimeDep, who: Author) -> DryRunOut:
    if (body.records is None) == (body.sample is None):
        raise InvalidRequest("send either records or sample", field="records")
    if body.records is not None:
        sample, media = roster_dry_run.records_frame(body.records), "application/json"
    else:
        sample, media = (body.sample or "").encode("utf-8"), _FORMAT_MEDIA[body.format]
    result = await roster_dry_run.dry_run(
        rt,
        who.tenant_id,
        provider_id,
        sample=sample,
        content_type=media,
        profile_document=body.profile,
        as_of=body.as_of,
    )
    return DryRunOut.model_validate(result)


class UploadKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jwk: dict[str, Any] = Field(description="The DP's public JWK (EC P-256/384/521 or RSA).")


@router.post(
    "/providers/{provider_id}/upload-keys",
    status_code=201,
    summary="Register a DP's public key; from then on its uploads must be signed",
    responses=problem_responses(400, 404, 409),
)
async def add_upload_key(
    provider_id: str, body: UploadKeyIn, rt: RuntimeDep, who: Author
) -> UploadKeyOut:
    added = await roster_profiles.add_upload_key(rt, who.tenant_id, provider_id, body.jwk)
    return UploadKeyOut.model_validate(added)


@router.get(
    "/providers/{provider_id}/quality",
    summary="Quality scores of a DP's batches",
    responses=problem_responses(404),
)
async def quality(
    provider_id: str,
    rt: RuntimeDep,
    who: RosterReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> QualityTrendOut:
    trend = await roster_reports.quality(rt, who.tenant_id, provider_id, limit=limit)
    return QualityTrendOut.model_validate(trend)


_RENDERED: Final = {"svg": "image/svg+xml", "png": "image/png", "dot": "text/vnd.graphviz"}


@router.get(
    "/lineage/{dataset}",
    summary="Lineage of a dataset: the graph upstream and downstream, and recent run events",
    response_model=LineageOut,
    responses={
        200: {
            "description": "JSON, or the graph rendered as the format asks",
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}} for m in _RENDERED.values()
            },
        }
    },
)
async def get_lineage(
    dataset: str,
    rt: RuntimeDep,
    who: LineageReader,
    format: Annotated[Literal["json", "dot", "svg", "png"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> Any:
    found = await roster_reports.lineage(rt, who.tenant_id, dataset, limit=limit)
    if format == "json":
        return LineageOut.model_validate(found)
    content, produced = render(found["dot"], format)
    return Response(
        content,
        media_type=_RENDERED[produced],
        headers={"x-lineage-format": produced},
    )


# Deprecated aliases (one release): roster uploads were served under /rosters.
add_alias(router, _OLD_UPLOADS, UPLOADS, upload_roster, methods=["POST"], **_UPLOAD_ROUTE)
add_alias(router, _OLD_UPLOADS, UPLOADS, list_batches, methods=["GET"], **_BATCHES_ROUTE)
add_alias(
    router,
    _OLD_UPLOADS + "/{batch_id}",
    UPLOADS + "/{batch_id}",
    get_batch,
    methods=["GET"],
    **_BATCH_ROUTE,
)
add_alias(
    router,
    _OLD_UPLOADS + "/{batch_id}/quarantine",
    UPLOADS + "/{batch_id}/quarantine",
    get_quarantine,
    methods=["GET"],
    **_QUARANTINE_ROUTE,
)
