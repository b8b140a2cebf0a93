"""Health, readiness, metrics and the issuer's public keys (JWKS, and its did:web document)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pavilion.api.deps import RuntimeDep, get_principal
from pavilion.api.problems import problem_responses
from pavilion.api.schemas.system import DidDocumentOut, Health, JsonWebKeySet, Readiness
from pavilion.errors import NotFound, PermissionDenied
from pavilion.observability.metrics import REGISTRY
from pavilion.runtime import Runtime

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={503: {"model": Readiness, "description": "Not ready: a check is failing"}},
)
async def readyz(rt: RuntimeDep, response: Response) -> Readiness:
    """Readiness: the database answers and the keystore can sign."""
    checks: dict[str, str] = {}
    for name, probe in (("database", rt.db.ping), ("keystore", _keystore_probe(rt))):
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:  # readiness reports every failure, whatever its kind
            checks[name] = f"failing: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ready else 503
    return Readiness(status="ready" if ready else "not ready", checks=checks)


def _keystore_probe(rt: Runtime) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        await rt.keystore.ahealth()

    return probe


async def metrics_reader(
    request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Who may read /metrics: the bearer of ``PAVILION_METRICS_TOKEN`` (a scraper), or a
    platform admin's API token. Metrics name providers and routes of every tenant."""
    configured = rt.settings.metrics_token
    scheme, _, token = (authorization or "").partition(" ")
    if (
        configured is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), configured.get_secret_value().encode())
    ):
        return
    principal = await get_principal(request, rt, authorization)
    if not principal.is_platform:
        raise PermissionDenied("only the metrics token or a platform admin may read metrics")


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(metrics_reader)],
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 422),
    },
)
async def metrics() -> Response:
    """Prometheus metrics: send ``Authorization: Bearer`` with ``PAVILION_METRICS_TOKEN`` or a
    platform admin's API token."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/.well-known/jwks.json")
async def jwks(rt: RuntimeDep, response: Response) -> JsonWebKeySet:
    """Public keys that verify the connector's credentials (current and not yet retired)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return JsonWebKeySet(keys=rt.keystore.public_jwks("credential-signing"))


#: Where a did:web without a path keeps its document (did:web method specification, 3.2).
DID_DOCUMENT_PATH = "/.well-known/did.json"


class DidJsonResponse(JSONResponse):
    media_type = "application/did+json"


@router.get(
    DID_DOCUMENT_PATH,
    response_class=DidJsonResponse,
    responses=problem_responses(
        notes={404: "No did:web is configured: Data Integrity proofs name did:key issuers"}
    ),
)
async def did_document(rt: RuntimeDep, response: Response) -> DidDocumentOut:
    """The connector's did:web DID document (``PAVILION_DID_WEB``): every credential-signing
    key that still verifies, as a Multikey listed for assertionMethod. A DID with a path
    (``did:web:host:issuers:acme``) is served at that path too (``/issuers/acme/did.json``)."""
    document = rt.credentials.did_document()
    if document is None:
        raise NotFound(
            "this connector has no did:web (PAVILION_DID_WEB): its Data Integrity proofs are "
            "signed as did:key"
        )
    response.headers["Cache-Control"] = "public, max-age=300"
    return DidDocumentOut.model_validate(document)
