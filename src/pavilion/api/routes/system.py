"""Health, readiness, metrics and the issuer's public keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pavilion.api.deps import RuntimeDep
from pavilion.observability.metrics import REGISTRY

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Readiness: the database answers and the keystore can sign."""
    checks: dict[str, str] = {}
    for name, probe in (("database", rt.db.ping), ("keystore", _keystore_probe(rt))):
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:  # readiness reports every failure, whatever its kind
            checks[name] = f"failing: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _keystore_probe(rt: RuntimeDep) -> Any:
    async def probe() -> None:
        rt.keystore.health()

    return probe


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/.well-known/jwks.json")
async def jwks(rt: RuntimeDep) -> JSONResponse:
    """Public keys that verify the connector's credentials (current and not yet retired)."""
    return JSONResponse(
        {"keys": rt.keystore.public_jwks("credential-signing")},
        headers={"Cache-Control": "public, max-age=300"},
    )
