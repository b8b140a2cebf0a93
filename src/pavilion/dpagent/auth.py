"""API-key authentication, checked before the agent parses anything a caller sent.

It is middleware rather than a route dependency because FastAPI decodes a route's body before
its dependencies run; here an unauthenticated caller learns nothing, not even whether its JSON
was well formed.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Final

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pavilion.dpagent.problems import error_response
from pavilion.errors import AuthenticationFailed
from pavilion.observability.logging import get_logger

log = get_logger("pavilion.dpagent")

#: Sent with every 401 (RFC 9110 section 11.6.1) so a client knows which scheme to use.
WWW_AUTHENTICATE: Final = 'Bearer realm="pavilion-dp-agent"'


def presented_key(headers: Headers) -> str | None:
    """The key from ``Authorization: Bearer <key>``, else from ``X-API-Key``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


class ApiKeyMiddleware:
    """Answers 401 problem+json to any request without the right key, except public paths."""

    def __init__(self, app: ASGIApp, *, api_key: SecretStr, public_paths: Collection[str]) -> None:
        self._app = app
        self._expected = api_key.get_secret_value().encode("ascii")
        self._public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public_paths:
            await self._app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        # Starlette decodes headers as latin-1, so encoding back gives the bytes as sent.
        if key is not None and hmac.compare_digest(key.encode("latin-1"), self._expected):
            await self._app(scope, receive, send)
            return
        reason = "missing" if key is None else "wrong"
        log.warning("dp_agent.request_rejected", outcome="unauthenticated", reason=reason)
        detail = (
            "send the API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            if key is None
            else "the API key is not valid"
        )
        response = error_response(
            401, AuthenticationFailed(detail), headers={"WWW-Authenticate": WWW_AUTHENTICATE}
        )
        await response(scope, receive, send)
