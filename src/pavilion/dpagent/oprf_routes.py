"""The agent's OPRF endpoints: the DP side of private set membership.

``POST /v1/oprf/evaluate`` answers a batch of blinded elements with VOPRF evaluations and
one DLEQ proof (RFC 9497 §3.3.2, batched). The elements are uniformly random group elements:
the agent cannot tell whom they stand for, and it logs only counts and outcomes. Evaluations
are rate-limited per connector tenant (``X-Pavilion-Tenant``), because each one lets the
caller test one guess against the roster.

``GET /v1/oprf/keys`` lists the public halves: OPRF public keys and the tag-set signing JWK
that a DP administrator registers with the connector.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Header
from pydantic import BaseModel, ConfigDict, Field

from pavilion.dpagent.oprf_config import OprfConfig
from pavilion.dpagent.oprf_keys import OprfKeyRing, UnknownOprfKey
from pavilion.dpagent.problems import error_response
from pavilion.dpagent.rate_limit import TenantRateLimiter
from pavilion.errors import InvalidRequest, PavilionError
from pavilion.jose import b64url, b64url_decode_canonical
from pavilion.observability.logging import get_logger
from pavilion.privacy import oprf

log = get_logger("pavilion.dpagent")

TENANT_HEADER: Final = "X-Pavilion-Tenant"
_ELEMENT_B64: Final = 43  # unpadded base64url of 32 bytes
#: Batches up to this size are evaluated on the event loop (well under a millisecond).
INLINE_BATCH: Final = 4


class OprfRateLimited(PavilionError):
    code = "rate-limited"
    title = "Too many evaluations"


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(min_length=1, max_length=64, description="The key the tag set uses.")
    elements: list[Annotated[str, Field(min_length=_ELEMENT_B64, max_length=_ELEMENT_B64)]] = Field(
        min_length=1,
        description="Blinded elements, canonical unpadded base64url (32 bytes each; the "
        "unused trailing bits zero).",
    )


class EvaluateResponse(BaseModel):
    key_id: str
    evaluated: list[str]
    proof: str = Field(description="One DLEQ proof over the whole batch (c || s, base64url).")


class KeysResponse(BaseModel):
    keys: list[dict[str, str]]
    tag_set_signing_key: dict[str, str]


@dataclass(frozen=True)
class OprfState:
    """Everything the OPRF endpoints keep: keys and per-tenant counters, nothing per subject."""

    ring: OprfKeyRing
    limiter: TenantRateLimiter


def install_oprf_routes(app: FastAPI, config: OprfConfig) -> OprfState:
    """Add the OPRF endpoints to an agent app; keys come from ``config.key_dir``."""
    state = OprfState(
        OprfKeyRing.open(config.key_dir),
        TenantRateLimiter(config.rate_per_second, config.burst),
    )
    app.state.oprf = state
    app.include_router(oprf_router(config, state))
    return state


def oprf_router(config: OprfConfig, state: OprfState) -> APIRouter:
    router = APIRouter(prefix="/v1/oprf", tags=["oprf"])
    ring, limits = state.ring, state.limiter

    @router.get("/keys")
    async def keys() -> KeysResponse:
        """Public keys only: OPRF keys by state and the tag-set signing JWK."""
        return KeysResponse(
            keys=[k.public() for k in ring.all_keys()],
            tag_set_signing_key=ring.signing_public_jwk(),
        )

    @router.post(
        "/evaluate",
        response_model=EvaluateResponse,
        responses={
            409: {"description": "Unknown or rotated-out key"},
            429: {"description": "Rate limited; see Retry-After"},
        },
    )
    async def evaluate(
        body: EvaluateRequest,
        x_pavilion_tenant: Annotated[
            str, Header(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
        ],
    ) -> Any:
        """VOPRF BlindEvaluate over a batch, with one proof for all elements."""
        started = time.perf_counter()
        count = len(body.elements)
        outcome = "evaluated"
        try:
            if count > config.max_batch:
                raise InvalidRequest(
                    f"a batch holds at most {config.max_batch} elements", field="elements"
                )
            key = ring.get(body.key_id)
            blinded = _decode(body.elements)
            wait = limits.take(x_pavilion_tenant, count)
            if wait is not None:
                outcome = "rate_limited"
                retry = "3600" if math.isinf(wait) else str(max(1, math.ceil(wait)))
                return error_response(
                    429,
                    OprfRateLimited(
                        f"this tenant may evaluate {config.burst} elements at once and "
                        f"{config.rate_per_second:g} per second"
                    ),
                    headers={"Retry-After": retry},
                )
            if count <= INLINE_BATCH:  # a few scalar multiplications: not worth a thread hop
                batch = key.server.blind_evaluate_batch(blinded)
            else:
                batch = await asyncio.to_thread(key.server.blind_evaluate_batch, blinded)
            return EvaluateResponse(
                key_id=key.key_id,
                evaluated=[b64url(e) for e in batch.evaluated_elements],
                proof=b64url(batch.proof),
            )
        except UnknownOprfKey as exc:
            outcome = "unknown_key"
            return error_response(409, exc)
        except InvalidRequest as exc:
            outcome = "invalid"
            return error_response(422, exc)
        except oprf.DeserializeError:
            outcome = "invalid"
            return error_response(422, _bad_element(body.elements))
        finally:
            log.info(
                "dp_agent.oprf_evaluate",
                tenant=x_pavilion_tenant,
                elements=count,
                outcome=outcome,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )

    return router


def _decode(elements: list[str]) -> list[bytes]:
    """Each element's 32 bytes; only canonical unpadded base64url (RFC 4648 3.5) is read."""
    out: list[bytes] = []
    for i, text in enumerate(elements):
        try:
            raw = b64url_decode_canonical(text)
        except ValueError as exc:
            raise InvalidRequest(
                f"not 32 bytes of canonical unpadded base64url: {exc}", field=f"elements.{i}"
            ) from None
        if len(raw) != oprf.ELEMENT_BYTES:
            raise InvalidRequest(
                "not 32 bytes of canonical unpadded base64url", field=f"elements.{i}"
            ) from None
        out.append(raw)
    return out


def _bad_element(elements: list[str]) -> InvalidRequest:
    """Name the first element that is not a valid group element (only after a failure)."""
    for i, text in enumerate(elements):
        try:
            oprf.deserialize_element(b64url_decode_canonical(text))
        except oprf.DeserializeError:
            return InvalidRequest("not a ristretto255 group element", field=f"elements.{i}")
    return InvalidRequest("an element is not valid", field="elements")  # pragma: no cover
